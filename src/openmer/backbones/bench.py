"""Encoder throughput with and without prompts (the prompt-overhead check).

For each modality of a profile, the same encoder encodes the same ``n_clips`` inputs without and
with prompts of the encoder's :class:`PromptSpec` shape:

- audio: 2 s clips (EmoDB recordings resampled to 16 kHz when ``../shared`` has them, else a
  seeded synthetic 2 s signal), prompts = n x L samples (2 x 8000 for Whisper);
- text: a 10-token sentence, 2 prompt tokens;
- video: 8-frame face videos (the astronaut face of scikit-image when available, else noise),
  additive pixel prompts.

Timing: ``torch.inference_mode``, one warm-up call of each, then ``repeats`` timed calls of each,
interleaved (without, with, without, ...), the median of each; torch threads set once
(``threads``, default: current setting). Memory: the peak resident-set size (RSS) of the
process during the timed calls minus the RSS just before them, sampled every millisecond
from ``/proc/self/statm`` by a background thread (``ru_maxrss`` delta where ``/proc`` is
absent); on CUDA, ``torch.cuda.max_memory_allocated`` delta instead.
"""

from __future__ import annotations

import os
import resource
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from openmer.backbones.base import Encoder

SENTENCE = "I cannot believe you did this to me"  # 10 tokens with [CLS] and [SEP]


class _PeakRSS:
    """Peak RSS (MB) above the starting RSS while the context is open."""

    def __init__(self, interval: float = 0.001):
        self.interval, self.peak_mb, self._stop = interval, 0.0, threading.Event()
        self._statm = "/proc/self/statm"
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def _rss_mb(self) -> float:
        with open(self._statm) as f:
            return int(f.read().split()[1]) * self._page / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self._rss_mb() - self.base)
            time.sleep(self.interval)

    def __enter__(self) -> _PeakRSS:
        self.proc = os.path.exists(self._statm)
        if self.proc:
            self.base = self._rss_mb()
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()
        else:
            self.base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc:
            self._stop.set()
            self.thread.join()
            self.peak_mb = max(self.peak_mb, self._rss_mb() - self.base)
        else:
            self.peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - self.base


def _time_pair(fns: tuple[Callable[[], Any], Callable[[], Any]], repeats: int,
               device: torch.device) -> tuple[list[float], float, str]:
    """Median seconds of each of two calls, interleaved (A, B, A, B...) after one warm-up of each,
    so that drifting load on shared machines hits both alike; and the peak memory (MB, how)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for fn in fns:
        fn()
    sync()
    times: list[list[float]] = [[], []]

    def timed() -> None:
        for _ in range(repeats):
            for i, fn in enumerate(fns):
                t0 = time.perf_counter()
                fn()
                sync()
                times[i].append(time.perf_counter() - t0)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        timed()
        peak, how = (torch.cuda.max_memory_allocated(device) - base) / 2**20, "cuda_max_allocated_delta"
    else:
        with _PeakRSS() as mem:
            timed()
        peak, how = mem.peak_mb, "rss_peak_delta" if mem.proc else "ru_maxrss_delta"
    return [statistics.median(t) for t in times], peak, how


def _audio_inputs(n: int, shared) -> tuple[torch.Tensor, str]:
    if shared is not None and (shared / "data/emodb/wav").is_dir():
        import soundfile as sf
        from scipy.signal import resample_poly

        files = sorted((shared / "data/emodb/wav").glob("*.wav"))[:n]
        waves = []
        for f in files:
            wav, sr = sf.read(f, dtype="float32")
            waves.append(torch.from_numpy(resample_poly(wav, 320, 441).astype(np.float32)[:32000]))
        if len(waves) == n and all(len(w) == 32000 for w in waves):
            return torch.stack(waves), "EmoDB 2 s clips at 16 kHz"
    g = torch.Generator().manual_seed(0)
    return 0.1 * torch.randn(n, 32000, generator=g), "synthetic 2 s noise at 16 kHz"


def _face_inputs(n: int, frames: int) -> tuple[torch.Tensor, str]:
    try:
        import cv2
        from skimage import data

        from openmer.backbones.fer import crop_face, preprocess_face

        gray = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
        box = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml").detectMultiScale(
            gray, 1.1, 5)[0]
        face = preprocess_face(crop_face(gray, tuple(box)))
        g = torch.Generator().manual_seed(0)
        video = (face[None, None] + 0.02 * torch.randn(n, frames, 1, 64, 64, generator=g)).clamp(-1, 1)
        return video, f"astronaut face, {frames} frames"
    except Exception:  # no skimage/cascade: noise frames of the same shape
        g = torch.Generator().manual_seed(0)
        return torch.rand(n, frames, 1, 64, 64, generator=g) * 2 - 1, f"noise, {frames} frames"


def bench_encoders(profile: str = "offline", n_clips: int = 8, repeats: int = 3, *,
                   modalities: tuple[str, ...] = ("audio", "text", "video"), threads: int | None = None,
                   device: str | torch.device = "cpu", encoders: dict[str, Encoder] | None = None) -> list[dict]:
    """Clips per second of each encoder without and with prompts.

    Args:
        profile: profile name (``"offline"`` or ``"paper"``), ignored when ``encoders`` is given.
        n_clips: clips per batch (one batch per timed call).
        repeats: timed calls; the median is reported.
        modalities: which encoders to measure.
        threads: ``torch.set_num_threads`` for the run (default: leave the current setting).
        device: where the encoders and inputs go.
        encoders: already loaded encoders (modality -> Encoder), to skip loading.

    Returns:
        One dict per modality: ``modality``, ``encoder`` (kind), ``input``, ``n_clips``,
        ``clips_per_s_without_prompts``, ``clips_per_s_with_prompts``, ``overhead`` (time with /
        time without), ``length_ratio`` (input length with / without prompts: samples for audio,
        tokens for text, 1.0 for additive pixel prompts), ``peak_mem_mb`` (over both runs),
        ``mem_method``, ``threads``, ``device``. The target is ``overhead <= 1.10 * length_ratio``.
    """
    from openmer.backbones.factory import load_profile
    from openmer.paths import shared_dir

    if threads is not None:
        torch.set_num_threads(threads)
    device = torch.device(device)
    if encoders is None:
        encoders = load_profile(profile, modalities=tuple(modalities), device=device)
    shared = shared_dir()
    results = []
    g = torch.Generator().manual_seed(0)
    for m in modalities:
        if m not in encoders:
            continue
        enc = encoders[m]
        spec = enc.prompt_spec()
        prompts = (torch.randn(*spec.shape, generator=g) * (0.01 if spec.kind == "samples" else 0.02)).to(device)
        if m == "audio":
            x, what = _audio_inputs(n_clips, shared)
            x = x.to(device)
            n_without = x.shape[1]
            n_with = n_without + prompts.numel()
            without, with_ = (lambda: enc(x)), (lambda: enc(x, prompts=prompts))
        elif m == "text":
            texts = [SENTENCE] * n_clips
            tok = getattr(enc, "tokenize", None)
            n_without = int(tok(texts[:1])["attention_mask"].sum()) if tok is not None else len(SENTENCE.split())
            n_with = n_without + spec.shape[0]
            what = f"{n_without}-token sentence (with special tokens)"
            without, with_ = (lambda: enc(texts)), (lambda: enc(texts, prompts=prompts))
        else:
            if spec.kind == "pixels":
                x, what = _face_inputs(n_clips, 8)
                n_without = n_with = 1
            else:  # a token ViT (paper profile): 8-frame RGB videos at the spec's size
                shape = spec.whole_input_shape or (3, 224, 224)
                x, what = torch.rand(n_clips, 8, *shape, generator=g) * 2 - 1, "noise video, 8 frames"
                grid = getattr(enc, "n_patches", None)
                n_without = (grid + 1) if grid else 1
                n_with = n_without + spec.shape[0] if grid else 1
            x = x.to(device)
            without, with_ = (lambda: enc(x)), (lambda: enc(x, prompts=prompts))
        with torch.inference_mode():
            (t0, t1), peak, how = _time_pair((without, with_), repeats, device)
        results.append({
            "modality": m, "encoder": enc.kind, "input": what, "n_clips": n_clips,
            "clips_per_s_without_prompts": n_clips / t0, "clips_per_s_with_prompts": n_clips / t1,
            "overhead": t1 / t0, "length_ratio": n_with / n_without,
            "peak_mem_mb": peak, "mem_method": how,
            "threads": torch.get_num_threads(), "device": str(device),
        })
    return results
