"""``openmer bench-timeline``: speed and memory of :func:`openmer.timeline.timeline` on long
recordings built from shared audio (a benchmark, not a test).

A recording of N minutes cycles EmoDB's clips (``../shared/data/emodb``) in a seeded random order
with 0.3-2 s silences between them, written once as 16 kHz mono (AAC ``.m4a`` by default, the
case that was killed for memory before). A run that reads faces (its modalities include
``video``) is measured on the *video* recording instead: the same audio (AAC) muxed with a seeded
synthetic frame track (:class:`FrameTrack`: :data:`FRAME_SIZE` pixels at :data:`FRAME_RATE`
frames per second, H.264), written as a stream into an ``.mp4``. Shared data hold no long real
video, so :func:`build_video_run` trains such runs (``--video-runs``) on EmoDB clips, each muxed
with the frame track: their scores mean nothing, their cost per window is a face run's (frame
decoding, the Haar face detector on each sampled frame, the FER CNN, Whisper).

Each (run, recording, threads) is measured in a fresh process: wall time of the whole timeline
(decode, VAD, scoring, writing, picture), real-time factor (audio seconds per wall second),
windows per second, the process's CPU time (user + system, loading included: on a shared machine
this is the figure that does not depend on the other jobs) with audio seconds per CPU second, and
the peak resident memory of that process (``ru_maxrss``).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import numpy as np

from openmer.timeline.core import TimelineConfig

#: the synthetic frame track of a video recording: (width, height) in pixels, frames per second,
#: and the seconds after which it loops
FRAME_SIZE, FRAME_RATE, SEGMENT_S = (640, 360), 25, 60
#: the known classes of the runs :func:`build_video_run` trains (EmoDB's labels)
VIDEO_RUN_KNOWN = ("anger", "happiness", "neutral", "sadness")


class FrameTrack:
    """Seeded synthetic frames: a smooth random colour field drifting across the picture, with a
    skin-toned ellipse (a face-sized blob with two dark eyes and a mouth) moving on a random walk.

    ``frame(i)`` is a pure function of ``(seed, i)``: (H, W, 3) uint8 RGB, ``FRAME_SIZE``.
    """

    def __init__(self, seed: int = 0, size: tuple[int, int] = FRAME_SIZE):
        rng = np.random.default_rng(seed)
        self.w, self.h = size
        small = rng.uniform(40, 215, (9, 16, 3))  # a coarse field, upsampled: smooth and compressible
        ys = np.linspace(0, 8, 2 * self.h)[:, None]
        xs = np.linspace(0, 15, 2 * self.w)[None, :]
        y0, x0 = np.floor(ys).astype(int).clip(0, 7), np.floor(xs).astype(int).clip(0, 14)
        fy, fx = (ys - y0)[..., None], (xs - x0)[..., None]
        field = (small[y0, x0] * (1 - fy) * (1 - fx) + small[y0 + 1, x0] * fy * (1 - fx)
                 + small[y0, x0 + 1] * (1 - fy) * fx + small[y0 + 1, x0 + 1] * fy * fx)
        self.field = field.astype(np.uint8)  # (2H, 2W, 3), windows of it drift over time
        r = self.h // 5
        yy, xx = np.mgrid[-r * 13 // 10: r * 13 // 10, -r: r]
        face = (yy / (1.3 * r)) ** 2 + (xx / r) ** 2 <= 1
        eyes = ((yy + r // 3) ** 2 + (np.abs(xx) - r // 3) ** 2) <= (r // 7) ** 2
        mouth = (np.abs(yy - r // 2) <= r // 12) & (np.abs(xx) <= r // 3)
        self.mask, self.dark = face, face & (eyes | mouth)
        self.walk = np.cumsum(rng.normal(0, 2.0, (4096, 2)), axis=0)  # the blob's random walk (cycled)

    def frame(self, i: int) -> np.ndarray:
        t = i / FRAME_RATE
        oy = int((np.sin(t / 7.0) * 0.5 + 0.5) * (self.h - 1))
        ox = int((np.cos(t / 11.0) * 0.5 + 0.5) * (self.w - 1))
        img = self.field[oy: oy + self.h, ox: ox + self.w].copy()
        walk = self.walk[i % len(self.walk)]
        fh, fw = self.mask.shape
        cy = int(np.clip(self.h / 2 + walk[0], 0, self.h - fh))
        cx = int(np.clip(self.w / 2 + walk[1], 0, self.w - fw))
        patch = img[cy: cy + fh, cx: cx + fw]
        patch[self.mask] = (224, 172, 138)
        patch[self.dark] = (40, 30, 30)
        return img


def _pieces(minutes: float, seed: int) -> Any:
    """(waveform, first sample) pieces of an N-minute recording: EmoDB clips in a seeded random
    order, each followed by 0.3-2 s of silence, cut at N minutes."""
    from openmer.datasets import resolve_data
    from openmer.media import load_audio

    manifest, _ = resolve_data("emodb")
    rng = np.random.default_rng(seed)
    clips = [load_audio(p, min_rms=0) for s in manifest if (p := manifest.path(s, "audio")) is not None]  # ~35 MB
    total = int(minutes * 60 * 16000)
    written = 0
    while written < total:
        i = int(rng.integers(len(clips)))
        piece = np.concatenate([clips[i], np.zeros(int(rng.uniform(0.3, 2.0) * 16000), np.float32)])
        piece = piece[: total - written]
        yield piece, written
        written += len(piece)


def frame_segment(path: Path, seed: int = 0, seconds: int = SEGMENT_S) -> Path:
    """Encode ``seconds`` (:data:`SEGMENT_S`) of the :class:`FrameTrack` once (H.264, x264 ``veryfast``,
    a key frame every 2 s), the loop a long video recording repeats by copying its packets (encoding
    two hours of frames would take longer than the measurement)."""
    import av

    from openmer.media.synth import video_codec

    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    track = FrameTrack(seed)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    with av.open(str(tmp), "w") as c:
        vs = cast("av.VideoStream", c.add_stream(video_codec(), rate=Fraction(FRAME_RATE)))
        vs.width, vs.height = FRAME_SIZE
        vs.pix_fmt = "yuv420p"
        vs.options = {"preset": "veryfast", "g": str(2 * FRAME_RATE)}
        for i in range(seconds * FRAME_RATE):
            vf = av.VideoFrame.from_ndarray(track.frame(i), format="rgb24")
            vf.pts = i
            for pkt in vs.encode(vf):
                c.mux(pkt)
        for pkt in vs.encode(None):
            c.mux(pkt)
    os.replace(tmp, path)
    return path


def _video_packets(segment: Path, seconds: int, out_stream: Any) -> Any:
    """The segment's packets looped for ever, time-shifted by one segment per loop: (seconds, packet)."""
    import av

    k = 0
    while True:
        with av.open(str(segment)) as c:
            src = c.streams.video[0]
            base = src.time_base or Fraction(1, FRAME_RATE)
            shift = int(round(seconds / base))
            for pkt in c.demux(src):
                if pkt.dts is None:
                    continue
                pkt.dts += k * shift
                pkt.pts = None if pkt.pts is None else pkt.pts + k * shift
                pkt.stream = out_stream
                yield float(pkt.dts * base), pkt
        k += 1


def build_recording(path: Path, minutes: float, *, seed: int = 0, video: bool = False,
                    segment_s: int = SEGMENT_S) -> Path:
    """Write an N-minute recording of EmoDB speech with silences to ``path`` (.wav, .m4a, or with
    ``video`` an .mp4 that adds the :class:`FrameTrack`, looped every ``segment_s`` s), streamed:
    memory does not grow with N. The audio is the same for every format and the same ``seed``."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    total = minutes * 60
    with av.open(str(tmp), "w") as c:
        packets = None
        if video:
            segment = frame_segment(path.with_name(f"frame-track-{seed}-{segment_s}s.mp4"), seed, segment_s)
            with av.open(str(segment)) as seg:
                vs = c.add_stream_from_template(seg.streams.video[0])
            packets = _video_packets(segment, segment_s, vs)
            pending = next(packets)
        stream = c.add_stream("aac" if path.suffix in (".m4a", ".mp4") else "pcm_s16le", rate=16000)
        stream.layout = "mono"
        for piece, written in _pieces(minutes, seed):
            frame = av.AudioFrame.from_ndarray(piece[None].astype(np.float32), format="flt", layout="mono")
            frame.sample_rate, frame.pts = 16000, written
            for pkt in stream.encode(frame):
                c.mux(pkt)
            while packets is not None and pending[0] < min((written + len(piece)) / 16000, total):
                c.mux(pending[1])  # the frames up to the end of this piece
                pending = next(packets)
        for pkt in stream.encode(None):
            c.mux(pkt)
    os.replace(tmp, path)
    return path


def build_video_run(method: str, out: Path, *, seed: int = 0, per_class: int = 12) -> Path:
    """Train ``method`` on video + audio with the offline profile's encoders (FER mini-Xception,
    Whisper-base) on EmoDB clips of :data:`VIDEO_RUN_KNOWN`, each muxed with the frame track
    (``per_class`` clips per class, their speakers as groups), on the CPU preset's schedule; kept
    in ``out`` and reused when it holds a finished run. For timing only: the frames carry no
    emotion (see the module doc)."""
    from openmer.datasets import resolve_data
    from openmer.media import load_audio
    from openmer.media.synth import write_composite_clip
    from openmer.methods import get_method
    from openmer.training import TrainConfig
    from openmer.training.presets import resolve_preset
    from openmer.training.run import train

    if (out / "run.json").is_file():
        return out
    manifest, _ = resolve_data("emodb")
    data = out.parent / f"{out.name}-data"
    data.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    track = FrameTrack(seed)
    rows = []
    for label in VIDEO_RUN_KNOWN:
        idx = [i for i, s in enumerate(manifest) if s.label == label]
        for j in rng.permutation(len(idx))[:per_class]:
            s = manifest[idx[int(j)]]
            path = manifest.path(s, "audio")
            assert path is not None  # EmoDB rows are audio files
            wave = load_audio(path, min_rms=0)
            n = max(1, int(len(wave) / 16000 * FRAME_RATE))
            first = int(rng.integers(10_000))
            frames = np.stack([track.frame(first + k) for k in range(n)])
            write_composite_clip(data / f"{s.id}.mp4", frames, FRAME_RATE, wave, 16000)
            rows.append(f"{s.id},{s.id}.mp4,{label},{s.group}")
    (data / "manifest.csv").write_text("id,video,label,group\n" + "\n".join(rows) + "\n", encoding="utf-8")
    cls = get_method(method)
    # the CPU preset as it is: HCEP's CUEP starts from clips where the encoder can (audio), from noise
    # where it cannot (the FER face CNN; Encoder.starts_prompts_from_inputs)
    return train(data / "manifest.csv", list(VIDEO_RUN_KNOWN), method=method, profile="offline", out=out,
                 modalities=["video", "audio"], overwrite=True,
                 train_config=TrainConfig(**{**resolve_preset("cpu", cls).train.model_dump(), "seed": seed}))


def measure_one(run_dir: str, recording: str, out: str, threads: int, window: float, hop: float,
                bounded_heap: bool = True) -> dict[str, Any]:
    """One timeline in this process; returns its timings and this process's peak RSS (MiB)."""
    import resource

    import torch

    from openmer.timeline import TimelineConfig, timeline

    torch.set_num_threads(threads)
    t = time.perf_counter()
    result = timeline(run_dir, recording, out, config=TimelineConfig(window=window, hop=hop), overwrite=True,
                      bounded_heap=bounded_heap)
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
                   workdir: str | Path, video_runs: Sequence[str] = (), bounded_heap: Sequence[bool] = (True,),
                   log: Any = None) -> list[dict[str, Any]]:
    """Measure every (run, recording length, threads) in a fresh process (see the module doc).

    Args:
        runs: run folders; one whose modalities include ``video`` is measured on the video recording
            (``.mp4``), the others on the audio recording (``fmt``).
        video_runs: methods whose face runs :func:`build_video_run` trains in ``workdir`` (once)
            and adds to ``runs``.
        bounded_heap: the heap settings to measure, each in its own process (``timeline``'s
            ``bounded_heap``; :mod:`openmer.timeline.memory`); rows say which (``heap``).
    """
    from openmer.runs import read_run_info

    workdir = Path(workdir)
    all_runs = [Path(r) for r in runs]
    for method in video_runs:
        t = time.perf_counter()
        all_runs.append(build_video_run(method, workdir / f"video-run-{method}"))
        if log:
            log(f"video run {method}: {all_runs[-1]} ({time.perf_counter() - t:.0f} s)")
    infos = {r: read_run_info(r) for r in all_runs}
    rows = []
    for m in minutes:
        for run in all_runs:
            video = "video" in infos[run].modalities
            rec = workdir / f"recording-{m:g}min.{'mp4' if video else fmt}"
            if not rec.is_file():
                t = time.perf_counter()
                build_recording(rec, m, video=video)
                if log:
                    log(f"built {rec} ({m:g} min) in {time.perf_counter() - t:.0f} s")
            for n, bounded in itertools.product(threads, bounded_heap):
                code = ("import json, sys; from openmer.timeline.bench import measure_one; "
                        "print('RESULT ' + json.dumps(measure_one(*sys.argv[1:4], int(sys.argv[4]), "
                        "float(sys.argv[5]), float(sys.argv[6]), sys.argv[7] == 'bounded')))")
                env = {**os.environ, "OMP_NUM_THREADS": str(n), "MKL_NUM_THREADS": str(n)}
                heap = "bounded" if bounded else "default"
                proc = subprocess.run([sys.executable, "-c", code, str(run), str(rec), str(workdir / "out"), str(n),
                                       str(window), str(hop), heap], capture_output=True, text=True, env=env,
                                      check=False)
                line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
                row: dict[str, Any] = {"method": infos[run].method, "run": str(run),
                                       "modalities": list(infos[run].modalities), "minutes": m, "threads": n,
                                       "heap": heap, "format": rec.suffix[1:], "window": window, "hop": hop}
                if video:
                    row["frame_track"] = f"{FRAME_SIZE[0]}x{FRAME_SIZE[1]} at {FRAME_RATE} fps, H.264 (synthetic)"
                if line is None:
                    row["error"] = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                else:
                    row.update(json.loads(line[len("RESULT "):]))
                rows.append(row)
                if log:
                    log(json.dumps(row))
    return rows
