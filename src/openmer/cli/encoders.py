"""``openmer bench-encoders`` and ``openmer bench-train``: encoder throughput with and without prompts, and
the cost of an HCEP training step, on this machine."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from openmer.cli.app import app
from openmer.cli.common import console, handle_errors
from openmer.files import atomic_write_json


@app.command("bench-encoders")
@handle_errors
def bench_encoders(
    profile: str = typer.Option("offline", "--profile", help="offline or paper."),
    n_clips: int = typer.Option(8, "--clips", help="Clips per timed batch."),
    repeats: int = typer.Option(5, "--repeats", help="Timed batches (median reported)."),
    threads: int | None = typer.Option(None, "--threads", help="torch threads (default: torch's)."),
    json_path: Path | None = typer.Option(None, "--json", help="Also write the records as JSON here."),
) -> None:
    """Clips/s and peak memory per modality, without and with prompts (same encoder, same clips)."""
    from openmer.benchmarks.cost import bench_encoders as run

    records = run(profile, n_clips=n_clips, repeats=repeats, threads=threads)
    table = Table(title=f"encoders of profile {profile!r} ({records[0]['device'] if records else ''})")
    for col in ("modality", "encoder", "input", "clips/s without", "clips/s with", "overhead", "length ratio",
                "peak MB"):
        table.add_column(col)
    for r in records:
        table.add_row(r["modality"], r["encoder"], r["input"], f"{r['clips_per_s_without_prompts']:.1f}",
                      f"{r['clips_per_s_with_prompts']:.1f}", f"{r['overhead']:.3f}", f"{r['length_ratio']:.3f}",
                      f"{r['peak_mem_mb']:.1f}")
    console.print(table)
    typer.echo(json.dumps(records, indent=2))
    if json_path is not None:
        atomic_write_json(json_path, records)


@app.command("bench-train")
@handle_errors
def bench_train(
    profile: str = typer.Option("offline", "--profile", help="Encoder profile (offline: MiniLM + Whisper)."),
    data: str = typer.Option("emodb", "--data", help="The clips timed: a built-in dataset with audio and text "
                                                     "(emodb), NAME=PATH for your copy of one, or a manifest."),
    known: str | None = typer.Option(None, "--known", help="Comma-separated known classes (default: the first 5)."),
    variants: str | None = typer.Option(
        None, "--variants", help="Comma-separated subset of: waveform, waveform-no-dedupe, features, late, late-bf16."),
    n_clips: int = typer.Option(32, "--clips", help="Clips per training step (one batch)."),
    repeats: int = typer.Option(3, "--repeats", help="Timed rounds (median reported)."),
    threads: int | None = typer.Option(None, "--threads", help="torch threads (default: torch's)."),
    json_path: Path | None = typer.Option(None, "--json", help="Also write the records as JSON here."),
) -> None:
    """The cost of one HCEP training step per component and prompt entry, against the baselines' forward."""
    from openmer.benchmarks.cost import train_step_report

    chosen = [v.strip() for v in variants.split(",") if v.strip()] if variants else None
    known_list = [k.strip() for k in known.split(",") if k.strip()] if known else None
    rep = train_step_report(profile, data, variants=chosen, n_clips=n_clips, repeats=repeats, threads=threads,
                            known=known_list)
    table = Table(title=f"HCEP training step, {rep['clips']}, {rep['records'][0]['torch_threads']} "
                        f"torch threads, medians of {rep['repeats']}")
    cols = ("variant", "step s", "clips s", "cuep s", "dpol s", "backward s", "optim s", "floor s", "forward s",
            "step/forward", "step/floor", "clips/s", "peak MB")
    for col in cols:
        table.add_column(col, justify="left" if col == "variant" else "right")
    for r in rep["records"]:
        table.add_row(r["variant"], *(f"{r[k]:.3f}" for k in ("step_s", "clips_s", "cuep_s", "dpol_s", "backward_s",
                                                              "optimizer_s", "floor_s", "forward_s")),
                      f"{r['step_over_forward']:.2f}", f"{r['step_over_floor']:.2f}", f"{r['clips_per_s']:.1f}",
                      f"{r['peak_mem_mb']:.0f}")
    console.print(table)
    typer.echo(json.dumps(rep["records"], indent=2))
    if json_path is not None:
        atomic_write_json(json_path, rep["records"])
