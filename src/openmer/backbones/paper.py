"""The ``paper`` profile: CLIP ViT-B/16 (text, vision) and wav2vec 2.0 base (audio), as HCEP Sec. 4.1.4.

Registers the loaders of the encoder kinds ``"clip-text"``, ``"clip-vision"`` and
``"wav2vec2"``. Each loader reads weights through transformers' ``from_pretrained``, so a hub
id (``openai/clip-vit-base-patch16``) and a local folder written by ``save_pretrained`` take
the *same* code path; with ``HF_HUB_OFFLINE=1`` a hub id must already be in the local cache.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel, Wav2Vec2Model

from openmer.backbones.clip import ClipTextEncoder, ClipVisionEncoder
from openmer.backbones.factory import EncoderSpec, ProfileConfig, register_encoder
from openmer.backbones.wav2vec2 import Wav2Vec2AudioEncoder
from openmer.errors import ConfigError

__all__ = [
    "CLIP_ID", "WAV2VEC2_ID", "ClipTextEncoder", "ClipVisionEncoder", "Wav2Vec2AudioEncoder",
    "load_clip_text", "load_clip_vision", "load_wav2vec2", "paper_profile",
]

logger = logging.getLogger(__name__)

CLIP_ID = "openai/clip-vit-base-patch16"
WAV2VEC2_ID = "facebook/wav2vec2-base"

T = TypeVar("T")


def paper_profile() -> ProfileConfig:
    """HCEP's encoders: CLIP ViT-B/16 text + vision, wav2vec 2.0 base audio."""
    return ProfileConfig(
        name="paper",
        text=EncoderSpec(kind="clip-text", name_or_path=CLIP_ID),
        video=EncoderSpec(kind="clip-vision", name_or_path=CLIP_ID),
        audio=EncoderSpec(kind="wav2vec2", name_or_path=WAV2VEC2_ID),
    )


def _check_options(kind: str, options: dict[str, Any], allowed: dict[str, type]) -> None:
    bad = sorted(set(options) - set(allowed))
    if bad:
        raise ConfigError(f"unknown option(s) {bad} for encoder kind {kind!r}; allowed: {sorted(allowed)}")
    for key, value in options.items():
        typ = allowed[key]
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise ConfigError(f"option {key!r} of encoder kind {kind!r} must be {typ.__name__}, got {value!r}")


def _from_pretrained(kind: str, name_or_path: str, load: Callable[..., T], **kwargs: Any) -> T:
    """``load(name_or_path, **kwargs)`` with an error that names the weights, and no silent random init.

    Raises:
        OSError: the weights cannot be found (not a folder, not in the cache while offline,
            unknown id) or do not hold every parameter the model needs.
    """
    try:
        out = load(name_or_path, **kwargs)
    except (OSError, ValueError) as exc:
        raise OSError(
            f"cannot load {kind!r} weights {name_or_path!r}: give a local folder written by save_pretrained "
            f"or a hub id that is cached (HF_HUB_OFFLINE=1 forbids downloads). transformers said: {exc}"
        ) from exc
    if kwargs.get("output_loading_info"):
        model, info = out
        missing = sorted(k for k in info.get("missing_keys", ()) if not k.endswith("masked_spec_embed"))
        if missing:
            raise OSError(f"{kind!r} weights {name_or_path!r} lack {len(missing)} parameters, e.g. {missing[:5]}")
        return model
    return out


def _load_clip(name_or_path: str, device: str | torch.device, dtype: torch.dtype) -> CLIPModel:
    model = _from_pretrained("clip", name_or_path, CLIPModel.from_pretrained, dtype=dtype, output_loading_info=True)
    return model.to(device).eval()


@register_encoder("clip-text")
def load_clip_text(
    name_or_path: str, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, **options: Any,
) -> ClipTextEncoder:
    """CLIP text tower + projection and its tokenizer. Options: ``n_prompt_tokens`` (int, 2)."""
    _check_options("clip-text", options, {"n_prompt_tokens": int})
    clip = _load_clip(name_or_path, device, dtype)
    tokenizer = _from_pretrained("clip-text", name_or_path, AutoTokenizer.from_pretrained)
    return ClipTextEncoder(clip.text_model, clip.text_projection, tokenizer, name_or_path=name_or_path, **options)


@register_encoder("clip-vision")
def load_clip_vision(
    name_or_path: str, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, **options: Any,
) -> ClipVisionEncoder:
    """CLIP vision tower + projection and, when saved with it, its image processor.

    Options: ``n_prompt_tokens`` (int, 2), ``num_frames`` (int, 8).
    """
    _check_options("clip-vision", options, {"n_prompt_tokens": int, "num_frames": int})
    clip = _load_clip(name_or_path, device, dtype)
    try:
        processor = AutoImageProcessor.from_pretrained(name_or_path)
    except (OSError, ValueError):
        logger.info("no image processor with %s; using CLIP's standard resize/crop/normalise", name_or_path)
        processor = None
    return ClipVisionEncoder(
        clip.vision_model, clip.visual_projection, processor, name_or_path=name_or_path, **options,
    )


@register_encoder("wav2vec2")
def load_wav2vec2(
    name_or_path: str, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, **options: Any,
) -> Wav2Vec2AudioEncoder:
    """wav2vec 2.0 (``Wav2Vec2Model``).

    Options: ``prompt_entry`` (``"waveform"`` | ``"features"``), ``n_prompt_segments`` (int, 2),
    ``prompt_segment_samples`` (int, 8000), ``whole_input_samples`` (int, 80000), ``normalize`` (bool, True).
    """
    _check_options("wav2vec2", options, {
        "prompt_entry": str, "n_prompt_segments": int, "prompt_segment_samples": int,
        "whole_input_samples": int, "normalize": bool,
    })
    if options.get("prompt_entry", "waveform") not in ("waveform", "features"):
        raise ConfigError(f"prompt_entry must be 'waveform' or 'features', got {options['prompt_entry']!r}")
    model = _from_pretrained(
        "wav2vec2", name_or_path, Wav2Vec2Model.from_pretrained, dtype=dtype, output_loading_info=True,
    )
    return Wav2Vec2AudioEncoder(model.to(device).eval(), name_or_path=name_or_path, **options)
