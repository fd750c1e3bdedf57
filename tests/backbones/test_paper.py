"""The ``paper`` profile (CLIP text/vision + wav2vec 2.0) on tiny random models saved to disk.

Round trip: ``save_pretrained`` -> the loaders a hub id goes through -> outputs identical to the
in-memory transformers model's own forward; then the prompt entry points.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

from openmer.backbones import ENCODER_KINDS, EncoderSpec, ProfileConfig, load_encoder
from openmer.backbones.clip import CLIP_MEAN, CLIP_STD, ClipTextEncoder, ClipVisionEncoder
from openmer.backbones.profiles import paper_profile
from openmer.backbones.wav2vec2 import Wav2Vec2AudioEncoder
from openmer.errors import ConfigError

ATOL = 1e-5


@pytest.fixture(scope="module")
def text_enc(tiny_paper_profile: ProfileConfig) -> ClipTextEncoder:
    return load_encoder(tiny_paper_profile.text)


@pytest.fixture(scope="module")
def vision_enc(tiny_paper_profile: ProfileConfig) -> ClipVisionEncoder:
    return load_encoder(tiny_paper_profile.video)


@pytest.fixture(scope="module")
def audio_enc(tiny_paper_profile: ProfileConfig) -> Wav2Vec2AudioEncoder:
    return load_encoder(tiny_paper_profile.audio)


def _pooled(out) -> torch.Tensor:
    """``get_text_features`` / ``get_image_features``: a tensor (transformers 4.x) or an output with
    ``pooler_output`` (5.x)."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _assert_frozen_and_prompt_grad(enc: torch.nn.Module, prompts: torch.Tensor) -> None:
    assert prompts.grad is not None and prompts.grad.abs().sum() > 0
    for name, p in enc.named_parameters():
        assert not p.requires_grad and p.grad is None, name


# --------------------------------------------------------------------------------- profile
def test_paper_profile_names_hcep_encoders():
    cfg = paper_profile()
    assert cfg.name == "paper"
    assert (cfg.text.kind, cfg.text.name_or_path) == ("clip-text", "openai/clip-vit-base-patch16")
    assert (cfg.video.kind, cfg.video.name_or_path) == ("clip-vision", "openai/clip-vit-base-patch16")
    assert (cfg.audio.kind, cfg.audio.name_or_path) == ("wav2vec2", "facebook/wav2vec2-base")
    assert ProfileConfig.from_json(cfg.to_json()) == cfg
    assert {"clip-text", "clip-vision", "wav2vec2"} <= set(ENCODER_KINDS)


def test_encoders_are_frozen(text_enc, vision_enc, audio_enc):
    for enc, modality in ((text_enc, "text"), (vision_enc, "video"), (audio_enc, "audio")):
        enc.train()
        assert enc.modality == modality and not enc.training
        assert all(not p.requires_grad for p in enc.parameters())
        assert not any(m.training for m in enc.modules())
    assert (text_enc.kind, vision_enc.kind, audio_enc.kind) == ("clip-text", "clip-vision", "wav2vec2")
    assert text_enc.embed_dim == vision_enc.embed_dim == 16 and audio_enc.embed_dim == 32


@pytest.mark.parametrize("name", ["openmer-test/no-such-model", "/no/such/folder/clip"])
def test_unknown_weights_raise_naming_them(name):
    from openmer.errors import EncoderNotFound

    with pytest.raises(EncoderNotFound, match=name):
        load_encoder(EncoderSpec(kind="clip-text", name_or_path=name))


def test_bad_options_raise_config_error(tiny_paper_profile):
    spec = tiny_paper_profile.audio
    with pytest.raises(ConfigError, match="n_prompt_tokens"):
        load_encoder(spec.model_copy(update={"options": {"n_prompt_tokens": 2}}))
    with pytest.raises(ConfigError, match="prompt_entry"):
        load_encoder(spec.model_copy(update={"options": {"prompt_entry": "spectrogram"}}))
    with pytest.raises(ConfigError, match="num_frames"):
        load_encoder(tiny_paper_profile.video.model_copy(update={"options": {"num_frames": "8"}}))


# --------------------------------------------------------------------------------- text
TEXTS = ["happy face", "a much sadder expression, 42!", "x"]


def test_text_matches_clip_get_text_features(text_enc, tiny_paper_models):
    clip = tiny_paper_models["clip"]
    enc = text_enc.tokenize(TEXTS)
    assert enc["attention_mask"].min() == 0  # the batch is padded
    with torch.no_grad():
        ref = _pooled(clip.get_text_features(**enc))
    out = text_enc(TEXTS)
    assert out.shape == (3, 16) and out.dtype == torch.float32
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)
    torch.testing.assert_close(text_enc(enc), ref, atol=ATOL, rtol=0)


def test_token_embeddings_are_content_tokens(text_enc, tiny_paper_models):
    tok = tiny_paper_models["tokenizer"]
    emb = text_enc.token_embeddings("facial expression")
    ids = tok("facial expression", add_special_tokens=False)["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["facial</w>", "expression</w>"]
    assert emb.shape == (2, text_enc.width) and not emb.requires_grad
    torch.testing.assert_close(emb, text_enc.text_model.embeddings.token_embedding.weight[ids])
    assert text_enc.prompt_spec().shape == (2, text_enc.width)
    assert text_enc.prompt_spec().kind == "tokens" and text_enc.prompt_spec().whole_input_shape is None


def test_text_prompts_equal_literal_words_after_start_token(text_enc):
    """Prompts = embeddings of "facial expression" <=> those words typed right after SOT."""
    prompts = text_enc.token_embeddings("facial expression")
    with_prompts = text_enc(["happy face", "x"], prompts)
    literal = text_enc(["facial expression happy face", "facial expression x"])
    torch.testing.assert_close(with_prompts, literal, atol=ATOL, rtol=0)


def test_text_prompts_hand_reference(text_enc, tiny_paper_models):
    """Independent computation: CoOp insertion, hand-built causal mask, pooling at EOT + m."""
    tm, proj = tiny_paper_models["clip"].text_model, tiny_paper_models["clip"].text_projection
    m = 3
    prompts = torch.randn(len(TEXTS), m, text_enc.width, generator=_gen(1))
    ids = text_enc.tokenize(TEXTS)["input_ids"]
    eot = (ids == text_enc.eos_token_id).int().argmax(-1)
    with torch.no_grad():
        tokens = tm.embeddings.token_embedding(ids)
        x = torch.cat([tokens[:, :1], prompts, tokens[:, 1:]], dim=1)
        n = x.shape[1]
        x = x + tm.embeddings.position_embedding.weight[:n]
        causal = torch.full((n, n), float("-inf")).triu(1)[None, None]
        for layer in tm.encoder.layers:  # transformers 4.x layers take the causal mask separately
            x = layer(x, None, causal) if "causal_attention_mask" in inspect.signature(layer.forward).parameters \
                else layer(x, causal)
            x = x[0] if isinstance(x, tuple) else x
        x = tm.final_layer_norm(x)
        ref = proj(x[torch.arange(len(TEXTS)), eot + m])
    out = text_enc(TEXTS, prompts)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)
    assert not torch.allclose(out, text_enc(TEXTS), atol=1e-3)


def test_text_prompts_shared_vs_per_sample_and_gradients(text_enc):
    prompts = torch.randn(2, text_enc.width, generator=_gen(2), requires_grad=True)
    shared = text_enc(TEXTS, prompts)
    per_sample = text_enc(TEXTS, prompts.detach().expand(3, -1, -1))
    torch.testing.assert_close(shared, per_sample, atol=ATOL, rtol=0)
    shared.pow(2).sum().backward()
    _assert_frozen_and_prompt_grad(text_enc, prompts)
    with pytest.raises(ValueError, match="batch size"):
        text_enc(TEXTS, prompts.detach().expand(2, -1, -1))
    with pytest.raises(ValueError, match="width"):
        text_enc(TEXTS, torch.zeros(2, text_enc.width + 1))


def test_text_too_long_with_prompts_keeps_end_token(text_enc):
    max_len, m = text_enc.max_length, 4  # tiny model: 24 positions
    long_text = " ".join(["happy"] * 40)
    ids = text_enc.tokenize([long_text])["input_ids"]
    assert ids.shape[1] == max_len and ids[0, -1] == text_enc.eos_token_id
    prompts = torch.randn(m, text_enc.width, generator=_gen(3))
    by_hand = torch.cat([ids[:, : max_len - m - 1], ids[:, -1:]], dim=1)  # SOT + content + EOT
    torch.testing.assert_close(text_enc([long_text], prompts), text_enc(by_hand, prompts), atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match="no room"):
        text_enc(["x"], torch.zeros(max_len - 1, text_enc.width))


# --------------------------------------------------------------------------------- vision
def test_vision_matches_clip_get_image_features(vision_enc, tiny_paper_models):
    pixels = torch.randn(2, 3, 32, 32, generator=_gen(4))
    with torch.no_grad():
        ref = _pooled(tiny_paper_models["clip"].get_image_features(pixel_values=pixels))
    torch.testing.assert_close(vision_enc(pixels), ref, atol=ATOL, rtol=0)


def test_video_is_mean_of_frames(vision_enc):
    video = torch.randn(2, 3, 3, 32, 32, generator=_gen(5))
    prompts = torch.randn(2, 2, vision_enc.width, generator=_gen(6))  # per sample, shared by its frames
    out = vision_enc(video, prompts)
    assert out.shape == (2, vision_enc.embed_dim)
    for i in range(2):
        frames = vision_enc(video[i], prompts[i])  # (N, D)
        torch.testing.assert_close(out[i], frames.mean(0), atol=ATOL, rtol=0)
    assert vision_enc.num_frames == 8


def test_vpt_tokens_enter_after_class_token(vision_enc):
    seen = {}

    def record(module, args, output):
        seen["shape"] = tuple(args[0].shape)

    hook = vision_enc.vision_model.pre_layrnorm.register_forward_hook(record)
    spec = vision_enc.prompt_spec()
    assert spec.kind == "tokens" and spec.shape == (2, vision_enc.width) and spec.whole_input_shape == (3, 32, 32)
    pixels = torch.randn(3, 3, 32, 32, generator=_gen(7))
    prompts = torch.randn(*spec.shape, generator=_gen(8), requires_grad=True)
    try:
        out = vision_enc(pixels, prompts)
    finally:
        hook.remove()
    assert seen["shape"] == (3, 1 + 2 + (32 // 8) ** 2, vision_enc.width)  # CLS + prompts + patches
    assert not torch.allclose(out, vision_enc(pixels), atol=1e-3)
    out.sum().backward()
    _assert_frozen_and_prompt_grad(vision_enc, prompts)


def test_preprocess_with_processor_and_torch_fallback(vision_enc):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(4, 40, 48, 3), dtype=np.uint8)
    assert vision_enc.image_processor is not None
    px = vision_enc.preprocess(frames)
    assert px.shape == (4, 3, 32, 32) and px.dtype == torch.float32
    fallback = ClipVisionEncoder(vision_enc.vision_model, vision_enc.visual_projection, None)
    assert fallback.preprocess(frames).shape == (4, 3, 32, 32)
    flat = np.full((2, 50, 40, 3), 200, dtype=np.uint8)
    expected = (200 / 255 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    for enc in (vision_enc, fallback):
        torch.testing.assert_close(enc.preprocess(flat)[:, :, 5, 7], expected.expand(2, 3), atol=1e-4, rtol=0)


# --------------------------------------------------------------------------------- audio
def _reference_normalise(x: torch.Tensor) -> torch.Tensor:
    rows = Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm([r.numpy() for r in x], attention_mask=None)
    return torch.from_numpy(np.stack(rows)).float()


def test_wav2vec2_matches_model_mean_of_last_hidden_state(audio_enc, tiny_paper_models):
    wave = torch.randn(2, 1200, generator=_gen(9)) * 0.3 + 0.1
    with torch.no_grad():
        ref = tiny_paper_models["wav2vec2"](_reference_normalise(wave)).last_hidden_state.mean(1)
    out = audio_enc(wave)
    assert out.shape == (2, 32)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)
    spec = audio_enc.prompt_spec()
    assert (spec.kind, spec.shape, spec.whole_input_shape) == ("samples", (2, 8000), (80000,))


def _layer_norm_wav2vec2() -> Wav2Vec2AudioEncoder:
    cfg = Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, conv_dim=(16, 16),
        conv_kernel=(10, 3), conv_stride=(5, 2), feat_extract_norm="layer", do_stable_layer_norm=True,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Wav2Vec2Model(cfg)
    return Wav2Vec2AudioEncoder(model, prompt_segment_samples=100)


@pytest.mark.parametrize("variant", ["group-norm", "layer-norm", "feature-prompts"])
def test_wav2vec2_padded_batch_equals_per_sample(variant, audio_enc):
    if variant == "layer-norm":
        enc, prompts = _layer_norm_wav2vec2(), torch.randn(2, 100, generator=_gen(10))
    elif variant == "feature-prompts":
        enc = Wav2Vec2AudioEncoder(audio_enc.model, prompt_entry="features")
        prompts = torch.randn(3, 32, generator=_gen(10))
    else:
        enc, prompts = audio_enc, torch.randn(2, 100, generator=_gen(10))
    lengths = torch.tensor([700, 1200, 955])
    rows = [torch.randn(int(n), generator=_gen(11 + i)) for i, n in enumerate(lengths)]
    batch = torch.zeros(3, 1200)
    for i, r in enumerate(rows):
        batch[i, : len(r)] = r
    for p in (None, prompts):
        out = enc(batch, p, lengths=lengths)
        single = torch.cat([enc(r[None], p) for r in rows])
        torch.testing.assert_close(out, single, atol=ATOL, rtol=0)
    # trailing garbage beyond `lengths` is ignored
    torch.testing.assert_close(enc(batch + 5.0 * (batch == 0), lengths=lengths), enc(batch, lengths=lengths),
                               atol=ATOL, rtol=0)


@pytest.mark.parametrize("entry", ["waveform", "features"])
def test_wav2vec2_prompts_change_output_and_get_gradients(entry, tiny_paper_profile):
    enc = load_encoder(tiny_paper_profile.audio.model_copy(
        update={"options": {"prompt_entry": entry, "prompt_segment_samples": 200, "n_prompt_segments": 3}}
    ))
    spec = enc.prompt_spec()
    assert spec.shape == ((3, 200) if entry == "waveform" else (3, 32))
    assert spec.kind == ("samples" if entry == "waveform" else "tokens")
    wave = torch.randn(2, 900, generator=_gen(12))
    prompts = torch.randn(*spec.shape, generator=_gen(13), requires_grad=True)
    out = enc(wave, prompts)
    assert out.shape == (2, 32)
    assert not torch.allclose(out, enc(wave), atol=1e-4)
    out.pow(2).sum().backward()
    _assert_frozen_and_prompt_grad(enc, prompts)


def test_wav2vec2_bad_lengths(audio_enc):
    with pytest.raises(ValueError, match="lengths"):
        audio_enc(torch.zeros(2, 500), lengths=torch.tensor([500, 501]))
    with pytest.raises(ValueError, match="too short"):
        audio_enc(torch.randn(1, 5))


def test_text_legacy_eos_config_pools_like_transformers(tiny_paper_models):
    """openai/clip-vit-base-patch16 ships ``eos_token_id == 2``: transformers then pools at argmax(ids)."""
    import copy

    clip = copy.deepcopy(tiny_paper_models["clip"])
    clip.text_model.config.eos_token_id = 2
    clip.text_model.eos_token_id = 2
    enc = ClipTextEncoder(clip.text_model, clip.text_projection, tiny_paper_models["tokenizer"])
    assert enc.eos_token_id == tiny_paper_models["tokenizer"].eos_token_id  # the real EOT id, not 2
    batch = enc.tokenize(TEXTS)
    with torch.no_grad():
        ref = _pooled(clip.get_text_features(**batch))
    torch.testing.assert_close(enc(TEXTS), ref, atol=ATOL, rtol=0)
    prompts = enc.token_embeddings("facial expression")
    torch.testing.assert_close(enc(["x"], prompts), enc(["facial expression x"]), atol=ATOL, rtol=0)
