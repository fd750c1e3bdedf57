"""What one HCEP training step costs, per component and per prompt entry (``openmer bench-train``).

For each variant (a prompt entry, optionally with bf16 autocast or without text deduplication),
:func:`train_step_report` builds HCEP on the same EmoDB clips (one batch of ``n_clips`` known-class
clips, speech + transcript) and times, in one run, interleaved over ``repeats`` rounds (medians):

- ``forward_s``: the *unprompted* forward of the clips through the full encoders (no grad): what
  the ARPL/MSP baselines pay for these clips (once; their features are then cached);
- ``floor_s``: the same computation as the training step's forward, without gradients: every
  input the step encodes, at the lengths it encodes it (the clips with their prompts, CUEP's
  whole prompts and class sentences), through the layers the step runs;
- ``step_s``: one training step (forward, backward, optimiser), split into ``clips_s`` (the
  clips through the prompted encoders), ``cuep_s`` (CUEP's class features), ``dpol_s`` (the
  DPOL and L_emo logits and losses), ``backward_s`` and ``optimizer_s``;
- ``step_over_forward`` = step / forward, ``step_over_floor`` = step / floor (a forward plus
  backward costs about 3 forwards, so a ratio much above 3 is waste), ``clips_per_s``;
- ``peak_mem_mb``: the peak RSS above the start of the variant's timed calls (CUDA: peak
  allocated), and the torch threads.

Ratios measured in one run are the figures that count on a shared machine; absolute seconds
move with the load.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch

from openmer.backbones.bench import _PeakRSS
from openmer.errors import ConfigError

__all__ = ["DEFAULT_VARIANTS", "train_step_report"]

#: name -> (audio prompt entry, text prompt entry, bf16 autocast, deduplicate sentences)
DEFAULT_VARIANTS: dict[str, tuple[str, str, bool, bool]] = {
    "waveform": ("waveform", "input", False, True),
    "waveform-no-dedupe": ("waveform", "input", False, False),
    "features": ("features", "input", False, True),
    "late": ("late", "late", False, True),
    "late-bf16": ("late", "late", True, True),
}


def _clips(n_clips: int, known: Sequence[str]):
    from openmer.datasets import load_emodb
    from openmer.data.clips import ClipDataset

    man = load_emodb()
    rows = [i for i, s in enumerate(man) if s.label in known][:n_clips]
    man = man.subset(rows)
    labels = np.array([list(known).index(s.label) for s in man])
    clips = ClipDataset(man, labels, ("text", "audio"))
    return clips.collate_fn([clips[i] for i in range(len(clips))])


def _no_dedupe(encoder):
    """The text encoder's batch call without the sentence deduplication (for the comparison)."""
    def encode_batch(batch, rows=None, prompts=None):
        texts = [batch["text"][i] for i in (range(len(batch["text"])) if rows is None else rows.tolist())]
        return encoder(texts, prompts=prompts)

    return encode_batch


def train_step_report(profile: str = "offline", *, variants: Sequence[str] | None = None, n_clips: int = 32,
                      repeats: int = 3, threads: int | None = None, cuep_audio_samples: int = 32000,
                      known: Sequence[str] = ("anger", "boredom", "happiness", "neutral", "sadness")) -> dict[str, Any]:
    """Time HCEP's training step per component for each variant (see the module docstring).

    Args:
        profile: the encoder profile (``offline``: MiniLM + Whisper on EmoDB clips).
        variants: names of :data:`DEFAULT_VARIANTS` (default: all).
        n_clips: clips per step (one batch).
        repeats: timed rounds (medians are reported).
        threads: torch intra-op threads (default: the current setting).
        cuep_audio_samples: length of CUEP's learnable waveforms (the EmoDB preset's 2 s).

    Returns:
        ``{"records": [...], "machine": ..., "n_clips", "repeats"}``; one record per variant.

    Raises:
        ConfigError: an unknown variant.
        SharedDataMissing: no ``../shared`` (EmoDB and the offline encoders).
    """
    from openmer.backbones.factory import load_profile, profile_config
    from openmer.benchmarks.runner import machine_description
    from openmer.methods.hcep import HCEP, HCEPConfig
    from openmer.training.config import TrainConfig
    from openmer.training.engine import make_optimizer

    names = list(variants or DEFAULT_VARIANTS)
    unknown = sorted(set(names) - set(DEFAULT_VARIANTS))
    if unknown:
        raise ConfigError(f"unknown bench-train variant(s) {unknown}; choose from {sorted(DEFAULT_VARIANTS)}")
    if threads is not None:
        torch.set_num_threads(int(threads))
    batch = _clips(n_clips, known)
    base_prof = profile_config(profile)
    reference = load_profile(base_prof, modalities=("text", "audio"))  # unprompted, full encoders

    def forward() -> None:
        with torch.no_grad():
            reference["audio"].encode_batch(batch)
            reference["text"](list(batch["text"]))

    records = []
    for name in names:
        audio_entry, text_entry, bf16, dedupe = DEFAULT_VARIANTS[name]
        prof = base_prof.with_options("audio", prompt_entry=audio_entry).with_options("text", prompt_entry=text_entry)
        encoders = load_profile(prof, modalities=("text", "audio"))
        if not dedupe:
            encoders["text"].encode_batch = _no_dedupe(encoders["text"])  # type: ignore[method-assign]
        cfg = HCEPConfig.from_dict({"profile": prof.to_dict(), "modalities": ["text", "audio"],
                                    "cuep_audio_samples": cuep_audio_samples})
        method = HCEP(cfg, list(known), encoders).train()
        opt = make_optimizer(method.parameter_groups(), TrainConfig(optimizer="adam", lr=1e-3))
        autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else nullcontext
        parts: dict[str, list[float]] = {k: [] for k in ("clips_s", "cuep_s", "dpol_s", "backward_s", "optimizer_s",
                                                          "step_s", "floor_s", "forward_s")}

        def step(record: bool) -> None:
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
            if record:
                for key, a, b in (("clips_s", 0, 1), ("cuep_s", 1, 2), ("dpol_s", 2, 3), ("backward_s", 3, 4),
                                  ("optimizer_s", 4, 5), ("step_s", 0, 5)):
                    parts[key].append(t[b] - t[a])

        def floor() -> None:
            with torch.no_grad(), autocast():
                method.training_step(batch)

        step(False)  # warm-up (fills the prefix cache of the late entry)
        floor()
        forward()
        with _PeakRSS() as mem:
            for _ in range(repeats):
                t0 = time.perf_counter()
                forward()
                parts["forward_s"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                floor()
                parts["floor_s"].append(time.perf_counter() - t0)
                step(True)
        med = {k: statistics.median(v) for k, v in parts.items()}
        records.append({
            "variant": name, "prompt_entry": audio_entry, "text_prompt_entry": text_entry,
            "mixed_precision": "bf16" if bf16 else "no", "dedupe_text": dedupe,
            **{k: round(v, 4) for k, v in med.items()},
            "step_over_forward": round(med["step_s"] / med["forward_s"], 3),
            "step_over_floor": round(med["step_s"] / med["floor_s"], 3),
            "clips_per_s": round(n_clips / med["step_s"], 2),
            "peak_mem_mb": round(mem.peak_mb, 1), "torch_threads": torch.get_num_threads(),
        })
        del method, encoders, opt
    return {"records": records, "machine": machine_description(), "n_clips": n_clips, "repeats": repeats,
            "clips": "EmoDB, known classes " + ", ".join(known), "cuep_audio_samples": cuep_audio_samples}
