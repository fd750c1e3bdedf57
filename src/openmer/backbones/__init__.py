"""Frozen encoders with prompt entry points, and the profiles that load them."""

from openmer.backbones.base import AudioEncoder, Encoder, PromptSpec, TextEncoder, VisionEncoder
from openmer.backbones.factory import (
    ENCODER_KINDS,
    EncoderSpec,
    ProfileConfig,
    load_encoder,
    load_profile,
    profile_config,
    register_encoder,
)

__all__ = [
    "ENCODER_KINDS", "AudioEncoder", "Encoder", "EncoderSpec", "ProfileConfig", "PromptSpec", "TextEncoder",
    "VisionEncoder",
    "load_encoder", "load_profile", "profile_config", "register_encoder",
]
