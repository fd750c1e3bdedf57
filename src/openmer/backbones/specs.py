"""What names an encoder and a profile (configs), and the registries the loaders and profiles fill.

- :class:`EncoderSpec`: one encoder: its loader kind, weights (hub id or folder), loader options;
- :class:`ProfileConfig`: one encoder per modality (stored in every checkpoint);
- ``ENCODER_KINDS``: loader kind -> ``loader(name_or_path, *, device, dtype, **options) -> Encoder``
  (filled by :mod:`openmer.backbones.pretrained`);
- ``PROFILES``: profile name -> a function building its :class:`ProfileConfig` (filled by
  :mod:`openmer.backbones.profiles`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from pydantic import Field

from openmer.backbones.base import Encoder, Modality
from openmer.config import OpenmerConfig
from openmer.errors import ConfigError
from openmer.registry import Registry

EncoderLoader = Callable[..., Encoder]


def _fill_kinds() -> None:
    from openmer.backbones import pretrained  # noqa: F401  (its decorators fill ENCODER_KINDS)


def _fill_profiles() -> None:
    from openmer.backbones import profiles  # noqa: F401  (its decorators fill PROFILES)


ENCODER_KINDS: Registry[EncoderLoader] = Registry("encoder kind", fill=_fill_kinds)
PROFILES: Registry[Callable[[], Any]] = Registry("profile", fill=_fill_profiles)


def register_encoder(kind: str) -> Callable[[EncoderLoader], EncoderLoader]:
    """Decorator: register ``loader(name_or_path, *, device, dtype, **options) -> Encoder`` as ``kind``."""
    return ENCODER_KINDS.register(kind)


def _keyword_options(loader: EncoderLoader) -> list[str]:
    """The options a loader declares as keyword arguments (besides device and dtype)."""
    import inspect

    params = inspect.signature(loader).parameters.values()
    return sorted(p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name not in ("device", "dtype"))


def check_options(kind: str, options: dict[str, Any], allowed: dict[str, type | tuple[type, ...]]) -> None:
    """Refuse loader options an encoder kind does not take, or of the wrong type.

    ``allowed`` maps option names to types; a loader with explicit keyword options passes its
    leftover ``**unknown`` and ``{}`` (the message then lists the loader's keyword options).

    Raises:
        ConfigError: naming the option, the kind and what is allowed.
    """
    bad = sorted(set(options) - set(allowed))
    if bad:
        names = sorted(allowed) or _keyword_options(ENCODER_KINDS.get(kind))
        raise ConfigError(f"unknown option(s) {bad} for encoder kind {kind!r}; allowed: {names}")
    for key, value in options.items():
        typ = allowed[key]
        types = typ if isinstance(typ, tuple) else (typ,)
        if not isinstance(value, types) or (int in types and bool not in types and isinstance(value, bool)):
            expected = " or ".join(t.__name__ for t in types)
            raise ConfigError(f"option {key!r} of encoder kind {kind!r} must be {expected}, got {value!r}")


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

    def specs(self, modalities: Collection[str] | None = None) -> dict[Modality, EncoderSpec]:
        """Its encoders' specs by modality (only those of ``modalities``, when given)."""
        return {m: s for m in ("video", "audio", "text")
                if (s := getattr(self, m)) is not None and (modalities is None or m in modalities)}

    def with_options(self, modality: Modality, **options: float | str | bool) -> ProfileConfig:
        """A copy whose ``modality`` encoder gets extra loader options (e.g. ``prompt_entry="features"``).

        Raises:
            ConfigError: the profile has no encoder for ``modality``.
        """
        spec = getattr(self, modality, None)
        if spec is None:
            raise ConfigError(f"profile {self.name!r} has no {modality} encoder")
        return self.model_copy(update={modality: spec.model_copy(update={"options": {**spec.options, **options}})})



def profile_config(name: str, **overrides: str | None) -> ProfileConfig:
    """The named profile (``"paper"``, ``"light"``, ``"offline"``), with per-modality weights overridden.

    Args:
        name: profile name.
        **overrides: ``text=``, ``video=``, ``audio=``: a hub id or folder replacing the default
            weights of that modality (same kind), or ``None`` to drop the modality.

    Raises:
        ConfigError: unknown profile or modality name.
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
