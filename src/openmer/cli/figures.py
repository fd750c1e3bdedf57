"""``openmer figures RUN_DIR``: the HCEP paper's figures (Figs. 6-11) for a finished benchmark folder."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path

import typer

from openmer.cli.app import app
from openmer.cli.common import console, handle_errors


class FigureKind(str, Enum):
    all = "all"
    distributions = "distributions"
    curves = "curves"
    threshold = "threshold"
    confusion = "confusion"
    tsne = "tsne"


@app.command()
@handle_errors
def figures(
    run_dir: Path = typer.Argument(..., help="A finished `openmer benchmark` folder (it holds scores/)."),
    kind: list[FigureKind] = typer.Option(
        [FigureKind.all], "--kind",
        help="Which figures (repeatable): distributions (Fig. 7), curves (ROC/OSCR, Fig. 9), threshold "
             "(Fig. 10), confusion (Fig. 11), tsne (Figs. 6, 8), or all."),
    method: str | None = typer.Option(None, "--method", help="Only this method, e.g. hcep."),
    level: str | None = typer.Option(None, "--level", help="Only this openness level as saved, e.g. 'O(6:2)'."),
    split: int | None = typer.Option(None, "--split", help="Split for the per-run figures (default: the first saved)."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default RUN_DIR/figures/paper)."),
    acceptance: float | None = typer.Option(
        None, "--acceptance", min=0.01, max=1.0,
        help="Open-set confusion threshold: accept this fraction of the run's known training/validation "
             "confidences (e.g. 0.62, the paper's range); default: the run's deployed threshold. Never test data."),
    threads: int = typer.Option(1, "--threads", min=1, help="BLAS/OpenMP threads for t-SNE."),
) -> None:
    """Write the paper's figures as PNGs: distributions, ROC/OSCR, threshold sweep, confusion, t-SNE."""
    from openmer.reporting.commands import paper_figures

    start = time.perf_counter()
    report = paper_figures(run_dir, kinds=[k.value for k in kind], method=method, level=level, split=split,
                           out=out, acceptance=acceptance, threads=threads)
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    for path in report.written:
        typer.echo(str(path))
    console.print(f"wrote {len(report.written)} figure(s) to {report.out_dir} in {time.perf_counter() - start:.1f} s",
                  highlight=False)
