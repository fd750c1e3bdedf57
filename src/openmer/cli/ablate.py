"""``openmer ablate``: HCEP's ablation tables (Tables 5-7, Fig. 4) on a dataset preset, beside the paper's."""

from __future__ import annotations

import shlex
import sys
import time
from enum import Enum
from pathlib import Path

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from openmer.cli.app import app
from openmer.cli.common import ProgressCallback, console, handle_errors, rich_progress


class AblationTableName(str, Enum):
    table5 = "5"
    table6 = "6"
    table7 = "7"
    fig4 = "fig4"


@app.command()
@handle_errors
def ablate(
    data: str = typer.Option("emodb", "--data", help="Dataset preset to run the ablations on: a benchmark whose "
                                                     "preset trains HCEP on clips (emodb, meld, ravdess-speech)."),
    out: Path = typer.Option(Path("runs") / "ablate", "--out",
                             help="Output folder (results.json, results.md, scores/)."),
    table: AblationTableName | None = typer.Option(
        None, "--table", help="Run exactly one table's rows and print them beside the paper's: 5, 6, 7 or fig4."),
    only: str | None = typer.Option(None, "--only", help="Comma-separated ablation names (default: all that apply)."),
    quick: bool = typer.Option(False, "--quick", help="Smoke-run preset: fewer levels, splits and epochs."),
    seed: int = typer.Option(0, help="Training seed (the splits are fixed files in the package)."),
) -> None:
    """Run the ablations (one results row each), write results.json and results.md, print each table beside
    the paper's."""
    from openmer.benchmarks.ablation import (
        ABLATIONS,
        TABLES,
        beside_paper_markdown,
        reference_rows,
        run_ablation_grid,
    )
    from openmer.reporting.results import write_results
    from openmer.reporting.scores import save_runs

    start = time.perf_counter()
    names = None if only is None else [n.strip() for n in only.split(",") if n.strip()]
    with rich_progress() as progress:
        result = run_ablation_grid(data, names=names, quick=quick, seed=seed,
                                   table=None if table is None else table.value,
                                   progress=ProgressCallback(progress, f"ablate {data}"))
    result.meta["command"] = shlex.join(["openmer", *sys.argv[1:]])
    result.meta["preset"] = result.meta.get("config", {}).get("preset_note", "")
    beside = result.meta.get("beside_paper", {})
    sections = [(f"{TABLES[key].title}: ours beside the paper's", beside_paper_markdown(rows, key))
                for key, rows in beside.items()]
    paths = write_results(out, result.records, result.meta, title=f"HCEP ablations on {data}",
                          reference_rows=reference_rows(list(beside)), sections=sections)
    save_runs(out, result.runs)
    for key, rows in beside.items():
        console.print(_beside_table(TABLES[key].title, TABLES[key].paper, data, rows))
    for name, reason in result.meta.get("ablations_left_out", {}).items():
        console.print(f"left out {name}: {reason}", highlight=False)
    console.print(f"ran {len(result.meta['ablations'])} of {len(ABLATIONS)} ablations; "
                  f"wrote {', '.join(str(p) for p in paths.values())}")
    console.print(f"ablate {data} took {time.perf_counter() - start:.1f} s")


def _beside_table(title: str, paper: str | None, dataset: str, rows: list[dict]) -> Table:
    def pct(v: float | None, digits: int) -> str:
        return "—" if v is None else f"{100 * v:.{digits}f}"

    ref = f"paper: HCEP {paper}, MAFW; reference, not measured here" if paper else "paper: no published numbers"
    table = Table(title=title, caption=f"ours: {dataset}, mean over levels; {ref}; percent", box=box.SIMPLE_HEAD)
    table.add_column("paper's row / our ablation", no_wrap=True)
    for col in ("AUROC\nours", "OSCR\nours", "AUROC\npaper", "OSCR\npaper"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(f"{escape(r['row'])}\n[dim]{escape(r['method'])}[/]", pct(r["auroc"], 1), pct(r["oscr"], 1),
                      pct(r["paper_auroc"], 2), pct(r["paper_oscr"], 2))
    return table
