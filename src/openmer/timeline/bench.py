"""``openmer bench-timeline``: speed and memory of :func:`openmer.timeline.timeline` on long
recordings built from shared audio (a benchmark, not a test).

A recording of N minutes cycles EmoDB's clips (``../shared/data/emodb``) in a seeded random order
with 0.3-2 s silences between them, written once as 16 kHz mono (AAC ``.m4a`` by default, the
case that was killed for memory before). Each (run, recording, threads) is measured in a fresh
process: wall time of the whole timeline (decode, VAD, scoring, writing, picture), real-time
factor (audio seconds per wall second), windows per second, the process's CPU time (user +
system, loading included: on a shared machine this is the figure that does not depend on the
other jobs) with audio seconds per CPU second, and the peak resident memory of that process
(``ru_maxrss``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from openmer.timeline.core import TimelineConfig


def build_recording(path: Path, minutes: float, *, seed: int = 0) -> Path:
    """Write an N-minute recording of EmoDB speech with silences to ``path`` (.wav or .m4a), streamed."""
    import av

    from openmer.datasets import resolve_data
    from openmer.media import load_audio

    manifest, _ = resolve_data("emodb")
    rng = np.random.default_rng(seed)
    clips = [load_audio(p, min_rms=0) for s in manifest if (p := manifest.path(s, "audio")) is not None]  # ~35 MB
    total = int(minutes * 60 * 16000)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        stream = c.add_stream("aac" if path.suffix == ".m4a" else "pcm_s16le", rate=16000)
        stream.layout = "mono"
        written = 0
        while written < total:
            i = int(rng.integers(len(clips)))
            piece = np.concatenate([clips[i], np.zeros(int(rng.uniform(0.3, 2.0) * 16000), np.float32)])
            piece = piece[: total - written]
            frame = av.AudioFrame.from_ndarray(piece[None].astype(np.float32), format="flt", layout="mono")
            frame.sample_rate, frame.pts = 16000, written
            for pkt in stream.encode(frame):
                c.mux(pkt)
            written += len(piece)
        for pkt in stream.encode(None):
            c.mux(pkt)
    return path


def measure_one(run_dir: str, recording: str, out: str, threads: int, window: float, hop: float) -> dict[str, Any]:
    """One timeline in this process; returns its timings and this process's peak RSS (MiB)."""
    import resource

    import torch

    from openmer.timeline import TimelineConfig, timeline

    torch.set_num_threads(threads)
    t = time.perf_counter()
    result = timeline(run_dir, recording, out, config=TimelineConfig(window=window, hop=hop), overwrite=True)
    wall = time.perf_counter() - t
    duration = float(result.summary["duration_s"])
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime  # the whole process: imports and loading included
    return {"wall_s": round(wall, 1), "audio_s": round(duration, 1), "real_time_factor": round(duration / wall, 2),
            "cpu_s": round(cpu, 1), "audio_per_cpu_s": round(duration / cpu, 2),
            "windows": len(result.rows), "windows_per_s": round(len(result.rows) / wall, 2),
            "scored_windows": result.summary["n_scored_windows"],
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def bench_timeline(runs: Sequence[str | Path], *, minutes: Sequence[float] = (10, 120), threads: Sequence[int] = (1, 2),
                   fmt: str = "m4a", window: float = TimelineConfig.window, hop: float = TimelineConfig.hop,
                   workdir: str | Path,
                   log: Any = None) -> list[dict[str, Any]]:
    """Measure every (run, recording length, threads) in a fresh process (see the module doc)."""
    from openmer.runs import read_run_info

    workdir = Path(workdir)
    rows = []
    for m in minutes:
        rec = workdir / f"recording-{m:g}min.{fmt}"
        if not rec.is_file():
            t = time.perf_counter()
            build_recording(rec, m)
            if log:
                log(f"built {rec} ({m:g} min) in {time.perf_counter() - t:.0f} s")
        for run in runs:
            info = read_run_info(run)
            for n in threads:
                code = ("import json, sys; from openmer.timeline.bench import measure_one; "
                        "print('RESULT ' + json.dumps(measure_one(*sys.argv[1:4], int(sys.argv[4]), "
                        "float(sys.argv[5]), float(sys.argv[6]))))")
                env = {**os.environ, "OMP_NUM_THREADS": str(n), "MKL_NUM_THREADS": str(n)}
                proc = subprocess.run([sys.executable, "-c", code, str(run), str(rec), str(workdir / "out"), str(n),
                                       str(window), str(hop)], capture_output=True, text=True, env=env, check=False)
                line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
                row: dict[str, Any] = {"method": info.method, "run": str(run), "minutes": m, "threads": n,
                                       "format": fmt, "window": window, "hop": hop}
                if line is None:
                    row["error"] = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                else:
                    row.update(json.loads(line[len("RESULT "):]))
                rows.append(row)
                if log:
                    log(json.dumps(row))
    return rows
