"""``openmer benchmark NAME``: the main jobs on real data."""

from __future__ import annotations

import shlex
import sys
import time
from enum import Enum
from pathlib import Path

import typer

from openmer.cli.app import app
from openmer.cli.common import ProgressCallback, console, handle_errors, rich_progress


class BenchmarkName(str, Enum):
    ravdess = "ravdess"
    emodb = "emodb"
    meld = "meld"


def _config_and_runner(name: "BenchmarkName", seed: int, quick: bool):
    from openmer.benchmarks import media
    from openmer.benchmarks.ravdess import ravdess_config, run_ravdess

    table = {
        "ravdess": (ravdess_config, run_ravdess),
        "emodb": (media.emodb_config, media.run_emodb),
        "meld": (media.meld_config, media.run_meld),
    }
    make, run = table[name.value]
    return make(seed=seed, quick=quick), run


@app.command()
@handle_errors
def benchmark(
    name: BenchmarkName = typer.Argument(..., help="Which benchmark to run."),
    out: Path = typer.Option(Path("runs") / "benchmark", "--out", help="Output folder (results.json, results.md, figures)."),
    seed: int = typer.Option(0, help="Training seed (the splits are fixed files in the package)."),
    quick: bool = typer.Option(False, "--quick", help="Smoke-run preset: fewer splits and epochs."),
) -> None:
    """Run a benchmark on the real data in ../shared and write results.json, results.md and figures."""
    from openmer.reporting.figures import write_standard_figures
    from openmer.reporting.results import write_results
    from openmer.reporting.scores import save_runs

    start = time.perf_counter()
    cfg, run = _config_and_runner(name, seed, quick)
    with rich_progress() as progress:
        result = run(cfg, progress=ProgressCallback(progress, f"benchmark {name.value}"))
    result.meta["command"] = shlex.join(["openmer", *sys.argv[1:]])
    result.meta["preset"] = cfg.preset_note
    paths = write_results(out, result.records, result.meta)
    save_runs(out, result.runs)
    figures = write_standard_figures(out, result.runs)
    console.print(f"wrote {', '.join(str(p) for p in [*paths.values(), *figures])}")
    console.print(f"benchmark {name.value} took {time.perf_counter() - start:.1f} s")
