"""HESP: the visual prompt window, the prompt steps, the fused score, training on tiny encoders."""

from __future__ import annotations

import pytest
import torch

from openmer.backbones.factory import ProfileConfig
from openmer.errors import ConfigError, MissingModalityError
from openmer.methods.distance import composite_distance
from openmer.methods.hesp import HESP, HESPConfig, add_visual_prompt, cam_centre, patch_window, supcon_loss
from openmer.training import TrainConfig, fit
from openmer.training.run import build_method
from tests.backbones.tiny import make_tiny_paper_models
from tests.helpers.encoders import toy_encoders
from tests.helpers.run_folders import round_trip

CLASSES = ["anger", "joy", "sadness"]
TOY = ProfileConfig(name="toy")


def toy_hesp(**options) -> HESP:
    torch.manual_seed(0)
    return HESP(HESPConfig(profile=TOY, n_context=2, **options), CLASSES, toy_encoders())


def videos(labels: torch.Tensor, seed: int, size: int = 8, frames: int = 2) -> dict:
    g = torch.Generator().manual_seed(seed)
    v = labels.float()[:, None, None, None, None]
    return {"video": torch.randn(len(labels), frames, 3, size, size, generator=g) * 0.1 + v, "label": labels}


def test_patch_window_centre_and_clamp():
    assert patch_window(224, 0.25, "center") == (84, 84, 56)
    assert patch_window(224, 0.25, (0.0, 1.0)) == (0, 168, 56)  # centre clamped to [28, 196]
    assert patch_window(8, 0.25, "center") == (3, 3, 2)


def test_visual_prompt_changes_the_window_only_by_delta():
    x = torch.randn(2, 3, 3, 8, 8)
    delta = torch.randn(3, 2, 2)
    out = add_visual_prompt(x, delta, 1, 5)
    inside = torch.zeros(8, 8, dtype=torch.bool)
    inside[1:3, 5:7] = True
    torch.testing.assert_close(out[..., ~inside], x[..., ~inside], rtol=0, atol=0)
    torch.testing.assert_close(out[..., 1:3, 5:7] - x[..., 1:3, 5:7], delta.expand(2, 3, 3, 2, 2))


def test_prompt_steps_have_the_configured_norm_and_move_every_negative_prompt_alike():
    m = toy_hesp(prompt_step=50.0)
    delta0, v0 = m.visual_prompt.detach().clone(), m.negative_prompts.detach().clone()
    m.visual_prompt.grad = torch.randn_like(m.visual_prompt)
    m.negative_prompts.grad = torch.randn_like(m.negative_prompts)
    grad_v = m.negative_prompts.grad.clone()
    m.before_optimizer_step()
    assert float((m.visual_prompt.detach() - delta0).norm()) == pytest.approx(50.0, rel=1e-5)
    assert m.visual_prompt.grad is None  # no optimiser step for delta
    moves = m.negative_prompts.detach() - v0
    for k in range(1, len(CLASSES)):
        torch.testing.assert_close(moves[k], moves[0])
    assert float(moves[0].norm()) == pytest.approx(50.0, rel=1e-5)
    torch.testing.assert_close(m.negative_prompts.grad, grad_v)  # kept for the optimiser step


def test_confidence_is_the_max_of_the_fused_logits_and_classes_permute():
    m = toy_hesp()
    m.mark_fitted()
    m.eval()
    batch = videos(torch.tensor([0, 1, 2, 1]), 0)
    z_kn, z_ne, f_v, f_neg = m.logits(batch)
    torch.testing.assert_close(z_ne, composite_distance(f_v, f_neg))
    s = m.score(batch)
    torch.testing.assert_close(s.confidence, ((z_kn + z_ne) / 2).max(1).values)
    assert torch.equal(s.prediction, ((z_kn + z_ne) / 2).argmax(1))
    perm = [2, 0, 1]
    p = HESP(m.config, [CLASSES[i] for i in perm], toy_encoders())
    state = m.trainable_state_dict()
    state["text_context"] = state["text_context"][perm]
    state["cuep.negative.video"] = state["cuep.negative.video"][perm]
    p.load_state_dict(state, strict=False)
    p.mark_fitted()
    p.eval()
    sp = p.score(batch)
    torch.testing.assert_close(sp.confidence, s.confidence)
    torch.testing.assert_close(sp.probabilities, s.probabilities[:, perm])
    probs = toy_hesp(fuse="probs")
    probs.mark_fitted()
    sp = probs.eval().score(batch)
    z_kn, z_ne, _, _ = probs.logits(batch)
    torch.testing.assert_close(sp.probabilities, (torch.softmax(z_kn, 1) + torch.softmax(z_ne, 1)) / 2)


def test_supcon_hand_case():
    f = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 0, 1])
    # anchors 0 and 1: log softmax over {other same, the orthogonal one} at tau = 1; anchor 2 has no positive
    expected = -torch.log(torch.exp(torch.tensor(1.0)) / (torch.exp(torch.tensor(1.0)) + 1.0))
    torch.testing.assert_close(supcon_loss(f, y, 1.0), expected)
    assert float(supcon_loss(f, torch.tensor([0, 1, 2]), 0.5)) == 0.0


def test_five_loss_terms_text_context_switch_and_errors():
    m = toy_hesp()
    out = m.training_step(videos(torch.tensor([0, 1, 2, 0]), 1))
    assert set(out.terms) == {"loss_kn", "loss_supcon", "loss_ne", "loss_neg_text", "loss_h"}
    assert m.align is not None  # toy widths differ (4-d video, 6-d text): the offline-profile case
    frozen_ctx = toy_hesp(train_text_context=False)
    assert "text_context" not in frozen_ctx.parameter_groups()
    with pytest.raises(MissingModalityError, match="reads video"):
        m.score({"text": ["a"], "label": torch.tensor([0])})
    with pytest.raises(MissingModalityError, match=r"samples \[1\]"):
        m.score({**videos(torch.tensor([0, 1]), 2), "video_present": torch.tensor([True, False])})
    emodb = HESPConfig(profile=TOY, modalities=("text", "audio"))
    assert "reads video" in HESP.unavailable(emodb)
    with pytest.raises(ConfigError, match="hesp cannot run here: it reads video"):
        build_method("hesp", CLASSES, profile=TOY, modalities=("text", "audio"), encoders=toy_encoders())


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return make_tiny_paper_models(tmp_path_factory.mktemp("tiny-hesp"))["profile"]


def test_trains_on_the_tiny_clip_profile_and_round_trips(tiny_clip, tmp_path):
    """Paper profile (tiny random CLIP): equal widths, no align; the loss falls, held-out accuracy
    above chance, and a saved model reloads its encoders from the profile with identical scores."""
    torch.manual_seed(0)
    cfg = HESPConfig(profile=tiny_clip, n_context=4, prompt_step=1.0, logit_scale=30.0)
    m = HESP.build(cfg, CLASSES)
    assert m.align is None and m.window == (12, 12, 8)  # 32-px images: an 8-px window
    labels = torch.arange(3).repeat_interleave(4)
    train = [videos(labels, s, size=32) for s in range(2)]
    result = fit(m, train, None, TrainConfig(epochs=8, optimizer="adam", lr=1e-2))
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    held_out = videos(labels, 7, size=32)
    s = m.score_all([held_out])
    assert (s.prediction == labels).float().mean() > 1 / 3 + 0.2
    back = round_trip(m, tmp_path / "hesp", modalities=["video"], profile=tiny_clip).method
    torch.testing.assert_close(back.score_all([held_out]).confidence, s.confidence)


def test_cam_centre_is_the_peak_of_the_upsampled_class_map():
    patches = torch.zeros(2, 4, 4)
    patches[0, 3, 1] = 1.0  # channel 0 peaks in row 3, column 1 of a 4 x 4 map
    row, col = cam_centre(patches, torch.tensor([1.0, 0.0]), 32)
    assert 0.75 < row < 1.0 and 0.125 < col < 0.5
    assert cam_centre(patches, torch.tensor([-1.0, 0.0]), 32) != (row, col)


def test_cam_window_is_chosen_from_the_first_training_frame_and_saved(tiny_clip, tmp_path):
    """The reference's "cam" placement (comparison-methods.md Sec. 1): chosen once in setup, seeded,
    inside the image, kept by save/load; an encoder without patch embeddings is one clear error."""
    labels = torch.arange(3).repeat_interleave(2)
    train = [videos(labels, 0, size=32)]
    torch.manual_seed(0)
    cam = HESP.build(HESPConfig(profile=tiny_clip, n_context=2, patch_position="cam"), CLASSES)
    assert cam.window == (12, 12, 8)  # the centre until setup
    cam.setup(train)
    top, left, p = cam.window
    assert p == 8 and 0 <= top <= 24 and 0 <= left <= 24
    again = HESP.build(HESPConfig(profile=tiny_clip, n_context=2, patch_position="cam"), CLASSES)
    again.setup(train)
    assert again.window == cam.window  # seeded
    fit(cam, train, None, TrainConfig(epochs=1, optimizer="adam", lr=1e-2))
    assert round_trip(cam, tmp_path / "cam", modalities=["video"], profile=tiny_clip).method.window == cam.window
    toy = toy_hesp(patch_position="cam")
    with pytest.raises(ConfigError, match="patch embeddings"):
        toy.setup([videos(labels, 0)])
