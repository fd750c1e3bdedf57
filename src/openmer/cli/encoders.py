"""``openmer bench-encoders``: encoder throughput with and without prompts on this machine."""

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
    from openmer.backbones.bench import bench_encoders as run

    records = run(profile, n_clips=n_clips, repeats=repeats, threads=threads)
    table = Table(title=f"encoders of profile {profile!r} ({records[0]['device'] if records else ''})")
    for col in ("modality", "encoder", "input", "clips/s without", "clips/s with", "overhead", "length ratio", "peak MB"):
        table.add_column(col)
    for r in records:
        table.add_row(r["modality"], r["encoder"], r["input"], f"{r['clips_per_s_without_prompts']:.1f}",
                      f"{r['clips_per_s_with_prompts']:.1f}", f"{r['overhead']:.3f}", f"{r['length_ratio']:.3f}",
                      f"{r['peak_mem_mb']:.1f}")
    console.print(table)
    typer.echo(json.dumps(records, indent=2))
    if json_path is not None:
        atomic_write_json(json_path, records)
