"""What openmer costs on this machine, measured: one module for the three cost commands.

* :func:`bench_encoders` (``openmer bench-encoders``): clips per second of each encoder of a
  profile without and with prompts, and the input-length ratio the prompts add.
* :func:`complexity_report` (``openmer complexity``, HCEP Table 8): parameters and inference
  time per clip of HCEP, ARPL and MSP on the same encoders and clips.
* :func:`train_step_report` (``openmer bench-train``): one HCEP training step per component and
  prompt entry, against the baselines' forward.

One way of measuring for all three:

* **threads**: ``torch.set_num_threads(threads)`` once per report (:func:`set_threads`; default:
  the current setting, recorded);
* **time**: :func:`time_interleaved`: one first (warm-up) call of each timed function, then
  ``repeats`` rounds calling them in turn (interleaved, so drifting load on a shared machine hits
  all alike), ``time.perf_counter`` around each call (CUDA synchronised), medians;
* **memory**: :class:`PeakMemory`: the peak resident-set size (RSS) of the process during the
  timed rounds minus the RSS just before them, sampled every millisecond from
  ``/proc/self/statm`` by a background thread (``ru_maxrss`` delta where ``/proc`` is absent);
  on CUDA, the ``torch.cuda.max_memory_allocated`` delta instead;
* **clips**: :func:`clip_batch`: the first clips of ``--data`` (a built-in dataset, ``NAME=PATH``
  or a manifest, :func:`openmer.datasets.resolve_data`), decoded and collated once, before timing;
* **machine**: :func:`machine` (the benchmarks' :func:`machine_description`
  plus device, load average and date).

Ratios measured in one run are the figures that count on a shared machine; absolute seconds move
with the load.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import resource
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, cast

import numpy as np
import torch

from openmer import __version__
from openmer.backbones.base import Encoder
from openmer.errors import ConfigError, SharedDataMissing
from openmer.reference import paper_rows

if TYPE_CHECKING:
    from openmer.backbones.base import Modality
    from openmer.backbones.factory import ProfileConfig
    from openmer.methods.hcep.model import HCEP

__all__ = [
    "DEFAULT_VARIANTS", "PAPER_TABLE8_TIME_RATIO", "TARGET_SLACK", "PeakMemory", "Timing", "bench_encoders",
    "clip_batch", "complexity_report", "count_parameters", "machine", "set_threads", "time_interleaved",
    "train_step_report",
]


# ---------------------------------------------------------------- how everything here is measured
class PeakMemory:
    """Peak memory (MB) above the starting point while the context is open.

    CPU: the process's RSS sampled every ``interval`` seconds from ``/proc/self/statm`` by a
    background thread (``method = "rss_peak_delta"``), or the ``ru_maxrss`` delta where ``/proc``
    is absent (``"ru_maxrss_delta"``). CUDA: ``torch.cuda.max_memory_allocated`` above the memory
    allocated at entry (``"cuda_max_allocated_delta"``).

    Attributes:
        peak_mb: the peak, in MB (2**20 bytes), after the context closes.
        method: how it was measured (one of the three names above).
    """

    def __init__(self, device: str | torch.device = "cpu", interval: float = 0.001):
        self.device = torch.device(device)
        self.interval, self.peak_mb, self._stop = interval, 0.0, threading.Event()
        self._statm = "/proc/self/statm"
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self.method = ""

    def _rss_mb(self) -> float:
        with open(self._statm) as f:
            return int(f.read().split()[1]) * self._page / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self._rss_mb() - self.base)
            time.sleep(self.interval)

    def __enter__(self) -> Self:
        if self.device.type == "cuda":
            self.method = "cuda_max_allocated_delta"
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device) / 2**20
        elif os.path.exists(self._statm):
            self.method = "rss_peak_delta"
            self.base = self._rss_mb()
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()
        else:
            self.method = "ru_maxrss_delta"
            self.base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return self

    def __exit__(self, *exc: object) -> None:
        if self.method == "cuda_max_allocated_delta":
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20 - self.base
        elif self.method == "rss_peak_delta":
            self._stop.set()
            self.thread.join()
            self.peak_mb = max(self.peak_mb, self._rss_mb() - self.base)
        else:
            self.peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - self.base


@dataclass
class Timing:
    """What :func:`time_interleaved` measured, per timed function (by name).

    Attributes:
        first: seconds of the first (warm-up) call.
        times: seconds of each timed call, in round order.
        peak_mb, memory_method: :class:`PeakMemory` over the timed rounds (``0.0`` / ``""`` when
            memory was not measured).
    """

    first: dict[str, float] = field(default_factory=dict)
    times: dict[str, list[float]] = field(default_factory=dict)
    peak_mb: float = 0.0
    memory_method: str = ""

    @property
    def median(self) -> dict[str, float]:
        """Median seconds of the timed calls of each function."""
        return {name: statistics.median(t) for name, t in self.times.items()}


def time_interleaved(calls: Mapping[str, Callable[[], Any]], repeats: int, device: str | torch.device = "cpu", *,
                     before: Callable[[str], None] | None = None, after: Callable[[str, bool], None] | None = None,
                     memory: bool = True) -> Timing:
    """Time each call: one first call of each, then ``repeats`` rounds calling them in turn.

    Args:
        calls: name -> function of no argument, timed in this order.
        repeats: timed rounds (at least 1).
        device: CUDA calls are synchronised before the clock stops; CUDA memory is measured there.
        before: ``before(name)`` just before each call (outside the clock): e.g. reset counters.
        after: ``after(name, timed)`` just after each call (outside the clock); ``timed`` is
            ``False`` for the first call.
        memory: measure :class:`PeakMemory` over the timed rounds.

    Raises:
        ConfigError: ``repeats < 1``.
    """
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}")
    device = torch.device(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    out = Timing(times={name: [] for name in calls})

    def one(name: str, fn: Callable[[], Any]) -> float:
        if before is not None:
            before(name)
        t0 = time.perf_counter()
        fn()
        sync()
        seconds = time.perf_counter() - t0
        return seconds

    for name, fn in calls.items():
        out.first[name] = one(name, fn)
        if after is not None:
            after(name, False)
    with PeakMemory(device) if memory else nullcontext() as mem:
        for _ in range(repeats):
            for name, fn in calls.items():
                out.times[name].append(one(name, fn))
                if after is not None:
                    after(name, True)
    if mem is not None:
        out.peak_mb, out.memory_method = mem.peak_mb, mem.method
    return out


def set_threads(threads: int | None) -> int:
    """``torch.set_num_threads(threads)`` when given; the number of torch threads in use."""
    if threads is not None:
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()


def machine_description() -> dict[str, Any]:
    """Machine facts for a report (measured, not typed in)."""
    import os

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "openmer": __version__,
        "git_commit": _CODE_COMMIT,
    }


def _git_commit() -> str | None:
    """The checkout's commit (``+dirty`` with uncommitted changes), or ``None`` outside a git checkout."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             check=False)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


#: the commit of the code this process imported (read once at import, so that edits or commits
#: made while a long benchmark runs do not change what its results say it ran)
_CODE_COMMIT = _git_commit()


def machine(threads: int | None = None, device: str | torch.device = "cpu") -> dict[str, Any]:
    """The machine a report was measured on: :func:`machine_description`
    plus ``device``, ``load_average_1_5_15min`` and ``date`` (UTC)."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - platforms without getloadavg
        load = None
    out = machine_description()
    out.update({"torch_threads": torch.get_num_threads() if threads is None else threads, "device": str(device),
                "load_average_1_5_15min": load,
                "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")})
    return out


def clip_batch(data: str | Path, n_clips: int, known: Sequence[str] | None,
               modalities: Sequence[str] = ("audio", "text"), *,
               known_only: bool = False) -> tuple[list[str], dict[str, Any], str]:
    """One collated batch of the first ``n_clips`` clips of ``data``, for timing.

    Args:
        data: what ``--data`` takes (:func:`openmer.datasets.resolve_data`: ``emodb``,
            ``emodb=PATH``, a manifest file).
        n_clips: clips in the batch.
        known: the known classes (default: the first 5 classes of ``data``, in sorted order).
        modalities: decoded; every clip of the batch must have each of them.
        known_only: take the first clips of a known class (a training batch) instead of the first
            clips (a test batch, unknown-class clips labelled -1).

    Returns:
        ``(known, batch, note)``: ``note`` says which clips (for the report).

    Raises:
        ConfigError: ``n_clips`` out of range, a known class absent from ``data``, or a clip of
            the batch without one of ``modalities``.
        DataError / SharedDataMissing: as :func:`~openmer.datasets.resolve_data`.
    """
    from openmer.data.clips import ClipDataset
    from openmer.data.manifest import label_indices
    from openmer.datasets import resolve_data

    manifest, _ = resolve_data(data)
    classes = list(manifest.classes)
    known = list(known) if known is not None else classes[: min(5, len(classes))]
    absent = [k for k in known if k not in classes]
    if absent:
        raise ConfigError(f"known class(es) {absent} do not occur in {data}; its classes are {classes}")
    rows = [i for i, s in enumerate(manifest) if s.label in known] if known_only else list(range(len(manifest)))
    if n_clips < 1 or n_clips > len(rows):
        raise ConfigError(f"--clips must be in [1, {len(rows)}] for {data}, got {n_clips}")
    sub = manifest.subset(rows[:n_clips])
    labels = label_indices([s.label for s in sub], known).tolist()
    batch = ClipDataset(sub, labels, tuple(modalities)).batches(n_clips)[0]
    lacking = [m for m in modalities if not bool(batch[f"{m}_present"].all())]
    if lacking:
        raise ConfigError(f"the first {n_clips} clips of {data} must all have {' and '.join(modalities)} for this "
                          f"timing; some lack {', '.join(lacking)}")
    which = "first of the known classes" if known_only else "first in manifest order"
    return known, batch, f"{n_clips} {data} clips ({which}), {' + '.join(modalities)}"


# ---------------------------------------------------------------- openmer bench-encoders
# For each modality of a profile, the same encoder encodes the same ``n_clips`` inputs without and
# with prompts of the encoder's PromptSpec shape: audio, 2 s clips (EmoDB resampled to 16 kHz when
# ../shared has it, else seeded noise), prompts n x L samples (2 x 8000 for Whisper); text, a
# 10-token sentence, 2 prompt tokens; video, 8-frame face videos (scikit-image's astronaut face when
# available, else noise), additive pixel prompts. Timed with time_interleaved under inference_mode.
SENTENCE = "I cannot believe you did this to me"  # 10 tokens with [CLS] and [SEP]


def _audio_inputs(n: int) -> tuple[torch.Tensor, str]:
    """``n`` EmoDB recordings at 16 kHz cut to 2 s (the shared copy, when present), else seeded noise."""
    import soundfile as sf
    from scipy.signal import resample_poly

    from openmer.datasets import load_emodb

    try:
        emodb = load_emodb()
    except SharedDataMissing:
        emodb = None
    if emodb is not None and len(emodb) >= n:
        waves = []
        for s in emodb.subset(list(range(n))):
            wav, _ = sf.read(emodb.path(s, "audio"), dtype="float32")
            waves.append(torch.from_numpy(resample_poly(wav, 320, 441).astype(np.float32)[:32000]))
        if all(len(w) == 32000 for w in waves):
            return torch.stack(waves), "EmoDB 2 s clips at 16 kHz"
    g = torch.Generator().manual_seed(0)
    return 0.1 * torch.randn(n, 32000, generator=g), "synthetic 2 s noise at 16 kHz"


def _face_inputs(n: int, frames: int) -> tuple[torch.Tensor, str]:
    """``n`` videos of ``frames`` 64 x 64 gray face crops in [-1, 1]: scikit-image's astronaut face
    (cropped as the FER encoder crops faces, :func:`openmer.media.faces.crop_face`) plus a little
    seeded noise per frame, or seeded noise frames without scikit-image."""
    import warnings

    from openmer.backbones.fer import preprocess_face
    from openmer.media.faces import NoFaceWarning, crop_face

    g = torch.Generator().manual_seed(0)
    try:
        from skimage import data
    except ImportError:  # scikit-image is optional: noise frames of the same shape
        return torch.rand(n, frames, 1, 64, 64, generator=g) * 2 - 1, f"noise, {frames} frames"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoFaceWarning)  # a centre crop is still a timing input
        crop, _ = crop_face(np.ascontiguousarray(data.astronaut(), dtype=np.uint8))
    face = preprocess_face(crop)
    video = (face[None, None] + 0.02 * torch.randn(n, frames, 1, 64, 64, generator=g)).clamp(-1, 1)
    return video, f"astronaut face, {frames} frames"


def bench_encoders(profile: str = "offline", n_clips: int = 8, repeats: int = 3, *,
                   modalities: tuple[Modality, ...] = ("audio", "text", "video"), threads: int | None = None,
                   device: str | torch.device = "cpu",
                   encoders: Mapping[str, Encoder] | None = None) -> list[dict]:
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

    set_threads(threads)
    device = torch.device(device)
    if encoders is None:
        encoders = load_profile(profile, modalities=tuple(modalities), device=device)
    results = []
    g = torch.Generator().manual_seed(0)
    for m in modalities:
        if m not in encoders:
            continue
        enc = encoders[m]
        spec = enc.prompt_spec()
        prompts = (torch.randn(*spec.shape, generator=g) * (0.01 if spec.kind == "samples" else 0.02)).to(device)
        if m == "audio":
            x, what = _audio_inputs(n_clips)
            x = x.to(device)
            n_without = x.shape[1]
            n_with = n_without + prompts.numel()
            without, with_ = partial(enc, x), partial(enc, x, prompts=prompts)
        elif m == "text":
            texts = [SENTENCE] * n_clips
            tok = getattr(enc, "tokenize", None)
            n_without = int(tok(texts[:1])["attention_mask"].sum()) if tok is not None else len(SENTENCE.split())
            n_with = n_without + spec.shape[0]
            what = f"{n_without}-token sentence (with special tokens)"
            without, with_ = partial(enc, texts), partial(enc, texts, prompts=prompts)
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
            without, with_ = partial(enc, x), partial(enc, x, prompts=prompts)
        with torch.inference_mode():
            timing = time_interleaved({"without": without, "with": with_}, repeats, device)
        t0, t1 = timing.median["without"], timing.median["with"]
        results.append({
            "modality": m, "encoder": enc.kind, "input": what, "n_clips": n_clips,
            "clips_per_s_without_prompts": n_clips / t0, "clips_per_s_with_prompts": n_clips / t1,
            "overhead": t1 / t0, "length_ratio": n_with / n_without,
            "peak_mem_mb": timing.peak_mb, "mem_method": timing.memory_method,
            "threads": torch.get_num_threads(), "device": str(device),
        })
    return results


# ---------------------------------------------------------------- openmer complexity (HCEP Table 8)
# Model complexity and inference cost of HCEP against its baselines (HCEP Table 8).
#
# :func:`complexity_report` builds HCEP, ARPL and MSP on the *same* loaded encoders (one
# profile, modalities audio + text) for a few known classes, and measures, in one run on the same
# clips:
#
# - ``learnable_params``: parameters with ``requires_grad`` inside the method (HCEP: SMEP, CUEP,
#   the L_emo projections; ARPL/MSP: the feature head);
# - ``frozen_params``: parameters of the frozen encoders the method runs (audio + text);
# - ``ms_per_clip``: inference time per clip, scoring one batch of ``n_clips`` clips, median of
#   ``repeats`` calls. HCEP = prompted encoders + DPOL head (:meth:`HCEP.score`); ARPL/MSP =
#   unprompted encoders + head. Untrained methods: timing does not depend on the weights.
#
# Timing: ``torch.inference_mode``, torch threads fixed once (``threads``), the clips decoded and
# collated once before timing; one first call of each method (for HCEP it also computes the
# CUEP class features, which are then cached for the loaded model), then ``repeats`` rounds
# calling HCEP, ARPL, MSP in turn (interleaved, so drifting load hits all alike); medians.
#
# CUEP check: forward hooks count the encoder calls of HCEP's first call and of its later calls.
# The first call encodes the clips *and* the CUEP inputs (audio: the 2K learnable waveforms; text:
# the K positive and K negative class sentences); a later call must encode only the clips
# (``cuep_check.cuep_encoded_once``).
#
# Input-length floor. Prompts lengthen the encoders' inputs: ``length_ratio[m]`` = prompted /
# unprompted input length of the timed batch (audio: samples, ``(T + n*L) / T`` = (32000 + 2*8000)
# / 32000 = 1.5 for 2 s clips; text: the padded token length of the batch, ``(n_tok + m) / n_tok``).
# The cost-weighted floor is the HCEP/ARPL time ratio expected if every encoder's cost grew in
# proportion to its input length and the heads cost nothing::
#
#     floor = sum_m t_m * length_ratio[m] / sum_m t_m
#
# with ``t_m`` the median time of encoder ``m`` *without* prompts, measured inside the ARPL calls.
# Attention grows faster than linearly with the input, so that estimate is below the true floor;
# ``measured_floor`` times the encoders called exactly as HCEP calls them (the same clips, prompts
# of the same shapes filled with zeros, prefix caches cleared so that a late prompt entry pays its
# prefix like a new clip does), interleaved with the other calls, over ARPL's time. Whatever HCEP
# spends above it (prompt projections, DPOL, copies) is HCEP's own cost.
# ``target_ok`` = ``time_ratio_hcep_over_arpl <= 1.10 * measured_floor``. HCEP's Table 8 reports 1.45x
# the baseline's inference time (the paper's encoders and hardware); it is given as a reference only.
#: HCEP Table 8: HCEP's inference time relative to the baseline (as reported in the paper)
PAPER_TABLE8_TIME_RATIO = 1.45
#: allowed excess of the measured ratio over the input-length floor
TARGET_SLACK = 1.10
MODALITIES: tuple[Modality, ...] = ("audio", "text")


def count_parameters(module: torch.nn.Module, *, trainable: bool | None = None) -> int:
    """Number of parameters (all, only ``requires_grad`` ones, or only frozen ones), shared ones once."""
    seen: set[int] = set()
    total = 0
    for p in module.parameters():
        if id(p) in seen or (trainable is not None and p.requires_grad != trainable):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


class _EncoderClock:
    """Forward hooks on the encoders: seconds and calls per modality since the last :meth:`reset`."""

    def __init__(self, encoders: Mapping[str, torch.nn.Module]):
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._start: dict[str, float] = {}
        self.handles: list[torch.utils.hooks.RemovableHandle] = []
        for m, enc in encoders.items():
            self.handles.append(enc.register_forward_pre_hook(self._pre(m)))
            self.handles.append(enc.register_forward_hook(self._post(m)))

    def _pre(self, m: str) -> Callable[[torch.nn.Module, Any], None]:
        def hook(module: torch.nn.Module, args: Any) -> None:
            self._start[m] = time.perf_counter()
        return hook

    def _post(self, m: str) -> Callable[[torch.nn.Module, Any, Any], None]:
        def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
            self.seconds[m] += time.perf_counter() - self._start.pop(m)
            self.calls[m] += 1
        return hook

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def complexity_report(
    profile: str | ProfileConfig = "offline",
    data: str | Path = "emodb",
    *,
    n_clips: int = 16,
    repeats: int = 5,
    threads: int | None = None,
    known: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
    encoders: Mapping[str, Encoder] | None = None,
) -> dict[str, Any]:
    """Parameters and inference time per clip of HCEP, ARPL and MSP on the same encoders (Table 8).

    Args:
        profile: backbone profile (``"offline"``, ``"paper"`` or a :class:`ProfileConfig`).
        data: ``emodb`` (default; 2 s clips), ``meld`` or a manifest; its first ``n_clips`` clips
            are timed (they need audio and text).
        n_clips: clips per timed batch.
        repeats: timed rounds (median reported); at least 1.
        threads: ``torch.set_num_threads`` for the run (default: the current setting, recorded).
        known: the known classes (default: the first 5 classes of ``data``).
        device: where methods and clips go.
        encoders: already loaded encoders of ``profile`` (audio and text), to skip loading.

    Returns:
        ``{"records": [{"method", "learnable_params", "frozen_params", "ms_per_clip",
        "first_call_ms_per_clip", "learnable_breakdown"}, ...], "ratio": {...}, "cuep_check":
        {...}, "encoder_ms_per_clip": {...}, "machine": {...}, "clips", "n_clips", "repeats",
        "known_classes", "profile", "reference": {"table", "note", "rows"}}``; see the module
        docstring for the ``ratio`` block. ``reference`` holds the paper's Table 8 rows
        (:func:`openmer.reference.paper_rows`), labelled as published, not measured.

    Raises:
        ConfigError: bad ``n_clips``/``repeats``/``known``, or the clips lack audio or text.
        SharedDataMissing: the profile's weights or the data are absent.
    """
    from openmer.backbones.factory import load_profile, profile_config
    from openmer.training.run import build_method

    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}")
    threads = set_threads(threads)
    device = torch.device(device)
    prof = profile_config(profile) if isinstance(profile, str) else profile
    known, batch, clip_note = clip_batch(data, n_clips, known, MODALITIES)
    loaded = load_profile(prof, modalities=MODALITIES, device=device) if encoders is None else encoders
    encoders = {m: loaded[m] for m in MODALITIES}
    by_name: dict[str, Any] = {str(m): e for m, e in encoders.items()}
    dims = {m: int(encoders[m].embed_dim) for m in MODALITIES}
    methods = {
        "hcep": build_method("hcep", known, profile=prof, modalities=list(MODALITIES), encoders=by_name),
        "arpl": build_method("arpl", known, profile=prof, modalities=list(MODALITIES), input_dim=sum(dims.values())),
        "msp": build_method("msp", known, profile=prof, modalities=list(MODALITIES), input_dim=sum(dims.values())),
    }
    for method in methods.values():
        method.to(device).eval()
    batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}

    def baseline(name: str) -> Callable[[], None]:
        head = methods[name]

        def run() -> None:
            feats = [encoders["audio"](batch["audio"], lengths=batch["audio_lengths"]), encoders["text"](batch["text"])]
            head.score({"features": torch.cat(feats, dim=1)})
        return run

    def clear_prefix_caches() -> None:  # late prompt entry: test clips are new clips, their prefix is paid
        for enc in encoders.values():
            cache = getattr(enc, "prefix_cache", None)
            if cache is not None:
                cache.clear()

    zero_prompts = {m: torch.zeros(encoders[m].prompt_spec().shape, device=device) for m in MODALITIES}

    def hcep_call() -> None:
        clear_prefix_caches()
        methods["hcep"].score(batch)

    def floor_call() -> None:  # the same encoder calls as HCEP's, at the same lengths, with zero prompts
        clear_prefix_caches()
        encoders["audio"](batch["audio"], prompts=zero_prompts["audio"], lengths=batch["audio_lengths"])
        encoders["text"](batch["text"], prompts=zero_prompts["text"])

    calls = {"hcep": hcep_call, "arpl": baseline("arpl"), "msp": baseline("msp"), "floor": floor_call}
    clock = _EncoderClock(encoders)
    hcep = cast("HCEP", methods["hcep"])  # build_method("hcep", ...) builds an HCEP
    cuep_inputs = {"n": 0}
    real_inputs = hcep.cuep.inputs

    def counted_inputs(modality: str) -> Any:
        cuep_inputs["n"] += 1
        return real_inputs(modality)

    first_calls: dict[str, Any] = {}
    enc_times: dict[str, dict[str, list[float]]] = {name: {m: [] for m in MODALITIES} for name in calls}
    later_calls: dict[str, list[dict[str, int]]] = {name: [] for name in calls}
    later_cuep: dict[str, list[int]] = {name: [] for name in calls}

    def before(name: str) -> None:
        clock.reset()
        cuep_inputs["n"] = 0

    def after(name: str, timed: bool) -> None:  # the first call of HCEP computes and caches CUEP
        if not timed:
            first_calls[name] = {"encoder_calls": dict(clock.calls), "cuep_inputs_encoded": cuep_inputs["n"]}
            return
        for m in MODALITIES:
            enc_times[name][m].append(clock.seconds.get(m, 0.0))
        later_calls[name].append(dict(clock.calls))
        later_cuep[name].append(cuep_inputs["n"])

    # an instance attribute shadowing the method on purpose: counts CUEP encodings
    hcep.cuep.inputs = counted_inputs  # type: ignore[method-assign]
    try:
        with torch.inference_mode():
            timing = time_interleaved(calls, repeats, device, before=before, after=after, memory=False)
    finally:
        clock.close()
        del hcep.cuep.inputs  # back to the class method
    first = timing.first

    med = timing.median
    enc_med = {name: {m: statistics.median(v) for m, v in per.items()} for name, per in enc_times.items()}

    # input-length ratios of the timed batch
    spec_audio = encoders["audio"].prompt_spec()  # the encoders HCEP runs
    t_audio = int(batch["audio"].shape[1])
    if spec_audio.kind == "tokens":  # prompt_entry="features": n tokens beside T/320 output frames
        t_audio = int(batch["audio"].shape[1]) // 320
        n_audio_prompt = int(spec_audio.shape[0])
    else:  # waveform samples in front of the clip
        n_audio_prompt = int(torch.Size(spec_audio.shape).numel())
    n_tok = int(cast(Any, encoders["text"]).tokenize(batch["text"])["input_ids"].shape[1])  # a text encoder
    n_text_prompt = int(hcep.config.n_prompt_tokens)
    length_ratio = {"audio": (t_audio + n_audio_prompt) / t_audio, "text": (n_tok + n_text_prompt) / n_tok}
    t_plain = enc_med["arpl"]
    floor = sum(t_plain[m] * length_ratio[m] for m in MODALITIES) / sum(t_plain.values())
    ratio = med["hcep"] / med["arpl"]
    measured_floor = med["floor"] / med["arpl"]

    encoders_used = torch.nn.ModuleList([encoders[m] for m in MODALITIES])
    breakdown = {
        "hcep": {part: count_parameters(getattr(hcep, part), trainable=True)
                 for part in ("smep", "cuep", "emo_projection") if getattr(hcep, part, None) is not None},
        "arpl": {"head": count_parameters(methods["arpl"], trainable=True)},
        "msp": {"head": count_parameters(methods["msp"], trainable=True)},
    }
    plain = f"unprompted: audio {t_audio} samples, text {n_tok} tokens"
    inputs = {"hcep": f"prompted: audio {t_audio}+{n_audio_prompt} samples, text {n_tok}+{n_text_prompt} tokens",
              "arpl": plain, "msp": plain}
    calls.pop("floor")
    records = [{
        "method": name,
        "learnable_params": count_parameters(methods[name], trainable=True),
        # a method on clips holds its frozen encoders; the heads on features share the same ones
        "frozen_params": count_parameters(torch.nn.ModuleDict(methods[name].input_encoders()) or encoders_used),
        "ms_per_clip": 1000.0 * med[name] / n_clips,
        "first_call_ms_per_clip": 1000.0 * first[name] / n_clips,
        "encoder_ms_per_clip": {m: 1000.0 * enc_med[name][m] / n_clips for m in MODALITIES},
        "input": inputs[name],
        "learnable_breakdown": breakdown[name],
    } for name in calls]
    k = len(known)
    expected_first = {"audio": 2, "text": 3}  # clips + CUEP waveforms; clips + K pos + K neg sentences
    cuep_check = {
        "first_call_ms_per_clip": 1000.0 * first["hcep"] / n_clips,
        "later_call_ms_per_clip": 1000.0 * med["hcep"] / n_clips,
        "first_over_later": first["hcep"] / med["hcep"],
        "encoder_calls_first": first_calls["hcep"]["encoder_calls"],
        "encoder_calls_later": later_calls["hcep"],
        "cuep_inputs_encoded_first": first_calls["hcep"]["cuep_inputs_encoded"],
        "cuep_inputs_encoded_later": later_cuep["hcep"],
        "cuep_encoded_once": (first_calls["hcep"]["encoder_calls"] == expected_first
                              and all(c == {"audio": 1, "text": 1} for c in later_calls["hcep"])
                              and all(n == 0 for n in later_cuep["hcep"])),
        "note": (f"first call encodes the clips plus CUEP's {2 * k} learnable waveforms and {2 * k} class "
                 "sentences; later calls encode only the clips"),
    }
    return {
        "profile": prof.name,
        "modalities": list(MODALITIES),
        "known_classes": known,
        "clips": clip_note,
        "n_clips": n_clips,
        "repeats": repeats,
        "records": records,
        "ratio": {
            "time_ratio_hcep_over_arpl": ratio,
            "time_ratio_hcep_over_msp": med["hcep"] / med["msp"],
            "length_ratio": length_ratio,
            "length_ratio_floor": floor,
            "floor_weights_ms_per_clip": {m: 1000.0 * t_plain[m] / n_clips for m in MODALITIES},
            "measured_floor": measured_floor,
            "hcep_over_measured_floor": med["hcep"] / med["floor"],
            "target": TARGET_SLACK * measured_floor,
            "target_ok": ratio <= TARGET_SLACK * measured_floor,
            "floor_rule": ("measured_floor = time of the encoders called as HCEP calls them (same inputs, same "
                           "lengths, zero prompts of the prompt shapes; prefix caches cleared) / ARPL's time; "
                           "length_ratio_floor = sum_m t_m * length_ratio_m / sum_m t_m, the linear estimate "
                           "(t_m = unprompted encoder time inside ARPL), which attention's quadratic cost exceeds"),
            "paper_table8_time_ratio": PAPER_TABLE8_TIME_RATIO,
            "paper_table8_note": "HCEP Table 8: HCEP's inference time over the baseline's, as reported with "
                                 "the paper's encoders and hardware; a reference, not a target",
        },
        "cuep_check": cuep_check,
        "machine": machine(threads, device),
        "reference": {
            "table": "Table 8",
            "note": "published (HCEP Table 8: MAFW 10 emotions, the paper's encoders and hardware); "
                    "not measured here",
            "rows": paper_rows(table="Table 8"),
        },
    }


# ---------------------------------------------------------------- openmer bench-train
# What one HCEP training step costs, per component and per prompt entry (``openmer bench-train``).
#
# For each variant (a prompt entry, optionally with bf16 autocast or without text deduplication),
# :func:`train_step_report` builds HCEP on the same clips (one batch of the first ``n_clips`` known-class
# clips of ``data``, EmoDB by default, speech + transcript) and times, in one run, interleaved over
# ``repeats`` rounds (medians):
#
# - ``forward_s``: the *unprompted* forward of the clips through the full encoders (no grad): what
#   the ARPL/MSP baselines pay for these clips (once; their features are then cached);
# - ``floor_s``: the same computation as the training step's forward, without gradients: every
#   input the step encodes, at the lengths it encodes it (the clips with their prompts, CUEP's
#   whole prompts and class sentences), through the layers the step runs;
# - ``step_s``: one training step (forward, backward, optimiser), split into ``clips_s`` (the
#   clips through the prompted encoders), ``cuep_s`` (CUEP's class features), ``dpol_s`` (the
#   DPOL and L_emo logits and losses), ``backward_s`` and ``optimizer_s``;
# - ``step_over_forward`` = step / forward, ``step_over_floor`` = step / floor (a forward plus
#   backward costs about 3 forwards, so a ratio much above 3 is waste), ``clips_per_s``;
# - ``peak_mem_mb``: the peak RSS above the start of the variant's timed calls (CUDA: peak
#   allocated), and the torch threads.
#
#: name -> (audio prompt entry, text prompt entry, bf16 autocast, deduplicate sentences)
DEFAULT_VARIANTS: dict[str, tuple[str, str, bool, bool]] = {
    "waveform": ("waveform", "input", False, True),
    "waveform-no-dedupe": ("waveform", "input", False, False),
    "features": ("features", "input", False, True),
    "late": ("late", "late", False, True),
    "late-bf16": ("late", "late", True, True),
}


def _no_dedupe(encoder: Encoder) -> Callable[..., torch.Tensor]:
    """The text encoder's batch call without the sentence deduplication (for the comparison)."""
    def encode_batch(batch: Mapping[str, Any], rows: torch.Tensor | None = None,
                     prompts: torch.Tensor | None = None) -> torch.Tensor:
        texts = [batch["text"][i] for i in (range(len(batch["text"])) if rows is None else rows.tolist())]
        return encoder(texts, prompts=prompts)

    return encode_batch


def _time_variant(name: str, base_prof: Any, batch: dict[str, Any], forward: Callable[[], None], known: Sequence[str],
                  *, repeats: int, cuep_audio_samples: int) -> dict[str, Any]:
    """One record of :func:`train_step_report`: HCEP built for variant ``name``, its step timed."""
    from openmer.backbones.factory import load_profile
    from openmer.methods.hcep import HCEP, HCEPConfig
    from openmer.training.config import TrainConfig
    from openmer.training.engine import make_optimizer

    audio_entry, text_entry, bf16, dedupe = DEFAULT_VARIANTS[name]
    prof = base_prof.with_options("audio", prompt_entry=audio_entry).with_options("text", prompt_entry=text_entry)
    encoders: dict[str, Encoder] = {str(m): e for m, e in load_profile(prof, modalities=("text", "audio")).items()}
    if not dedupe:
        encoders["text"].encode_batch = _no_dedupe(encoders["text"])  # type: ignore[method-assign]
    cfg = HCEPConfig.from_dict({"profile": prof.to_dict(), "modalities": ["text", "audio"],
                                "cuep_audio_samples": cuep_audio_samples})
    method = HCEP(cfg, list(known), encoders)
    method.train()
    opt = make_optimizer(method.parameter_groups(), TrainConfig(optimizer="adam", lr=1e-3))
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else nullcontext
    parts: dict[str, list[float]] = {k: [] for k in ("clips_s", "cuep_s", "dpol_s", "backward_s", "optimizer_s",
                                                      "step_s")}

    def step() -> None:
        t = [time.perf_counter()]
        with autocast():
            prompts = method._prompts()
            blocks, present = method.sample_features(batch, prompts)
            t.append(time.perf_counter())
            text = method.class_text_features(prompts)
            classes = method.class_features(prompts, text)
            t.append(time.perf_counter())
            labels = batch["label"]
            logits = method._osr_logits(blocks, present, classes)
            emo = method._emotion_logits(blocks, present, prompts, text, classes)
            loss = torch.nn.functional.cross_entropy(logits, labels) + torch.nn.functional.cross_entropy(emo, labels)
        t.append(time.perf_counter())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t.append(time.perf_counter())
        opt.step()
        t.append(time.perf_counter())
        for key, a, b in (("clips_s", 0, 1), ("cuep_s", 1, 2), ("dpol_s", 2, 3), ("backward_s", 3, 4),
                          ("optimizer_s", 4, 5), ("step_s", 0, 5)):
            parts[key].append(t[b] - t[a])

    def floor() -> None:
        with torch.no_grad(), autocast():
            method.training_step(batch)

    # the first call of each is the warm-up (the step fills the prefix cache of the late entry)
    timing = time_interleaved({"forward": forward, "floor": floor, "step": step}, repeats)
    parts = {k: v[1:] for k, v in parts.items()}  # the step's parts without its first call
    parts["forward_s"], parts["floor_s"] = timing.times["forward"], timing.times["floor"]
    med = {k: statistics.median(v) for k, v in parts.items()}
    return {
        "variant": name, "prompt_entry": audio_entry, "text_prompt_entry": text_entry,
        "mixed_precision": "bf16" if bf16 else "no", "dedupe_text": dedupe,
        **{k: round(v, 4) for k, v in med.items()},
        "step_over_forward": round(med["step_s"] / med["forward_s"], 3),
        "step_over_floor": round(med["step_s"] / med["floor_s"], 3),
        "clips_per_s": round(len(batch["label"]) / med["step_s"], 2),
        "peak_mem_mb": round(timing.peak_mb, 1), "torch_threads": torch.get_num_threads(),
    }


def train_step_report(profile: str = "offline", data: str | Path = "emodb", *, variants: Sequence[str] | None = None,
                      n_clips: int = 32, repeats: int = 3, threads: int | None = None, cuep_audio_samples: int = 32000,
                      known: Sequence[str] | None = None) -> dict[str, Any]:
    """Time HCEP's training step per component for each variant (see the module docstring).

    Args:
        profile: the encoder profile (``offline``: MiniLM + Whisper).
        data: the clips (what ``--data`` takes, :func:`clip_batch`; default EmoDB's 2 s clips);
            they need audio and text.
        variants: names of :data:`DEFAULT_VARIANTS` (default: all).
        n_clips: clips per step (one batch).
        repeats: timed rounds (medians are reported).
        threads: torch intra-op threads (default: the current setting).
        cuep_audio_samples: length of CUEP's learnable waveforms (the EmoDB preset's 2 s).
        known: the known classes (default: the first 5 classes of ``data``).

    Returns:
        ``{"records": [...], "machine": ..., "n_clips", "repeats", "clips", "known_classes",
        "cuep_audio_samples"}``; one record per variant.

    Raises:
        ConfigError: an unknown variant, or bad ``n_clips`` / ``known`` / clips (:func:`clip_batch`).
        SharedDataMissing: no ``../shared`` (EmoDB and the offline encoders).
    """
    from openmer.backbones.factory import load_profile, profile_config

    names = list(variants or DEFAULT_VARIANTS)
    unknown = sorted(set(names) - set(DEFAULT_VARIANTS))
    if unknown:
        raise ConfigError(f"unknown bench-train variant(s) {unknown}; choose from {sorted(DEFAULT_VARIANTS)}")
    set_threads(threads)
    known, batch, clip_note = clip_batch(data, n_clips, known, ("text", "audio"), known_only=True)
    base_prof = profile_config(profile)
    reference = load_profile(base_prof, modalities=("text", "audio"))  # unprompted, full encoders

    def forward() -> None:
        with torch.no_grad():
            reference["audio"].encode_batch(batch)
            reference["text"](list(batch["text"]))

    records = [_time_variant(name, base_prof, batch, forward, known, repeats=repeats,
                             cuep_audio_samples=cuep_audio_samples) for name in names]
    return {"records": records, "machine": machine(), "n_clips": n_clips, "repeats": repeats,
            "clips": f"{clip_note}; known classes " + ", ".join(known), "known_classes": known,
            "cuep_audio_samples": cuep_audio_samples}
