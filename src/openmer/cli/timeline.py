"""``openmer timeline``: emotion timelines of long recordings (``docs/timeline.md``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from openmer.cli.app import app
from openmer.cli.common import EXIT_SOME_FAILED, ProgressCallback, console, handle_errors, rich_progress


def _in_seconds(cb: ProgressCallback) -> Callable[[float, float, str], None]:
    """The library's ``progress(seconds done, seconds total, message)`` shown in whole seconds."""

    def report(done: float, total: float, message: str) -> None:
        cb(int(done), int(total), message)

    return report


def _heap_choice(heap: str) -> bool:
    """``--heap``: True for ``bounded``, False for ``default`` (ConfigError otherwise)."""
    from openmer.errors import ConfigError

    if heap not in ("bounded", "default"):
        raise ConfigError(f"--heap must be bounded or default, got {heap!r}")
    return heap == "bounded"


@app.command("timeline")
@handle_errors
def timeline_command(
    run_dir: str = typer.Argument(..., help="A run folder from `openmer train`, or a Hugging Face hub repo id "
                                            "(owner/name)."),
    recordings: list[Path] = typer.Argument(..., help="Audio or video recordings, any length."),
    out: Path = typer.Option(..., "--out", help="Output folder (one sub-folder per recording when several)."),
    transcript: Path | None = typer.Option(
        None, "--transcript", help="SRT, WebVTT or JSON transcript (else NAME.srt/.vtt/.json beside the recording)."),
    window: float = typer.Option(4.0, "--window", help="Window length in seconds."),
    hop: float = typer.Option(2.0, "--hop", help="Seconds between window starts."),
    smooth: int = typer.Option(1, "--smooth", help="Windows averaged before deciding (odd; 1 = no smoothing)."),
    min_segment: float = typer.Option(0.0, "--min-segment", help="Segments shorter than this (s) join a neighbour."),
    min_pause: float = typer.Option(0.3, "--min-pause", help="Shorter speech pauses (s) do not cut a segment."),
    vad_threshold: float = typer.Option(0.5, "--vad-threshold", help="Silero speech probability of a speech frame."),
    min_speech: float = typer.Option(0.25, "--min-speech", help="Fraction of speech a window needs to be scored."),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads for torch (default: torch's)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted timeline in --out."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a timeline in --out."),
    heap: str = typer.Option("bounded", "--heap", help="bounded: peak memory that does not grow with the recording "
                             "(glibc's mmap threshold fixed at 1 MiB; 19-33 % slower); default: the "
                             "allocator as it is."),
) -> None:
    """Windows with a known class, `unknown` (to review) or `no_speech`, as they are scored:
    timeline.csv, segments.csv/.json, summary.json and timeline.png in --out."""
    import torch

    from openmer.errors import ConfigError, OpenmerError
    from openmer.hub import resolve_run
    from openmer.inference import load_run
    from openmer.timeline import TimelineConfig, timeline

    config = TimelineConfig(window=window, hop=hop, smooth=smooth, min_segment=min_segment, min_pause=min_pause,
                            vad_threshold=vad_threshold, min_speech=min_speech)
    config.check()
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite: give one of them")
    bounded = _heap_choice(heap)
    if transcript is not None and len(recordings) > 1:
        raise ConfigError("--transcript names one transcript: give one recording with it")
    stems = [r.stem for r in recordings]
    if len(recordings) > 1 and len(set(stems)) < len(stems):
        raise ConfigError("recordings with the same name would share an output folder: rename one")
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    run = load_run(resolve_run(run_dir))
    failed = 0
    for rec in recordings:
        dest = out if len(recordings) == 1 else out / rec.stem
        try:
            with rich_progress() as bar:
                cb = ProgressCallback(bar, f"timeline {rec.name} (s of audio)")
                result = timeline(run, rec, dest, config=config, transcript=transcript, resume=resume,
                                  overwrite=overwrite, progress=_in_seconds(cb), bounded_heap=bounded)
        except OpenmerError as exc:
            if len(recordings) == 1:
                raise
            failed += 1
            console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            continue
        s = result.summary
        u = s["unknown_stretches"]
        console.print(f"{rec.name}: {s['duration_s'] / 60:.1f} min, {s['n_scored_windows']} of {s['n_windows']} "
                      f"windows with speech, {u['count']} unknown stretch(es) ({u['total_s']:.1f} s) to review; "
                      f"{s['real_time_factor']}x real time -> {dest}", highlight=False, soft_wrap=True)
        if s["decode_errors"]:
            for g in s["decode_errors"]:
                until = "the end" if g["end_s"] is None else f"{g['end_s']:.2f} s"
                console.print(f"[yellow]warning:[/] {rec.name}: could not decode {g['start_s']:.2f} s - {until} "
                              f"({g['reason']}); the rest was scored", highlight=False, soft_wrap=True)
        if s["messages"]:
            failed += 1
    if failed:
        raise typer.Exit(code=EXIT_SOME_FAILED)


def benchmark_timeline(data: str, out: Path, *, seed: int = 0, quick: bool = False, methods: str | None = None,
                       levels: str | None = None, splits: int | None = None, cue_offsets: str | None = None) -> None:
    """``openmer benchmark timeline --data NAME`` (see :mod:`openmer.timeline.benchmark`).

    Raises:
        ConfigError: ``cue_offsets`` not numbers like ``0.5,1,2``.
    """
    import math
    import time

    from openmer.cli.benchmark import selection_update
    from openmer.errors import ConfigError
    from openmer.timeline.benchmark import run_timeline_benchmark, timeline_config

    start = time.perf_counter()
    cfg = timeline_config(seed=seed, quick=quick, data=data)
    update = selection_update(methods, levels, splits)
    if cue_offsets is not None:
        try:
            update["cue_offsets"] = tuple(float(d) for d in cue_offsets.split(",") if d.strip())
        except ValueError:
            raise ConfigError(f"--cue-offsets takes seconds like 0.5,1,2, not {cue_offsets!r}") from None
        if any(not math.isfinite(d) or d == 0 for d in update["cue_offsets"]):
            raise ConfigError(f"--cue-offsets must be finite, non-zero seconds, not {cue_offsets!r}")
    cfg = cfg.model_copy(update=update)
    with rich_progress() as bar:
        run_timeline_benchmark(cfg, out, progress=ProgressCallback(bar, f"benchmark timeline {data}"))
    console.print(f"wrote {out / 'results.json'}, {out / 'results.md'}")
    console.print(f"benchmark timeline took {time.perf_counter() - start:.1f} s")


@app.command("bench-timeline")
@handle_errors
def bench_timeline_command(
    runs: list[Path] = typer.Argument(None, help="Run folders to time (e.g. a feature method's and HCEP's); a run "
                                              "that reads faces is timed on the video recording."),
    minutes: str = typer.Option("10,120", "--minutes", help="Recording lengths in minutes, comma-separated."),
    threads: str = typer.Option("1,2", "--threads", help="torch thread counts, comma-separated."),
    fmt: str = typer.Option("m4a", "--format", help="m4a (AAC) or wav."),
    window: float = typer.Option(4.0, "--window"),
    hop: float = typer.Option(2.0, "--hop"),
    workdir: Path = typer.Option(Path("runs") / "bench-timeline", "--workdir", help="Recordings and outputs go here."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the rows to this JSON file."),
    video_runs: str = typer.Option("", "--video-runs", help="Methods (e.g. msp,hcep) whose face + audio runs are "
                                   "trained in --workdir (once) and timed on video recordings: the same audio with "
                                   "a synthetic 640x360, 25 fps H.264 frame track."),
    heap: str = typer.Option("bounded", "--heap", help="Heap settings to time, comma-separated: bounded "
                             "(openmer timeline's default) and/or default (see openmer timeline --heap)."),
) -> None:
    """Real-time factor, windows per second and peak resident memory of `openmer timeline` on
    long recordings built from shared audio (and, for runs that read faces, the same audio with a
    synthetic frame track), one fresh process per measurement."""
    import json

    from openmer.errors import ConfigError
    from openmer.files import atomic_write_json, check_writable
    from openmer.timeline.bench import bench_timeline

    if fmt not in ("m4a", "wav"):
        raise ConfigError(f"--format must be m4a or wav, got {fmt!r}")
    try:
        mins = [float(x) for x in minutes.split(",") if x.strip()]
        nthreads = [int(x) for x in threads.split(",") if x.strip()]
    except ValueError as exc:
        raise ConfigError(f"--minutes / --threads: comma-separated numbers ({exc})") from exc
    heaps = [_heap_choice(h.strip()) for h in heap.split(",") if h.strip()]
    methods = [m.strip() for m in video_runs.split(",") if m.strip()]
    if not runs and not methods:
        raise ConfigError("give run folders to time, or --video-runs METHODS")
    if methods:
        from openmer.methods import get_method

        for m in methods:
            get_method(m)  # an unknown name fails here, listing the choices
    check_writable(workdir)
    rows = bench_timeline([str(r) for r in runs or []], minutes=mins, threads=nthreads, fmt=fmt, window=window,
                          hop=hop, workdir=workdir, video_runs=methods, bounded_heap=heaps or [True],
                          log=lambda m: console.print(m, highlight=False, soft_wrap=True, markup=False))
    if json_out is not None:
        atomic_write_json(json_out, rows)
    typer.echo(json.dumps(rows, indent=2))
