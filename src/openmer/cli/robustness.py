"""``openmer benchmark robustness``'s options (:mod:`openmer.benchmarks.robustness`) and ``openmer recalibrate``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from openmer.cli.app import app
from openmer.cli.common import MODELS_DIR_OPTION, console, handle_errors
from openmer.cli.run import RUN_PROFILE_HELP
from openmer.errors import ConfigError


def robustness_cfg(name: str, data: str | None, *, seed: int, quick: bool, profile: str | None,
                   corruptions: str | None, severities: str | None, augment: str | None = None) -> Any:
    """The robustness preset on ``data`` (default emodb) with ``--corruptions`` / ``--severities``.

    Raises:
        ConfigError: the options on another benchmark, an unknown corruption, severities that are
            not positive integers.
    """
    from openmer.benchmarks.registry import on_profile
    from openmer.benchmarks.robustness import robustness_config
    from openmer.media.corruptions import parse_corruptions

    if name != "robustness":
        raise ConfigError(f"--corruptions, --severities and --augment apply to benchmark robustness, not {name}")
    cfg = on_profile(robustness_config(data or "emodb", seed=seed, quick=quick), profile)
    update: dict[str, Any] = {}
    if corruptions:
        update["corruptions"] = parse_corruptions(corruptions)
    if severities:
        try:
            sev = tuple(int(s) for s in severities.split(",") if s.strip())
        except ValueError:
            raise ConfigError(f"--severities takes integers like 1,3, not {severities!r}") from None
        if not sev or min(sev) < 1:
            raise ConfigError(f"--severities must be positive integers, not {severities!r}")
        update["severities"] = sev
    if augment:
        update["augment"] = parse_corruptions(augment)
    return cfg.model_copy(update=update) if update else cfg


@app.command()
@handle_errors
def recalibrate(
    run_dir: Path = typer.Argument(..., help="A run folder from `openmer train`."),
    data: str = typer.Option(
        ..., "--data", help="Clips recorded in the new environment: a manifest file, or NAME=PATH."),
    out: Path = typer.Option(..., "--out", help="The new run folder (the run with the recalibrated threshold)."),
    unlabeled: bool = typer.Option(
        False, "--unlabeled", help="Use every clip (assumes unknown classes are rare in them); default: only the "
                                   "clips labelled with a known class."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run already in --out."),
    profile: str | None = typer.Option(None, "--profile", help=RUN_PROFILE_HELP),
    models_dir: Path | None = MODELS_DIR_OPTION,
) -> None:
    """Re-choose a run's threshold at its acceptance rate on speech from a new room, phone line or codec,
    without unknown-class data (docs/robustness.md), and write the run with it to --out."""
    from openmer.cli.run import _profile
    from openmer.inference.loaded import load_run
    from openmer.inference.recalibrate import recalibrate as recalibrate_run

    run = load_run(run_dir, profile=None if profile is None else _profile(profile))
    res = recalibrate_run(run, data, out, clips="unlabeled" if unlabeled else "known", overwrite=overwrite)
    console.print(f"threshold {res.before:.6g} -> {res.threshold.value:.6g} at acceptance "
                  f"{res.threshold.acceptance:g} on {res.n_clips} clip(s); wrote {res.run_dir}", highlight=False)
