"""``openmer train``, ``openmer evaluate``, ``openmer predict``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from openmer.cli.app import app
from openmer.cli.common import (
    EXIT_SOME_FAILED,
    MODELS_DIR_OPTION,
    PROFILE_HELP,
    ProgressCallback,
    console,
    handle_errors,
    rich_progress,
)
from openmer.training.presets import DEFAULT_PRESET, PRESET_HELP

if TYPE_CHECKING:
    from openmer.backbones import ProfileConfig
    from openmer.media.corruptions import Augmentation

RUN_PROFILE_HELP = ("The profile the run was trained with, when it is not a built-in one (a profile JSON file); "
                    "a run's encoders load only from its profile, never from a path in the run folder.")


def _profile(value: str) -> ProfileConfig:
    """A profile name (``light``, ``offline``, ``paper``) or a profile JSON file (a saved :class:`ProfileConfig`)."""
    from openmer.backbones import ProfileConfig, profile_config

    return ProfileConfig.from_json(Path(value)) if value.endswith(".json") else profile_config(value)


def _augmentation(names: str | None, p: float, max_severity: int) -> Augmentation | None:
    """``--augment`` and its options, checked before any work.

    Raises:
        ConfigError: an unknown corruption or family (the message lists them), an empty list,
            ``--augment-p`` / ``--augment-max-severity`` out of range or given without ``--augment``.
    """
    from openmer.errors import ConfigError
    from openmer.media.corruptions import Augmentation, parse_corruptions

    if names is None:
        if p != 0.5 or max_severity != 3:
            raise ConfigError("--augment-p and --augment-max-severity apply with --augment")
        return None
    try:
        parsed = parse_corruptions(names)
        if not parsed:
            raise ConfigError(f"needs at least one corruption or family, got {names!r}")
        return Augmentation(parsed, p=p, max_severity=max_severity)
    except ConfigError as exc:
        raise ConfigError(f"--augment: {exc}") from None


@app.command()
@handle_errors
def train(
    data: str = typer.Option(..., "--data", help="A manifest file (.csv/.jsonl), a built-in dataset (emodb, "
                                                  "meld, ravdess-speech) or NAME=PATH for your copy of one "
                                                  "(docs/datasets.md)."),
    known: str = typer.Option(..., "--known", help="Comma-separated known classes, in class-index order."),
    out: Path = typer.Option(
        ..., "--out", help="Run folder to write (refused when it holds a run, unless --resume/--overwrite)."),
    method: str = typer.Option("hcep", "--method",
                               help="A registered method (docs/methods.md; an unknown name lists them)."),
    profile: str = typer.Option("offline", "--profile", help=PROFILE_HELP),
    models_dir: Path | None = MODELS_DIR_OPTION,
    preset: str = typer.Option(DEFAULT_PRESET, "--preset",
                               help=f"Schedule and options by name (recorded in run.json); the options below "
                                    f"override it. {PRESET_HELP}"),
    epochs: int | None = typer.Option(None, "--epochs", help="Epochs (paper: 150)."),
    lr: float | None = typer.Option(None, "--lr", help="Learning rate (paper: 5e-4)."),
    batch_size: int | None = typer.Option(None, "--batch-size"),
    optimizer: str | None = typer.Option(None, "--optimizer", help="sgd (paper) or adam."),
    seed: int = typer.Option(0, "--seed", help="Seed of the initial parameters, shuffling and dropout."),
    acceptance: float = typer.Option(
        0.90, "--acceptance", help="Known-class acceptance rate in (0, 1] that sets the deployable threshold."),
    threshold_from: str = typer.Option(
        "train", "--threshold-from",
        help="Whose known-class confidences set the threshold: train (HCEP Sec. 4.4.6) or val."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from OUT/last (same settings)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the run OUT holds."),
    allow_outside_root: bool = typer.Option(
        False, "--allow-outside-root", help="Accept manifest paths that leave the manifest's folder (../)."),
    audio_prompt_entry: str | None = typer.Option(
        None, "--audio-prompt-entry",
        help="waveform (paper: 2 x 8000 samples before the clip) or features "
             "(2 tokens after the conv front end; cheaper)."),
    score: str | None = typer.Option(
        None, "--score",
        help="The confidence the run reports and thresholds: the method's own (default) or another it can report "
             "(hcep: msp, max_logit, energy; feature methods: any post-hoc score, e.g. mahalanobis; docs/methods.md)."),
    augment: str | None = typer.Option(
        None, "--augment",
        help="Corrupt the training clips only, seeded: corruptions or families, comma-separated (e.g. noise,reverb; "
             "docs/robustness.md). Each clip gets one of them with probability --augment-p, at a severity drawn from "
             "1..--augment-max-severity; methods on clips draw anew each epoch, methods on features once."),
    augment_p: float = typer.Option(0.5, "--augment-p", help="With --augment: the share of training clips corrupted."),
    augment_max_severity: int = typer.Option(
        3, "--augment-max-severity", help="With --augment: the highest severity drawn (e.g. 3: SNR down to 5 dB)."),
) -> None:
    """Train a method on the known classes of a dataset and save a run folder."""
    from openmer.methods.registry import get_method
    from openmer.methods.threshold import threshold_source
    from openmer.runs import read_run_info
    from openmer.training import TrainConfig
    from openmer.training.presets import resolve_preset
    from openmer.training.run import train as train_run

    augmentation = _augmentation(augment, augment_p, augment_max_severity)
    prof = _profile(profile)
    if audio_prompt_entry is not None:
        prof = prof.with_options("audio", prompt_entry=audio_prompt_entry)
    method_options = get_method(method).score_options(score) if score is not None else None

    update = {k: v for k, v in {"epochs": epochs, "lr": lr, "batch_size": batch_size, "optimizer": optimizer}.items()
              if v is not None}
    chosen = resolve_preset(preset, get_method(method))
    cfg = TrainConfig.from_dict({**chosen.train.to_dict(), "seed": seed, **update})
    classes = [c.strip() for c in known.split(",") if c.strip()]
    with rich_progress() as progress:
        task = progress.add_task(f"train {method}", total=cfg.epochs, status="")

        def on_epoch(epoch: int, total: int, status: dict) -> None:
            text = f"loss {status['train_loss']:.4f}"
            for key in ("loss_emo", "loss_osr", "train_acc", "val_acc", "val_confidence", "val_auroc", "val_oscr"):
                if key in status:
                    text += f"  {key} {status[key]:.3f}"
            if status.get("collapsed"):
                text += "  COLLAPSED"
            progress.update(task, completed=epoch, total=total, status=text)

        run_dir = train_run(data, classes, method=method, profile=prof, out=out, train_config=cfg, preset=preset,
                            method_options=method_options, acceptance=acceptance,
                            threshold_from=threshold_source(threshold_from),
                            resume=resume, overwrite=overwrite, allow_outside_root=allow_outside_root,
                            progress=on_epoch, augment=augmentation)
    info = read_run_info(run_dir)
    th = info.threshold
    console.print(f"saved {run_dir} (selected epoch {info.best_epoch}; threshold {th.value:.4f} accepts "
                  f"{th.acceptance:.2f} of the known-class {th.source_words} clips)", highlight=False)


@app.command()
@handle_errors
def evaluate(
    run_dir: Path = typer.Argument(..., help="A run folder from `openmer train`."),
    data: str = typer.Option(
        ..., "--data", help="A manifest file (its test rows when it has a split column), or a built-in dataset or "
                            "NAME=PATH for your copy of one (its test groups)."),
    out: Path | None = typer.Option(None, "--out", help="Where evaluation.json and figures go (default RUN_DIR/eval)."),
    allow_outside_root: bool = typer.Option(
        False, "--allow-outside-root", help="Accept manifest paths that leave the manifest's folder (../)."),
    score: str | None = typer.Option(
        None, "--score",
        help="A post-hoc score on the run's trained head instead of its own confidence (msp, max_logit, energy, "
             "entropy, mahalanobis, knn, vim), fitted and thresholded on the run's training clips in DATA."),
    models_dir: Path | None = MODELS_DIR_OPTION,
    profile: str | None = typer.Option(None, "--profile", help=RUN_PROFILE_HELP),
) -> None:
    """AUROC, OSCR, closed-set accuracy, the rates at the stored threshold, and figures (other classes = unknown)."""
    from openmer.files import json_safe
    from openmer.inference import evaluate as evaluate_run
    from openmer.methods.threshold import SOURCE_WORDS

    metrics = evaluate_run(run_dir, data, out=out or run_dir / "eval", allow_outside_root=allow_outside_root,
                           score=score, profile=None if profile is None else _profile(profile))
    typer.echo(json.dumps(json_safe(metrics), indent=2, allow_nan=False))
    console.print(f"{metrics['n_known']} known + {metrics['n_unknown']} unknown clips ({metrics['clips']}): "
                  f"AUROC {metrics['auroc']:.3f}, OSCR {metrics['oscr']:.3f}", highlight=False)
    rows = [("stored", metrics["threshold_acceptance"], metrics["at_threshold"])]
    rows += [("target", p["acceptance"], p) for p in metrics["at_acceptance"]]
    console.print(f"{'threshold':>10} {'chosen at':>10} {'known acc.':>10} {'TPR':>6} {'FPR':>6} {'CCR':>6}  "
                  f"(chosen on the {SOURCE_WORDS[metrics['threshold_source']]} clips)", highlight=False)
    for name, a, p in rows:
        at = f"{a:.2f} {name}"
        console.print(f"{p['threshold']:>10.4f} {at:>10} {p['known_acceptance']:>10.3f} {p['tpr']:>6.3f} "
                      f"{p['fpr']:>6.3f} {p['ccr']:>6.3f}", highlight=False)


@app.command()
@handle_errors
def predict(
    run_dir: str = typer.Argument(..., help="A run folder from `openmer train`, or a Hugging Face hub repo id "
                                            "(owner/name)."),
    files: list[Path] = typer.Argument(..., help="Video or audio files, or folders of them."),
    text: str | None = typer.Option(
        None, "--text", help="Transcript for every file (else a sidecar NAME.txt is used)."),
    window: float = typer.Option(
        10.0, "--window", help="Clips longer than this (seconds) are scored in windows of it."),
    hop: float = typer.Option(5.0, "--hop", help="Seconds between the starts of two windows."),
    models_dir: Path | None = MODELS_DIR_OPTION,
    profile: str | None = typer.Option(None, "--profile", help=RUN_PROFILE_HELP),
) -> None:
    """Name the emotion of each file, or say `unknown`: one JSON line per file.

    A file that cannot be used gets a line {"file": ..., "error": ...} and the others are still
    scored; the exit status is then 3 (1: nothing could run, e.g. an unreadable run folder).
    """
    from openmer.files import json_line
    from openmer.hub import resolve_run
    from openmer.inference import predict_iter

    failed = total = 0
    with rich_progress() as bar:
        windows = ProgressCallback(bar, "windows")
        run = resolve_run(run_dir)
        for record in predict_iter(run, list(files), text=text, window=window, hop=hop, progress=windows,
                                   profile=None if profile is None else _profile(profile)):
            total += 1
            failed += "error" in record
            typer.echo(json_line(record))
    if failed:
        console.print(f"[bold red]error:[/] {failed} of {total} file(s) could not be used (see their \"error\")",
                      highlight=False)
        raise typer.Exit(code=EXIT_SOME_FAILED)
