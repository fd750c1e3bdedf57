"""``openmer starter``: train the ready speech model and write its model card."""

from __future__ import annotations

from pathlib import Path

import typer

from openmer.cli.app import app
from openmer.cli.common import MODELS_DIR_OPTION, PROFILE_HELP, console, handle_errors, rich_progress


@app.command()
@handle_errors
def starter(
    out: Path = typer.Option(Path("runs/starter"), "--out",
                             help="Run folder to write (then: openmer predict OUT clip.wav)."),
    emodb: str | None = typer.Option(None, "--emodb",
                                     help="Your EmoDB folder (official layout); default the shared copy."),
    ravdess: str | None = typer.Option(
        None, "--ravdess", help="Your RAVDESS speech folder (Actor_NN/...); default the shared copy."),
    profile: str = typer.Option("offline", "--profile", help=PROFILE_HELP),
    models_dir: Path | None = MODELS_DIR_OPTION,
    cross_corpus: bool = typer.Option(
        True, "--cross-corpus/--no-cross-corpus",
        help="Also train on each corpus alone and score the other's held-out speakers (the card's cross-corpus rows)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the run OUT holds."),
    max_per_class: int | None = typer.Option(
        None, "--max-per-class", min=1, hidden=True, help="Tiny budget (tests): clips per corpus, split and class."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, hidden=True, help="Tiny budget (tests): epochs."),
) -> None:
    """Train a ready speech model on EmoDB + RAVDESS (anger, happiness, neutral, sadness or unknown) + its card.

    About 10 minutes on a 2-core CPU: ARPL, the method the benchmarks rank first on open-set speech,
    on frozen Whisper-base features; held-out speakers of both corpora score it (README.md in OUT).
    """
    from openmer.starter import build_starter

    sources = {k: f"{k}={v}" for k, v in (("emodb", emodb), ("ravdess-speech", ravdess)) if v}
    with rich_progress() as progress:
        task = progress.add_task("starter", total=None, status="")

        def on_epoch(epoch: int, total: int, status: dict) -> None:
            progress.update(task, completed=epoch, total=total, status=f"loss {status['train_loss']:.4f}")

        result = build_starter(out, profile=profile, sources=sources or None, max_per_class=max_per_class,
                               epochs=epochs, cross_corpus=cross_corpus, overwrite=overwrite, progress=on_epoch,
                               say=lambda line: console.print(line, highlight=False, markup=False))
    for r in result["rows"]:
        console.print(f"{r.name} ({r.model}): AUROC {r.auroc.text()}  OSCR {r.oscr.text()}  "
                      f"closed-set acc. {r.closed_acc.text()}  FPR at threshold {r.fpr_at_threshold.text()}",
                      highlight=False)
    console.print(f"saved {result['run_dir']} in {result['seconds'] / 60:.1f} min; its model card: {result['card']}\n"
                  f"next: openmer predict {result['run_dir']} your_clip.wav", highlight=False)
