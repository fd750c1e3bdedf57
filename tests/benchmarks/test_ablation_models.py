"""The ablation rows built from HCEP's pieces: SMEP + ARPL head (Table 5), learnable CUEP text (Table 6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from openmer.backbones.factory import ProfileConfig
from openmer.benchmarks.ablation_models import SMEPPromptedARPL, smep_prompted_arpl
from openmer.data.clips import ClipDataset
from openmer.methods.hcep import HCEP, HCEPConfig
from openmer.training import TrainConfig, fit
from tests.helpers.encoders import toy_encoders
from tests.helpers.tiny_media import CLASSES, make_tiny_media

KNOWN = CLASSES[:3]


@pytest.fixture
def clips(tmp_path, monkeypatch):
    """Training clips of 3 known classes; two of them lack their transcript."""
    manifest, _ = make_tiny_media(tmp_path, monkeypatch, without_text=["anger_0_0", "joy_1_0"])
    man = manifest.subset([i for i, s in enumerate(manifest) if s.label in KNOWN])
    return ClipDataset(man, [KNOWN.index(s.label) for s in man], ("text", "audio"))


def _config(**options) -> HCEPConfig:
    return HCEPConfig(profile=ProfileConfig(name="toy"), modalities=("text", "audio"), cuep_audio_samples=400,
                      **options)


def _train(method, clips):
    fit(method, clips, None, TrainConfig(epochs=2, optimizer="adam", lr=1e-2, batch_size=8))
    return method


def test_smep_prompted_arpl_trains_prompts_and_head_with_the_arpl_loss(clips):
    model = smep_prompted_arpl(_config(use_cuep=False, use_loss_emo=False, use_loss_osr=False), KNOWN, toy_encoders())
    assert isinstance(model, SMEPPromptedARPL) and model.arpl.config.input_dim == 6 + 5  # toy text + audio dims
    prompt0 = [p.detach().clone() for p in model.hcep.smep.parameters()]
    points0 = model.arpl.reciprocal_points.detach().clone()
    _train(model, clips)
    assert any(not torch.equal(a, b) for a, b in zip(prompt0, model.hcep.smep.parameters(), strict=True))
    assert not torch.equal(points0, model.arpl.reciprocal_points)
    batch = clips.batches(64)[0]
    s = model.score_all([batch])
    assert s.confidence.shape == (len(clips),) and s.probabilities.shape == (len(clips), 3)
    # the features are SMEP-prompted: not those of the unprompted encoders
    _, present = model.hcep.sample_features(batch)
    f_m = model.features(batch)
    assert f_m.shape == (len(clips), 11) and not f_m.requires_grad
    unprompted = toy_encoders()["text"](batch["text"])
    assert not torch.allclose(torch.nn.functional.normalize(unprompted, dim=-1)[present[:, 0]], f_m[present[:, 0], :6])
    # a clip without transcript: its text block is the head's training mean (the feature-head rule)
    absent = ~batch["text_present"]
    assert absent.sum() == 2
    assert torch.allclose(f_m[absent, :6], model.arpl.embedding.mean[:6].expand(2, -1))


@pytest.mark.parametrize("with_labels", [True, False])
def test_learnable_cuep_text_replaces_the_fixed_templates(clips, with_labels):
    torch.manual_seed(0)
    option = "learnable_tokens_with_labels" if with_labels else "learnable_tokens"
    model = HCEP(_config().model_copy(update={"cuep_text": option}), KNOWN, toy_encoders())
    assert model.cuep_text_pos in model.parameter_groups()["cuep"]  # CUEP's prompts, scaled with them
    pos, neg = model.class_text_features()
    assert pos.shape == neg.shape == (3, 6)
    text = model.encoders["text"]
    fixed = text([f"This video is {k}" for k in KNOWN]), text([f"This video is not {k}" for k in KNOWN])
    if with_labels:  # starts at the paper's sentences: template words as tokens, then the class name
        assert model.cuep_text_pos.shape == (3, 8) and model.cuep_text_neg.shape == (4, 8)
        torch.testing.assert_close(pos, fixed[0])
        torch.testing.assert_close(neg, fixed[1])
    else:  # per class, no class name, random start
        assert model.cuep_text_pos.shape == (3, 4, 8) and model._cuep_texts == ["", "", ""]
        assert not torch.allclose(pos, fixed[0], atol=1e-3)
    before = (model.cuep_text_pos.detach().clone(), model.cuep_text_neg.detach().clone())
    _train(model, clips)
    assert not torch.equal(before[0], model.cuep_text_pos) and not torch.equal(before[1], model.cuep_text_neg)
    model.eval()
    s = model.score_all(clips.batches(16))
    assert s.confidence.shape == (len(clips),) and np.all(np.isfinite(s.confidence.numpy()))
    # the fixed-template HCEP with the same seed scores differently: the text prompts are in use
    torch.manual_seed(0)
    paper = _train(HCEP(_config(), KNOWN, toy_encoders()), clips).eval()
    assert not torch.allclose(paper.score_all(clips.batches(16)).confidence, s.confidence)
