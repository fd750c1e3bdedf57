"""``openmer complexity``: parameters and inference time per clip of HCEP vs ARPL and MSP (HCEP Table 8)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from openmer.cli.app import app
from openmer.cli.common import console, handle_errors
from openmer.files import atomic_write_text


@app.command()
@handle_errors
def complexity(
    profile: str = typer.Option("offline", "--profile", help="Backbone profile: offline or paper."),
    data: str = typer.Option("emodb", "--data", help="A built-in dataset with audio and text (emodb: 2 s clips), "
                                                     "NAME=PATH for your copy of one, or a manifest; its first clips "
                                                     "are timed."),
    n_clips: int = typer.Option(16, "--clips", min=1, help="Clips per timed batch."),
    repeats: int = typer.Option(5, "--repeats", min=1, help="Timed rounds (median reported)."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="torch threads (default: torch's, recorded)."),
    known: str | None = typer.Option(None, "--known", help="Comma-separated known classes (default: the first 5)."),
    json_path: Path | None = typer.Option(None, "--json", help="Also write the report as JSON here."),
    audio_prompt_entry: str | None = typer.Option(
        None, "--audio-prompt-entry", help="waveform (paper) or features (tokens after the conv front end)."),
) -> None:
    """Learnable/frozen parameters and ms per clip of HCEP, ARPL and MSP on the same encoders and clips."""
    from openmer.backbones import profile_config
    from openmer.benchmarks.cost import complexity_report

    known_list = [k.strip() for k in known.split(",") if k.strip()] if known else None
    prof = profile_config(profile)
    if audio_prompt_entry is not None:
        prof = prof.with_options("audio", prompt_entry=audio_prompt_entry)
    rep = complexity_report(prof, data, n_clips=n_clips, repeats=repeats, threads=threads, known=known_list)
    mach = rep["machine"]
    table = Table(title=f"HCEP Table 8 on profile {rep['profile']!r}: {rep['clips']}, K={len(rep['known_classes'])}\n"
                        f"{mach['processor']}, {mach['cpu_count']} CPUs, {mach['torch_threads']} torch threads, "
                        f"{mach['device']}, load {mach['load_average_1_5_15min']}, {mach['date']}")
    for col in ("method", "learnable params", "frozen params", "ms / clip", "first call ms / clip"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in rep["records"]:
        table.add_row(r["method"], f"{r['learnable_params']:,}", f"{r['frozen_params']:,}", f"{r['ms_per_clip']:.1f}",
                      f"{r['first_call_ms_per_clip']:.1f}")
    console.print(table)
    for r in rep["records"]:
        console.print(f"{r['method']}: {r['input']}", highlight=False)
    ra, cc = rep["ratio"], rep["cuep_check"]
    lr = ", ".join(f"{m} {v:.3f}" for m, v in ra["length_ratio"].items())
    verdict = "[green]ok[/]" if ra["target_ok"] else "[red]above target[/]"
    console.print(f"time HCEP / ARPL = {ra['time_ratio_hcep_over_arpl']:.3f}; input-length ratios {lr}; "
                  f"linear length floor {ra['length_ratio_floor']:.3f}; measured floor (the same encoder calls, "
                  f"zero prompts) {ra['measured_floor']:.3f}; target <= {ra['target']:.3f}: {verdict}; "
                  f"paper Table 8 (reference): {ra['paper_table8_time_ratio']:.2f}x", highlight=False)
    console.print(f"CUEP features computed once: {cc['cuep_encoded_once']} (first HCEP call "
                  f"{cc['first_call_ms_per_clip']:.1f} ms/clip, later {cc['later_call_ms_per_clip']:.1f} ms/clip; "
                  f"encoder calls first {cc['encoder_calls_first']}, later {cc['encoder_calls_later'][0]})",
                  highlight=False)
    console.print(reference_table8(rep["reference"]))
    text = json.dumps(rep, indent=2)
    typer.echo(text)
    if json_path is not None:
        atomic_write_text(json_path, text + "\n")


def reference_table8(reference: dict) -> Table:
    """HCEP's published Table 8 as a rich table, titled as reference (not measured here)."""
    table = Table(title=f"HCEP {reference['table']} (reference): {reference['note']}")
    for col in ("openness", "modality", "method", "AUROC (%)", "OSCR (%)", "learnable params (M)", "pretrained",
                "inference (s)"):
        table.add_column(col, justify="right" if "(" in col else "left")
    for r in reference["rows"]:
        table.add_row(r["level"], r["modality"], r["method"], f"{100 * r['auroc']:.2f}", f"{100 * r['oscr']:.2f}",
                      f"{r['learnable_params_m']:g}", str(r["pretrained"]), f"{r['inference_s']:g}")
    return table
