"""Frozen encoders with prompt entry points, and the profiles that load them."""

from openmer.backbones.base import Encoder, PromptSpec
from openmer.backbones.factory import (
    ENCODER_KINDS, EncoderSpec, ProfileConfig, load_encoder, load_profile, profile_config, register_encoder,
)

__all__ = [
    "ENCODER_KINDS", "Encoder", "EncoderSpec", "ProfileConfig", "PromptSpec",
    "load_encoder", "load_profile", "profile_config", "register_encoder",
]
