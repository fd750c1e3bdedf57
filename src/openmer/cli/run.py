"""``openmer train``, ``openmer evaluate``, ``openmer predict``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from openmer.cli.app import app
from openmer.cli.common import console, handle_errors, rich_progress


@app.command()
@handle_errors
def train(
    data: str = typer.Option(..., "--data", help="A manifest file (.csv/.jsonl) or a built-in dataset: emodb, meld."),
    known: str = typer.Option(..., "--known", help="Comma-separated known classes, in class-index order."),
    out: Path = typer.Option(..., "--out", help="Run folder to write."),
    method: str = typer.Option("hcep", "--method", help="hcep, or a feature method: msp, arpl, cssr, cpn, lpl (docs/methods.md)."),
    profile: str = typer.Option("offline", "--profile", help="Encoders: offline (../shared/models) or paper (CLIP + wav2vec 2.0)."),
    epochs: int | None = typer.Option(None, "--epochs", help="Epochs (paper: 150)."),
    lr: float | None = typer.Option(None, "--lr", help="Learning rate (paper: 5e-4)."),
    batch_size: int | None = typer.Option(None, "--batch-size"),
    optimizer: str | None = typer.Option(None, "--optimizer", help="sgd (paper) or adam."),
    seed: int = typer.Option(0, "--seed"),
    acceptance: float = typer.Option(0.90, "--acceptance", help="Known-class acceptance rate that sets the deployable threshold."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from OUT/last."),
    audio_prompt_entry: str | None = typer.Option(
        None, "--audio-prompt-entry",
        help="waveform (paper: 2 x 8000 samples before the clip) or features (2 tokens after the conv front end; cheaper)."),
) -> None:
    """Train a method on the known classes of a dataset and save a run folder."""
    from openmer.backbones import profile_config
    from openmer.training import TrainConfig
    from openmer.training.run import train as train_run

    prof = profile_config(profile)
    if audio_prompt_entry is not None:
        prof = prof.with_options("audio", prompt_entry=audio_prompt_entry)

    update = {k: v for k, v in {"epochs": epochs, "lr": lr, "batch_size": batch_size, "optimizer": optimizer}.items() if v is not None}
    cfg = TrainConfig.from_dict({**TrainConfig(seed=seed).to_dict(), **update})
    classes = [c.strip() for c in known.split(",") if c.strip()]
    with rich_progress() as progress:
        task = progress.add_task(f"train {method}", total=cfg.epochs, status="")

        def on_epoch(epoch: int, total: int, status: dict) -> None:
            text = f"loss {status['train_loss']:.4f}"
            for key in ("val_acc", "val_auroc", "val_oscr"):
                if key in status:
                    text += f"  {key} {status[key]:.3f}"
            progress.update(task, completed=epoch, total=total, status=text)

        run_dir = train_run(data, classes, method=method, profile=prof, out=out, train_config=cfg,
                            acceptance=acceptance, resume=resume, progress=on_epoch)
    info = json.loads((run_dir / "run.json").read_text())
    console.print(f"saved {run_dir} (selected epoch {info['best_epoch']}, threshold {info['threshold']:.4f})")


@app.command()
@handle_errors
def evaluate(
    run_dir: Path = typer.Argument(..., help="A run folder from `openmer train`."),
    data: str = typer.Option(..., "--data", help="A manifest file or a built-in dataset (its test groups)."),
    out: Path | None = typer.Option(None, "--out", help="Where evaluation.json and figures go (default RUN_DIR/eval)."),
) -> None:
    """AUROC, OSCR, closed-set accuracy and figures of a run on a dataset (other classes = unknown)."""
    from openmer.inference import evaluate as evaluate_run

    metrics = evaluate_run(run_dir, data, out=out or run_dir / "eval")
    typer.echo(json.dumps(metrics, indent=2))


@app.command()
@handle_errors
def predict(
    run_dir: Path = typer.Argument(..., help="A run folder from `openmer train`."),
    files: list[Path] = typer.Argument(..., help="Video or audio files, or folders of them."),
    text: str | None = typer.Option(None, "--text", help="Transcript for every file (else a sidecar NAME.txt is used)."),
) -> None:
    """Name the emotion of each file, or say `unknown`: one JSON line per file."""
    from openmer.inference import predict as predict_files

    for record in predict_files(run_dir, list(files), text=text):
        typer.echo(json.dumps(record))
