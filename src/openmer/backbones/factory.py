"""Resolve a profile or an encoder spec to frozen :class:`~openmer.backbones.base.Encoder` objects.

The open_clip split: encoder classes (``whisper.py``, ``minilm.py``, ``fer.py``, ``clip.py``,
``wav2vec2.py``) never touch the filesystem; :mod:`openmer.backbones.resolve` turns a hub id
into a local folder (model mirror folders, then the hub's cache or a download);
:mod:`openmer.backbones.pretrained` holds the loaders, one per encoder kind, that read that
folder (safetensors only); :mod:`openmer.backbones.profiles` names one encoder per modality:

- ``paper``: CLIP ViT-B/16 text + vision (``openai/clip-vit-base-patch16``) and wav2vec 2.0
  base (``facebook/wav2vec2-base``), as HCEP (Sec. 4.1.4).
- ``light`` (alias ``offline``): all-MiniLM-L6-v2 (text), the FER mini-Xception face CNN (video
  frames) and the Whisper-base encoder (audio), by hub id; ``../shared/models`` is a mirror.

This module only looks names up in those registries (:mod:`openmer.backbones.specs`) and
loads; the resolved :class:`ProfileConfig` is stored in every checkpoint so that it can rebuild
its encoders.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

import torch

from openmer.backbones.base import Encoder, Modality
from openmer.backbones.resolve import resolve_encoder
from openmer.backbones.specs import (
    ENCODER_KINDS,
    PROFILES,
    EncoderSpec,
    ProfileConfig,
    profile_config,
    register_encoder,
)

__all__ = ["ENCODER_KINDS", "PROFILES", "EncoderSpec", "ProfileConfig", "load_encoder", "load_encoders", "load_profile",
           "profile_config", "register_encoder"]


def load_encoder(spec: EncoderSpec, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 models_dir: str | Path | None = None, allow_paths: bool = True) -> Encoder:
    """Resolve the spec's weights (:func:`~openmer.backbones.resolve.resolve_encoder`), load and freeze one encoder.

    The encoder's ``name_or_path`` stays the spec's (the hub id, not the local folder it was
    read from), so checkpoints and feature caches record the id.

    Args:
        models_dir: first model mirror folder (default: ``--models-dir`` / ``OPENMER_MODELS_DIR``).
        allow_paths: ``False`` when the spec was read from a user-given file (a run folder): only
            hub ids, resolved from mirrors and the hub.

    Raises:
        ConfigError: unknown ``kind`` (the message lists the registered kinds) or options, or a
            name that is not a hub id (nor, with ``allow_paths``, a path).
        EncoderNotFound: neither a mirror nor the hub holds the weights (names id, folders, env var).
        UnsafeWeightsError: the folder holds only pickled weights (``pytorch_model.bin``).
        OSError: the weights lack parameters the model needs.
    """
    loader = ENCODER_KINDS.get(spec.kind)
    where = resolve_encoder(spec.name_or_path, spec.kind, models_dir=models_dir, allow_paths=allow_paths)
    enc = loader(str(where), device=device, dtype=dtype, **spec.options)
    enc.name_or_path = spec.name_or_path
    return enc.freeze()


def load_profile(
    config: ProfileConfig | str, *, modalities: Collection[str] | None = None,
    device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
    models_dir: str | Path | None = None, allow_paths: bool = True,
) -> dict[str, Encoder]:
    """Load the encoders of a profile (all its modalities, or only ``modalities``); the other
    arguments as :func:`load_encoder`.

    Returns:
        modality (``"video"``, ``"audio"``, ``"text"``) -> its frozen encoder.
    """
    cfg = profile_config(config) if isinstance(config, str) else config
    return load_encoders(cfg.specs(modalities), device=device, dtype=dtype, models_dir=models_dir,
                         allow_paths=allow_paths)


def load_encoders(specs: Mapping[Modality, EncoderSpec], *, device: str | torch.device = "cpu",
                  dtype: torch.dtype = torch.float32, models_dir: str | Path | None = None,
                  allow_paths: bool = True) -> dict[str, Encoder]:
    """Load one frozen encoder per modality of ``specs`` (e.g. ``profile.specs(modalities)``); the
    other arguments as :func:`load_encoder`."""
    return {m: load_encoder(s, device=device, dtype=dtype, models_dir=models_dir, allow_paths=allow_paths)
            for m, s in specs.items()}
