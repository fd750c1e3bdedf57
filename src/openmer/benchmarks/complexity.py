"""Model complexity and inference cost of HCEP against its baselines (HCEP Table 8).

:func:`complexity_report` builds HCEP, ARPL and MSP on the *same* loaded encoders (one
profile, modalities audio + text) for a few known classes, and measures, in one run on the same
clips:

- ``learnable_params``: parameters with ``requires_grad`` inside the method (HCEP: SMEP, CUEP,
  the L_emo projections; ARPL/MSP: the feature head);
- ``frozen_params``: parameters of the frozen encoders the method runs (audio + text);
- ``ms_per_clip``: inference time per clip, scoring one batch of ``n_clips`` clips, median of
  ``repeats`` calls. HCEP = prompted encoders + DPOL head (:meth:`HCEP.score`); ARPL/MSP =
  unprompted encoders + head. Untrained methods: timing does not depend on the weights.

Timing: ``torch.inference_mode``, torch threads fixed once (``threads``), the clips decoded and
collated once before timing; one first call of each method (for HCEP it also computes the
CUEP class features, which are then cached for the loaded model), then ``repeats`` rounds
calling HCEP, ARPL, MSP in turn (interleaved, so drifting load hits all alike); medians.

CUEP check: forward hooks count the encoder calls of HCEP's first call and of its later calls.
The first call encodes the clips *and* the CUEP inputs (audio: the 2K learnable waveforms; text:
the K positive and K negative class sentences); a later call must encode only the clips
(``cuep_check.cuep_encoded_once``).

Input-length floor. Prompts lengthen the encoders' inputs: ``length_ratio[m]`` = prompted /
unprompted input length of the timed batch (audio: samples, ``(T + n*L) / T`` = (32000 + 2*8000)
/ 32000 = 1.5 for 2 s clips; text: the padded token length of the batch, ``(n_tok + m) / n_tok``).
The cost-weighted floor is the HCEP/ARPL time ratio expected if every encoder's cost grew in
proportion to its input length and the heads cost nothing::

    floor = sum_m t_m * length_ratio[m] / sum_m t_m

with ``t_m`` the median time of encoder ``m`` *without* prompts, measured inside the ARPL calls.
Attention grows faster than linearly with the input, so that estimate is below the true floor;
``measured_floor`` times the encoders called exactly as HCEP calls them (the same clips, prompts
of the same shapes filled with zeros, prefix caches cleared so that a late prompt entry pays its
prefix like a new clip does), interleaved with the other calls, over ARPL's time. Whatever HCEP
spends above it (prompt projections, DPOL, copies) is HCEP's own cost.
``target_ok`` = ``time_ratio_hcep_over_arpl <= 1.10 * measured_floor``. HCEP's Table 8 reports 1.45x
the baseline's inference time (the paper's encoders and hardware); it is given as a reference only.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from openmer.errors import ConfigError
from openmer.reference import paper_rows

if TYPE_CHECKING:
    from openmer.backbones.base import Encoder, Modality
    from openmer.backbones.factory import ProfileConfig
    from openmer.methods.base import Batch
    from openmer.methods.hcep.model import HCEP

__all__ = ["PAPER_TABLE8_TIME_RATIO", "TARGET_SLACK", "complexity_report", "count_parameters"]

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

    def __init__(self, encoders: Mapping[Modality, torch.nn.Module]):
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


def _clips(data: str | Path, n_clips: int, known: Sequence[str] | None) -> tuple[list[str], Batch, str]:
    from openmer.data.clips import ClipDataset
    from openmer.data.manifest import label_indices
    from openmer.datasets import resolve_data

    manifest, _ = resolve_data(data)
    if n_clips < 1 or n_clips > len(manifest):
        raise ConfigError(f"--clips must be in [1, {len(manifest)}] for {data}, got {n_clips}")
    classes = list(manifest.classes)
    known = list(known) if known is not None else classes[: min(5, len(classes))]
    absent = [k for k in known if k not in classes]
    if absent:
        raise ConfigError(f"known class(es) {absent} do not occur in {data}; its classes are {classes}")
    sub = manifest.subset(list(range(n_clips)))
    labels = label_indices([s.label for s in sub], known)
    batch = ClipDataset(sub, labels, MODALITIES).batches(n_clips)[0]
    if not bool(batch["audio_present"].all()) or not bool(batch["text_present"].all()):
        raise ConfigError(f"the first {n_clips} clips of {data} must all have audio and text for this timing")
    return known, batch, f"{n_clips} {data} clips (first in manifest order), audio + text"


def _machine(threads: int, device: torch.device) -> dict[str, Any]:
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - platforms without getloadavg
        load = None
    return {
        "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(), "torch_threads": threads, "torch": torch.__version__,
        "device": str(device), "load_average_1_5_15min": load,
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def complexity_report(
    profile: str | ProfileConfig = "offline",
    data: str | Path = "emodb",
    *,
    n_clips: int = 16,
    repeats: int = 5,
    threads: int | None = None,
    known: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
    encoders: Mapping[Modality, Encoder] | None = None,
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
    if threads is not None:
        torch.set_num_threads(int(threads))
    threads = torch.get_num_threads()
    device = torch.device(device)
    prof = profile_config(profile) if isinstance(profile, str) else profile
    known, batch, clip_note = _clips(data, n_clips, known)
    if encoders is None:
        encoders = load_profile(prof, modalities=MODALITIES, device=device)
    encoders = {m: encoders[m] for m in MODALITIES}
    dims = {m: int(encoders[m].embed_dim) for m in MODALITIES}
    methods = {
        "hcep": build_method("hcep", known, profile=prof, modalities=list(MODALITIES), encoders=encoders),
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
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    clock = _EncoderClock(encoders)
    hcep = cast("HCEP", methods["hcep"])  # build_method("hcep", ...) builds an HCEP
    cuep_inputs = {"n": 0}
    real_inputs = hcep.cuep.inputs

    def counted_inputs(modality: str) -> Any:
        cuep_inputs["n"] += 1
        return real_inputs(modality)

    # an instance attribute shadowing the method on purpose: counts CUEP encodings
    hcep.cuep.inputs = counted_inputs  # type: ignore[method-assign]
    first: dict[str, float] = {}
    first_calls: dict[str, Any] = {}
    times: dict[str, list[float]] = {name: [] for name in calls}
    enc_times: dict[str, dict[str, list[float]]] = {name: {m: [] for m in MODALITIES} for name in calls}
    later_calls: dict[str, list[dict[str, int]]] = {name: [] for name in calls}
    later_cuep: dict[str, list[int]] = {name: [] for name in calls}
    try:
        with torch.inference_mode():
            for name, fn in calls.items():  # first call of each (HCEP: computes and caches CUEP)
                clock.reset()
                cuep_inputs["n"] = 0
                t0 = time.perf_counter()
                fn()
                sync()
                first[name] = time.perf_counter() - t0
                first_calls[name] = {"encoder_calls": dict(clock.calls), "cuep_inputs_encoded": cuep_inputs["n"]}
            for _ in range(repeats):
                for name, fn in calls.items():
                    clock.reset()
                    cuep_inputs["n"] = 0
                    t0 = time.perf_counter()
                    fn()
                    sync()
                    times[name].append(time.perf_counter() - t0)
                    for m in MODALITIES:
                        enc_times[name][m].append(clock.seconds.get(m, 0.0))
                    later_calls[name].append(dict(clock.calls))
                    later_cuep[name].append(cuep_inputs["n"])
    finally:
        clock.close()
        del hcep.cuep.inputs  # back to the class method

    med = {name: statistics.median(t) for name, t in times.items()}
    enc_med = {name: {m: statistics.median(v) for m, v in per.items()} for name, per in enc_times.items()}

    # input-length ratios of the timed batch
    spec_audio = hcep.encoders["audio"].prompt_spec()
    t_audio = int(batch["audio"].shape[1])
    if spec_audio.kind == "tokens":  # prompt_entry="features": n tokens beside T/320 output frames
        t_audio = int(batch["audio"].shape[1]) // 320
        n_audio_prompt = int(spec_audio.shape[0])
    else:  # waveform samples in front of the clip
        n_audio_prompt = int(torch.Size(spec_audio.shape).numel())
    n_tok = int(encoders["text"].tokenize(batch["text"])["input_ids"].shape[1])
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
        "machine": _machine(threads, device),
        "reference": {
            "table": "Table 8",
            "note": "published (HCEP Table 8: MAFW 10 emotions, the paper's encoders and hardware); "
                    "not measured here",
            "rows": paper_rows(table="Table 8"),
        },
    }
