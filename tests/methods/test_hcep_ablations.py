"""HCEP ablation options (Tables 5-7, Fig. 4) on tiny stand-in encoders."""

from __future__ import annotations

import pytest
import torch

from openmer.backbones.base import PromptSpec
from openmer.backbones.factory import ProfileConfig
from openmer.errors import ConfigError
from openmer.methods.hcep import HCEPConfig
from openmer.methods.hcep.dpol import blockwise_composite_distance, blockwise_cosine, dpol_probabilities, loss_osr
from openmer.methods.hcep.smep import PromptProjection
from tests.helpers.encoders import toy_encoders
from tests.helpers.run_folders import round_trip
from tests.methods.test_hcep import batch, make

ABLATION_OPTIONS = [
    {"dpol_streams": "negative_only"},
    {"dpol_streams": "negative_only", "use_cuep": False},
    {"text_prompts": "fixed"},
    {"text_prompts": "learnable_with_labels"},
    {"dpol_features": "text_only"},
    {"dpol_features": "multimodal_only"},
    {"dpol_features": "multimodal_only", "use_loss_osr": False},
    {"anchor": "audio"},
    {"anchor": "video"},
    {"anchor": "none"},
    {"anchor": "audio", "n_prompt_tokens": 4},
    {"anchor": "none", "text_prompts": "fixed"},
]


def trained(steps: int = 1, **options):
    torch.manual_seed(0)
    m = make(**options)
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        m.loss(batch()).backward()
        opt.step()
    m.mark_fitted()
    return m.eval()


@pytest.mark.parametrize("options", ABLATION_OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_every_option_trains_every_parameter_and_scores(options):
    m = make(**options)
    m.loss(batch()).backward()
    trainable = {n: p for n, p in m.named_parameters() if p.requires_grad}
    # every learnable tensor of an ablation is used (no dead parameters), encoders stay frozen
    assert trainable and all(p.grad is not None for p in trainable.values()), \
        [n for n, p in trainable.items() if p.grad is None]
    assert all(p.grad is None for p in m.encoders.parameters())
    m.mark_fitted()
    m.eval()
    s = m.score(batch())
    assert s.confidence.shape == (12,) and torch.isfinite(s.confidence).all()
    assert torch.allclose(s.probabilities.sum(1), torch.ones(12))


def test_defaults_are_the_paper_method():
    cfg = HCEPConfig(profile=ProfileConfig(name="toy"))
    assert (cfg.dpol_streams, cfg.text_prompts, cfg.dpol_features, cfg.anchor) == \
        ("negative_and_positive", "learnable", "hybrid", "text")


def test_ablation_options_round_trip_through_json():
    options = {"use_cuep": False, "dpol_streams": "negative_only", "text_prompts": "learnable_with_labels",
               "dpol_features": "multimodal_only", "anchor": "none", "n_prompt_tokens": 8}
    cfg = HCEPConfig(profile=ProfileConfig(name="toy"), **options)
    back = HCEPConfig.from_json(cfg.to_json())
    assert back == cfg and all(getattr(back, k) == v for k, v in options.items())
    with pytest.raises(ConfigError, match="dpol_streams"):
        HCEPConfig.from_dict({"profile": {"name": "toy"}, "dpol_streams": "positive_only"})


# ----------------------------------------------------------------- Table 6 top: DPOL streams
def test_negative_only_logits_are_d_neg():
    d_neg = torch.tensor([[3.0, 1.0]])
    assert torch.allclose(dpol_probabilities(d_neg, None), torch.softmax(d_neg, 1))
    assert torch.allclose(loss_osr(d_neg, None, torch.tensor([0])),
                          torch.nn.functional.cross_entropy(d_neg, torch.tensor([0])))


def test_negative_only_has_no_positive_prompts_and_scores_softmax_d_neg():
    m = trained(dpol_streams="negative_only")
    assert len(m.cuep.positive) == 0 and set(m.cuep.negative) == {"audio", "video"}
    pos, neg = m.class_features()
    assert pos == {} and set(neg) == {"text", "video", "audio"}
    b = batch(seed=1)
    blocks, present = m.sample_features(b)
    d_neg = blockwise_composite_distance([blocks[k] for k in m.modalities], [neg[k] for k in m.modalities], present)
    assert torch.allclose(m.score(b).probabilities, torch.softmax(m.config.osr_logit_scale * d_neg, 1), atol=1e-6)
    r = make(dpol_streams="negative_only", use_cuep=False)
    assert not hasattr(r, "random_pos") and set(r.random_neg) == {"text", "video", "audio"}


# ----------------------------------------------------------------- Table 6 bottom: text prompts
def test_fixed_text_prompts_are_the_init_phrase_and_never_trained():
    m = make(text_prompts="fixed")
    init = m.encoders["text"].token_embeddings("facial expression")
    assert torch.allclose(m.smep.text_prompt, init)
    assert not any(p is m.smep.text_prompt for p in m.parameters())
    assert "smep.text_prompt" in m.trainable_state_dict()  # saved with the checkpoint (a buffer)
    m = trained(steps=3, text_prompts="fixed")
    assert torch.allclose(m.smep.text_prompt, init)
    assert set(m.smep.projections) == {"audio", "video"}  # N_V, N_A still learn from the fixed anchor


def test_learnable_with_labels_prompts_the_class_sentences():
    # anchor "none" + no text block: the text tokens reach the loss only through the class sentences
    plain = make(anchor="none", modalities=("audio",), use_loss_osr=False)
    plain.loss(batch()).backward()
    assert plain.smep.text_prompt.grad is None
    m = make(anchor="none", modalities=("audio",), use_loss_osr=False, text_prompts="learnable_with_labels")
    m.loss(batch()).backward()
    assert m.smep.text_prompt.grad is not None and m.smep.text_prompt.grad.abs().sum() > 0
    # F_T+ is the prompted encoding of the sentences, not the fixed one
    m = make(text_prompts="learnable_with_labels")
    t_pos, t_neg = m.class_text_features()
    enc = m.encoders["text"]
    expected = enc(["This video is anger", "This video is joy", "This video is sadness"], prompts=m.smep.text_prompt)
    assert torch.allclose(t_pos, expected, atol=1e-6)
    assert not torch.allclose(t_pos, enc(["This video is anger", "This video is joy", "This video is sadness"]))
    assert t_neg.shape == t_pos.shape


def test_learnable_with_labels_encodes_sentences_once_at_inference(monkeypatch):
    m = trained(text_prompts="learnable_with_labels")
    text = m.encoders["text"]
    calls = {"n": 0}
    original = text.forward

    def counting(texts, prompts=None):
        calls["n"] += 1
        return original(texts, prompts=prompts)

    monkeypatch.setattr(text, "forward", counting)
    m.score(batch())
    m.score(batch())
    assert calls["n"] == 3  # the class sentences once, then the samples of each batch


# ----------------------------------------------------------------- Table 7: DPOL features
def test_text_only_uses_the_text_block_alone():
    m = make(dpol_features="text_only")
    assert m.modalities == ("text",) and set(m.encoders) == {"text"}
    assert not hasattr(m, "emo_projection") and len(m.cuep.positive) == 0
    m = trained(dpol_features="text_only")
    b = batch(seed=2)
    other = dict(b, audio=torch.randn_like(b["audio"]), video=torch.randn_like(b["video"]))
    assert torch.equal(m.score(b).probabilities, m.score(other).probabilities)
    assert m.features(b).shape == (12, m.block_dims["text"])


def test_blockwise_cosine_is_cosine_of_concatenation():
    g = torch.Generator().manual_seed(0)
    f = [torch.randn(5, 3, generator=g), torch.randn(5, 4, generator=g)]
    p = [torch.randn(2, 3, generator=g), torch.randn(2, 4, generator=g)]
    normalize = torch.nn.functional.normalize
    full = normalize(torch.cat(f, 1), dim=1) @ normalize(torch.cat(p, 1), dim=1).t()
    assert torch.allclose(blockwise_cosine(f, p), full, atol=1e-6)
    present = torch.tensor([[True, True], [True, False], [False, True], [True, True], [True, True]])
    c = blockwise_cosine(f, p, present)
    one = torch.nn.functional.normalize(f[0][1:2], dim=1) @ torch.nn.functional.normalize(p[0], dim=1).t()
    assert torch.allclose(c[1], one[0], atol=1e-6)
    assert torch.allclose(c[[0, 3, 4]], full[[0, 3, 4]], atol=1e-6)


def test_multimodal_only_compares_f_m_with_f_m_plus():
    m = trained(dpol_features="multimodal_only", use_loss_osr=False)
    assert not hasattr(m, "emo_projection")
    b = batch(seed=1)
    blocks, present = m.sample_features(b)
    pos, _ = m.class_features()
    cos = blockwise_cosine([blocks[k] for k in m.modalities], [pos[k] for k in m.modalities], present)
    assert torch.allclose(m.score(b).probabilities, torch.softmax(m.config.logit_scale * cos, 1), atol=1e-6)
    # negative-only OSR stream keeps the positives for L_emo's F_M+
    n = make(dpol_features="multimodal_only", dpol_streams="negative_only")
    assert set(n.cuep.positive) == {"audio", "video"}


# ----------------------------------------------------------------- Fig. 4: anchor
def test_prompt_projection_shapes():
    per_row = PromptProjection((2, 8), (2, 40))
    assert per_row.per_token and per_row(torch.randn(2, 8)).shape == (2, 40)
    flat = PromptProjection((3, 8, 8), (4, 8))
    assert not flat.per_token and flat(torch.randn(3, 8, 8)).shape == (4, 8)
    assert flat.linear.in_features == 192 and flat.linear.out_features == 32


@pytest.mark.parametrize(("anchor", "own", "projected"), [
    ("text", set(), {"audio", "video"}),
    ("audio", {"audio"}, {"text", "video"}),
    ("video", {"video"}, {"text", "audio"}),
    ("none", {"audio", "video"}, set()),
])
def test_anchor_decides_what_is_learnable_and_projected(anchor, own, projected):
    m = make(anchor=anchor, n_prompt_tokens=3)
    assert set(m.smep.own_prompts) == own and set(m.smep.projections) == projected
    assert (m.smep.text_prompt is None) == (anchor in ("audio", "video"))
    prompts = m.smep.prompts()
    specs = {k: e.prompt_spec() for k, e in m.encoders.items()}
    assert prompts["text"].shape == (3, m.text_width)  # m text tokens whatever the anchor
    assert prompts["audio"].shape == specs["audio"].shape and prompts["video"].shape == specs["video"].shape
    if anchor in ("audio", "video"):
        assert prompts[anchor] is m.smep.own_prompts[anchor]


def test_anchor_none_prompts_are_independent():
    m = make(anchor="none", modalities=("text", "audio"), use_loss_emo=False)
    m.smep.own_prompts["audio"].requires_grad_(False)
    m.loss(batch()).backward()
    assert m.smep.text_prompt.grad is not None  # text tokens learn from the text block alone
    with torch.no_grad():
        before = m.smep.prompts()["audio"].clone()
        m.smep.text_prompt.add_(1.0)
        assert torch.equal(m.smep.prompts()["audio"], before)


@pytest.mark.parametrize(("options", "match"), [
    ({"anchor": "video", "modalities": ("text", "audio")}, "anchor='video' needs the video"),
    ({"anchor": "audio", "dpol_features": "text_only"}, "anchor='audio' needs the audio"),
    ({"anchor": "audio", "text_prompts": "fixed"}, "text_prompts='fixed' needs anchor"),
    ({"use_smep": False, "anchor": "none"}, "need use_smep=True"),
    ({"use_smep": False, "text_prompts": "learnable_with_labels"}, "need use_smep=True"),
    ({"dpol_features": "text_only", "modalities": ("audio",)}, "text_only' needs the text"),
])
def test_incompatible_options_are_config_errors(options, match):
    with pytest.raises(ConfigError, match=match):
        make(**options)


def test_anchor_without_prompt_entry_is_a_config_error():
    enc = toy_encoders()
    enc["audio"].prompt_spec = lambda: PromptSpec("none", (0,), (400,), "no prompts")
    from openmer.methods.hcep import HCEP

    with pytest.raises(ConfigError, match="prompt entry"):
        HCEP(HCEPConfig(profile=ProfileConfig(name="toy"), anchor="audio"), ["a", "b"], enc)


@pytest.mark.parametrize("options", [
    {"dpol_streams": "negative_only"}, {"anchor": "audio"}, {"anchor": "none", "text_prompts": "fixed"},
    {"text_prompts": "learnable_with_labels", "dpol_features": "multimodal_only"},
])
def test_save_load_gives_identical_scores(tmp_path, options):
    m = trained(**options)
    back = round_trip(m, tmp_path / "run", modalities=sorted(m.input_encoders()),
                      encoders=toy_encoders()).method
    a, b = m.score(batch(seed=3)), back.score(batch(seed=3))
    assert torch.allclose(a.probabilities, b.probabilities, atol=1e-6)
