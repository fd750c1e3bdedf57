"""``openmer ablate``: the HCEP ablation grid (Tables 5-7, Fig. 4) on a dataset preset."""

from __future__ import annotations

import shlex
import sys
import time
from enum import Enum
from pathlib import Path

import typer

from openmer.cli.app import app
from openmer.cli.common import ProgressCallback, console, handle_errors, rich_progress


class AblationData(str, Enum):
    emodb = "emodb"
    meld = "meld"


@app.command()
@handle_errors
def ablate(
    data: AblationData = typer.Option(AblationData.emodb, "--data", help="Dataset preset to run the ablations on."),
    out: Path = typer.Option(Path("runs") / "ablate", "--out", help="Output folder (results.json, results.md, scores/)."),
    only: str | None = typer.Option(None, "--only", help="Comma-separated ablation names (default: all that apply)."),
    quick: bool = typer.Option(False, "--quick", help="Smoke-run preset: fewer levels, splits and epochs."),
    seed: int = typer.Option(0, help="Training seed (the splits are fixed files in the package)."),
) -> None:
    """Run HCEP once per ablation (one results row per ablation) and write results.json and results.md."""
    from openmer.benchmarks.ablation import ABLATIONS, run_ablation_grid
    from openmer.reporting.results import write_results
    from openmer.reporting.scores import save_runs

    start = time.perf_counter()
    names = None if only is None else [n.strip() for n in only.split(",") if n.strip()]
    with rich_progress() as progress:
        result = run_ablation_grid(data.value, names=names, quick=quick, seed=seed,
                                   progress=ProgressCallback(progress, f"ablate {data.value}"))
    result.meta["command"] = shlex.join(["openmer", *sys.argv[1:]])
    result.meta["preset"] = result.meta.get("config", {}).get("preset_note", "")
    paths = write_results(out, result.records, result.meta, title=f"HCEP ablations on {data.value}")
    save_runs(out, result.runs)
    for name, reason in result.meta.get("ablations_left_out", {}).items():
        console.print(f"left out {name}: {reason}", highlight=False)
    console.print(f"ran {len(result.meta['ablations'])} of {len(ABLATIONS)} ablations; "
                  f"wrote {', '.join(str(p) for p in paths.values())}")
    console.print(f"ablate {data.value} took {time.perf_counter() - start:.1f} s")
