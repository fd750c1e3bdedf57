"""Training presets by name: what ``openmer train --preset`` and the benchmarks train with.

One definition, read by both: the benchmarks' CPU presets (:mod:`openmer.benchmarks.media`,
``emodb_config`` and the speech presets built on it) take their schedules and options from the
constants here, and ``openmer train --preset cpu`` gives a method the same ones
(:func:`resolve_preset`).

=========  ==========================================================================================
preset     what it sets
=========  ==========================================================================================
``cpu``    (default) what the benchmarks run on a 2-core CPU and was measured to learn there.
           HCEP (a method whose config is an :class:`~openmer.methods.hcep.HCEPConfig`) and the
           methods that share its schedule (:data:`METHOD_TRAIN`: HESP): 15 epochs, Adam lr 1e-3,
           batch 16, CUEP and DPOL block weights at 30x the rate (:data:`CPU_HCEP_TRAIN`); HCEP's
           options :data:`CPU_HCEP_OPTIONS` (CUEP from class clips, 2 s CUEP waveforms, learned DPOL
           block weights, blocks standardised, block dropout 0.3; the DPOL logit scale stays 30);
           prompts at the encoders' last layer over cached lower layers
           (:data:`CPU_ENCODER_OPTIONS`). A method on cached features: its heads' schedule,
           :data:`BASELINE_TRAIN` (60 epochs, Adam lr 1e-3, batch 64, x0.1 at 30, validation every 5).
``paper``  HCEP Sec. 4.1.4 and the paper's reading, for every method: SGD momentum 0.9, lr 5e-4 x0.1
           every 30 epochs, 150 epochs, batch 32 (:class:`~openmer.training.TrainConfig` defaults),
           no extra method option (CUEP from noise, 5 s waveforms, equal blocks, no dropout), prompts
           at the encoders' inputs. Meant for a GPU (``docs/interpretation.md`` readings 12-21: what
           the CPU preset changes and why).
=========  ==========================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from openmer.backbones.specs import ProfileConfig
from openmer.errors import ConfigError
from openmer.methods.base import OpenSetMethod
from openmer.methods.hcep import HCEPConfig
from openmer.training.config import TrainConfig

__all__ = [
    "BASELINE_TRAIN", "CPU_ENCODER_OPTIONS", "CPU_HCEP_OPTIONS", "CPU_HCEP_TRAIN", "CPU_LR_SCALES", "DEFAULT_PRESET",
    "METHOD_TRAIN", "PRESETS", "PRESET_HELP", "Preset", "TrainField", "resolve_preset", "with_encoder_options",
]

#: which of a benchmark preset's training configs a method trains with, by field name
TrainField = Literal["hcep_train", "baseline_train"]
#: methods on clips that train on HCEP's (CPU) schedule; any other method trains on
#: :data:`BASELINE_TRAIN` (HESP prompts the same frozen encoders as HCEP)
METHOD_TRAIN: dict[str, TrainField] = {"hcep": "hcep_train", "hesp": "hcep_train"}

#: the heads on cached encoder features (the baselines of every benchmark): Adam, 60 epochs
BASELINE_TRAIN = TrainConfig(epochs=60, optimizer="adam", lr=1e-3, batch_size=64, step_size=30, eval_every=5)

#: per parameter group learning-rate scales of HCEP's CPU schedule: CUEP's inputs and the DPOL
#: block weights at 30x the base rate (docs/interpretation.md, readings 13 and 18)
CPU_LR_SCALES: dict[str, float] = {"cuep": 30.0, "block_weights": 30.0}
#: HCEP's CPU schedule (the EmoDB preset, measured to learn in about a minute per trial on 2 cores)
CPU_HCEP_TRAIN = TrainConfig(epochs=15, optimizer="adam", lr=1e-3, batch_size=16, lr_scales=CPU_LR_SCALES)
#: HCEP's CPU options (docs/interpretation.md, readings 12-21): CUEP starts from class clips, its
#: learnable waveforms are 2 s (32000 samples at 16 kHz), the modality blocks' DPOL distances have
#: learned weights, each block is standardised per dimension with its training clips' statistics and
#: the samples' blocks get dropout 0.3 in training (the DPOL logit scale is the config's default, 30)
CPU_HCEP_OPTIONS: dict[str, Any] = {"cuep_audio_samples": 32000, "cuep_init": "clips", "block_weights": "learned",
                                    "standardize_blocks": True, "block_dropout": 0.3}
#: prompts enter the encoders at their last layer, over cached lower layers (reading 14)
CPU_ENCODER_OPTIONS: dict[str, dict[str, Any]] = {"audio": {"prompt_entry": "late"}, "text": {"prompt_entry": "late"}}


@dataclass(frozen=True)
class Preset:
    """What one preset gives one method (:func:`resolve_preset`).

    Attributes:
        name: ``"cpu"`` or ``"paper"``.
        train: the schedule (seed 0; the caller sets its own).
        method_options: extra fields of the method's config.
        encoder_options: per modality, encoder loader options (applied to the modalities the
            profile has).
        note: one line saying what was set (for logs, ``run.json`` and model cards).
    """

    name: str
    train: TrainConfig
    method_options: dict[str, Any] = field(default_factory=dict)
    encoder_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    note: str = ""


#: preset name -> one line for ``--help``
PRESETS: dict[str, str] = {
    "cpu": "the benchmarks' CPU preset for the method (HCEP: 15 epochs Adam lr 1e-3, batch 16, CUEP and block "
           "weights x30, late prompt entry, CUEP from class clips, learned DPOL block weights, standardised "
           "blocks, block dropout 0.3; feature methods: 60 epochs Adam lr 1e-3, batch 64)",
    "paper": "HCEP Sec. 4.1.4: SGD momentum 0.9, lr 5e-4 x0.1 every 30 epochs, 150 epochs, batch 32, prompts at "
             "the inputs, CUEP from noise, no extra option (meant for a GPU)",
}
#: the default of ``openmer train``: the one that learns in the time a CPU user gives it
DEFAULT_PRESET = "cpu"
PRESET_HELP = "; ".join(f"{k}: {v}" for k, v in PRESETS.items()) + f". Default {DEFAULT_PRESET}."


def resolve_preset(name: str, method: type[OpenSetMethod]) -> Preset:
    """The schedule and options of preset ``name`` for ``method`` (module docstring).

    The rule is the benchmarks': a method named in :data:`METHOD_TRAIN` trains on
    :data:`CPU_HCEP_TRAIN`, any other on :data:`BASELINE_TRAIN`; a method whose config is an
    :class:`HCEPConfig` also gets :data:`CPU_HCEP_OPTIONS`; a method on clips gets
    :data:`CPU_ENCODER_OPTIONS`.

    Raises:
        ConfigError: an unknown preset (the message lists them).
    """
    if name == "paper":
        return Preset("paper", TrainConfig(), note=f"paper: {PRESETS['paper']}")
    if name != "cpu":
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    on_hcep_schedule = METHOD_TRAIN.get(method.name) == "hcep_train"
    train = CPU_HCEP_TRAIN if on_hcep_schedule else BASELINE_TRAIN
    options = dict(CPU_HCEP_OPTIONS) if issubclass(method.config_class, HCEPConfig) else {}
    encoders = {m: dict(o) for m, o in CPU_ENCODER_OPTIONS.items()} if method.consumes == "clips" else {}
    parts = [f"{train.epochs} epochs {train.optimizer} lr {train.lr:g}, batch {train.batch_size}"]
    if train.lr_scales:
        parts.append("lr x" + ", x".join(f"{v:g} {k}" for k, v in train.lr_scales.items()))
    parts += [f"{k}={v}" for k, v in options.items()]
    parts += [f"{m} prompt entry {o['prompt_entry']}" for m, o in encoders.items() if "prompt_entry" in o]
    return Preset("cpu", train, options, encoders, note="cpu: " + "; ".join(parts))


def with_encoder_options(profile: ProfileConfig, preset: Preset) -> ProfileConfig:
    """``profile`` with ``preset.encoder_options`` for the modalities it has an encoder for; an
    option the profile already sets (``--audio-prompt-entry``, a profile JSON file) is kept."""
    for modality, spec in profile.specs().items():
        extra = {k: v for k, v in preset.encoder_options.get(modality, {}).items() if k not in spec.options}
        if extra:
            profile = profile.with_options(modality, **extra)
    return profile
