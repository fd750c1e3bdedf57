"""HCEP (SMEP + CUEP + DPOL) on tiny stand-in encoders: fast checks of the method itself."""

from __future__ import annotations

import pytest
import torch

from openmer.backbones.factory import ProfileConfig
from openmer.errors import ConfigError, MissingModalityError
from openmer.methods.distance import composite_distance
from openmer.methods.hcep import HCEP, HCEPConfig
from openmer.methods.hcep.dpol import blockwise_composite_distance, dpol_probabilities, loss_osr
from tests.helpers.encoders import toy_encoders
from tests.helpers.run_folders import round_trip

CLASSES = ["anger", "joy", "sadness"]
WORDS = {0: "furious rage", 1: "delighted laugh", 2: "tears gloom"}


def make(**options) -> HCEP:
    cfg = HCEPConfig(profile=ProfileConfig(name="toy"), **options)
    return HCEP(cfg, CLASSES, toy_encoders())


def batch(n_per_class: int = 4, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(3).repeat_interleave(n_per_class)
    audio = torch.randn(len(labels), 300, generator=g) * 0.1 + labels[:, None].float()
    video = torch.randn(len(labels), 2, 3, 8, 8, generator=g) * 0.1 + labels[:, None, None, None, None].float()
    return {"text": [WORDS[int(y)] for y in labels], "audio": audio, "audio_lengths": torch.full((len(labels),), 300),
            "video": video, "label": labels}


def test_blockwise_distance_equals_concatenated_when_all_present():
    g = torch.Generator().manual_seed(0)
    f = [torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)]
    p = [torch.randn(2, 3, generator=g), torch.randn(2, 3, generator=g)]
    # with equal block sizes, per-block L2/D_b sums to 2 x the concatenated L2/D
    concat = composite_distance(torch.cat(f, 1), torch.cat(p, 1))
    l2 = ((torch.cat(f, 1)[:, None] - torch.cat(p, 1)[None]) ** 2).sum(-1) / 3
    dot = torch.cat(f, 1) @ torch.cat(p, 1).t()
    assert torch.allclose(blockwise_composite_distance(f, p), l2 - dot, atol=1e-5)
    assert torch.allclose(concat, l2 / 2 - dot, atol=1e-5)
    # a missing block is left out and the sum rescaled
    present = torch.tensor([[True, True], [True, False], [False, True], [True, True]])
    d = blockwise_composite_distance(f, p, present)
    assert torch.allclose(d[1], 2 * composite_distance(f[0][1:2], p[0])[0], atol=1e-5)
    with pytest.raises(ValueError, match="no modality"):
        blockwise_composite_distance(f, p, torch.zeros(4, 2, dtype=torch.bool))


def test_dpol_probabilities_and_loss():
    d_neg, d_pos = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    p = dpol_probabilities(d_neg, d_pos)
    assert torch.allclose(p, torch.softmax(torch.tensor([[3.0, -1.0]]), 1))
    assert float(loss_osr(d_neg, d_pos, torch.tensor([0]))) < float(loss_osr(d_neg, d_pos, torch.tensor([1])))
    with pytest.raises(ValueError, match="differ"):
        dpol_probabilities(torch.zeros(1, 2), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="NaN"):
        dpol_probabilities(torch.tensor([[float("nan"), 0.0]]), torch.zeros(1, 2))


def test_only_prompts_projections_and_cuep_are_trainable_and_get_gradients():
    m = make()
    m.loss(batch()).backward()
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("smep.", "cuep.", "emo_projection.")) for n in trainable)
    assert all(p.grad is not None for n, p in m.named_parameters() if n in trainable)
    assert all(p.grad is None for p in m.encoders.parameters())
    # SMEP text prompt initialised from "facial expression"
    init = m.encoders["text"].token_embeddings("facial expression")
    assert torch.allclose(m.smep.text_prompt.detach(), init)


def test_loss_falls_and_knowns_are_classified():
    torch.manual_seed(0)
    m = make()
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-2)
    b = batch()
    first = m.loss(b).item()
    for _ in range(40):
        opt.zero_grad()
        loss = m.loss(b)
        loss.backward()
        opt.step()
    assert float(loss) < 0.5 * first
    m.mark_fitted()
    m.eval()
    s = m.score(b)
    assert (s.prediction == b["label"]).float().mean() > 0.9
    assert torch.allclose(s.probabilities.sum(1), torch.ones(len(b["label"])))
    assert torch.equal(s.confidence, s.probabilities.max(1).values)


def test_class_features_computed_once_at_inference(monkeypatch):
    m = make()
    m.mark_fitted()
    m.eval()
    calls = {"n": 0}
    audio = m.encoders["audio"]
    original = audio.forward

    def counting(x, prompts=None, lengths=None):
        calls["n"] += 1
        return original(x, prompts=prompts, lengths=lengths)

    monkeypatch.setattr(audio, "forward", counting)
    b = batch()
    m.score(b)
    first = calls["n"]  # CUEP waveforms once + the batch once
    m.score(b)
    m.score(b)
    assert first == 2 and calls["n"] == first + 2  # later batches: only the samples
    m.train()
    m.eval()
    m.score(b)
    assert calls["n"] == first + 3  # a mode switch alone changes no parameter: still cached
    with torch.no_grad():
        m.cuep.positive["audio"].add_(0.1)
    m.score(b)
    assert calls["n"] == first + 5  # a parameter changed: class features recomputed


def _scores_with_cleared_cache(m: HCEP, b: dict) -> torch.Tensor:
    m._class_cache = None
    m._text_cache = None
    return m.score(b).probabilities


@pytest.mark.parametrize("options", [{}, {"text_prompts": "learnable_with_labels"}])
def test_class_features_follow_loaded_parameters(options):
    """Regression: the CUEP class features cached at a validation pass outlived a load_state_dict."""
    m = make(**options)
    m.mark_fitted()
    m.eval()
    b = batch()
    earlier = {k: v.clone() for k, v in m.trainable_state_dict().items()}
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=5e-2)
    m.train()
    for _ in range(3):
        opt.zero_grad()
        m.loss(b).backward()
        opt.step()
    m.eval()
    m.score(b)  # a validation pass caches the last step's class features
    m.load_state_dict(earlier, strict=False)  # what training.fit does to restore the best epoch
    m.eval()
    restored = m.score(b).probabilities
    assert torch.allclose(restored, _scores_with_cleared_cache(m, b), atol=1e-6)


def test_fit_scores_equal_reloaded_scores_when_best_epoch_is_not_last(tmp_path, monkeypatch):
    from openmer.methods.threshold import choose_threshold
    from openmer.training import TrainConfig, engine, fit

    calls = {"n": 0}

    def first_epoch_is_best(metrics, best, select):
        calls["n"] += 1
        return calls["n"] == 1

    monkeypatch.setattr(engine, "_is_better", first_epoch_is_best)
    m = make()
    train, val = [batch(seed=1)], [batch(seed=2)]
    result = fit(m, train, val, TrainConfig(epochs=4, optimizer="adam", lr=5e-2))
    assert result.best_epoch == 1
    b = batch(seed=3)
    after_fit = m.score(b).probabilities
    assert torch.allclose(after_fit, _scores_with_cleared_cache(m, b), atol=1e-6)
    conf = m.score_all(val).confidence.numpy()
    m.threshold = choose_threshold(conf, 0.75)
    back = round_trip(m, tmp_path / "run", modalities=sorted(m.input_encoders()),
                      encoders=toy_encoders()).method
    assert torch.allclose(after_fit, back.score(b).probabilities, atol=1e-6)
    accepted = (back.score_all(val).confidence.numpy() >= back.threshold).mean()
    assert accepted >= 0.75


def test_missing_modalities():
    m = make()
    m.mark_fitted()
    m.eval()
    b = batch()
    full = m.score(b)
    # a clip without audio: its audio block is left out, the others unchanged
    b2 = dict(b, audio_present=torch.tensor([False] + [True] * 11))
    part = m.score(b2)
    assert torch.allclose(part.confidence[1:], full.confidence[1:])
    assert not torch.allclose(part.probabilities[0], full.probabilities[0])
    # the batch lacks video entirely
    no_video = {k: v for k, v in b.items() if k != "video"}
    assert torch.isfinite(m.score(no_video).confidence).all()
    # nothing left for some clip
    bad = dict(b, audio_present=torch.zeros(12, dtype=torch.bool), video_present=torch.zeros(12, dtype=torch.bool),
               text=[""] * 12)
    with pytest.raises(MissingModalityError, match="none of the model's modalities"):
        m.score(bad)


def test_dataset_level_modalities_and_errors():
    m = make(modalities=("text", "audio"))
    assert m.modalities == ("text", "audio") and "video" not in m.encoders
    assert "video" not in m.cuep.positive
    with pytest.raises(ConfigError, match="needs a text encoder"):
        HCEP(HCEPConfig(profile=ProfileConfig(name="toy")), CLASSES, {"audio": toy_encoders()["audio"]})
    with pytest.raises(ConfigError, match="text_block"):
        make(modalities=("audio",), emo_match="text_block")


@pytest.mark.parametrize("options", [
    {"use_smep": False}, {"use_cuep": False}, {"use_loss_emo": False}, {"use_loss_osr": False},
    {"emo_match": "text_block"}, {"n_prompt_tokens": 4}, {"cuep_audio_samples": 200},
])
def test_ablation_switches_train_and_score(options):
    m = make(**options)
    m.loss(batch()).backward()
    m.mark_fitted()
    m.eval()
    s = m.score(batch())
    assert s.confidence.shape == (12,) and torch.isfinite(s.confidence).all()


def test_save_load_gives_identical_scores(tmp_path):
    m = make()
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-2)
    m.loss(batch()).backward()
    opt.step()
    m.mark_fitted()
    m.threshold = 0.4
    back = round_trip(m, tmp_path / "run", modalities=sorted(m.input_encoders()),
                      encoders=toy_encoders()).method
    assert isinstance(back, HCEP) and back.threshold == 0.4
    m.eval()
    a, b = m.score(batch(seed=3)), back.score(batch(seed=3))
    assert torch.allclose(a.probabilities, b.probabilities, atol=1e-6)
    cfg = HCEPConfig.from_json(HCEPConfig(profile=ProfileConfig(name="toy"), modalities=("text", "audio"),
                                          n_prompt_tokens=3, logit_scale=10.0, emo_match="text_block").to_json())
    assert cfg.n_prompt_tokens == 3 and cfg.modalities == ("text", "audio") and cfg.emo_match == "text_block"


def test_center_blocks_uses_training_means():
    m = make(center_blocks=True)
    b = batch()
    m.setup([b])
    with torch.no_grad():
        expected = m.encoders["audio"](b["audio"]).mean(0)
    assert torch.allclose(m.block_mean_audio, expected, atol=1e-5)
    assert "block_mean_audio" in m.trainable_state_dict()
    m.loss(b).backward()
    off = make()
    off.setup([b])
    assert torch.equal(off.block_mean_audio, torch.zeros_like(off.block_mean_audio))


def test_standardize_blocks_divides_by_training_deviations_and_round_trips(tmp_path):
    m = make(standardize_blocks=True)
    b = batch()
    m.setup([b])
    with torch.no_grad():
        f = m.encoders["audio"](b["audio"])
    std = f.std(0, unbiased=False)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))  # a constant dimension is left as it is
    assert torch.allclose(m.block_mean_audio, f.mean(0), atol=1e-5)
    assert torch.allclose(m.block_std_audio, std, atol=1e-5)
    z = m._normalize(f, "audio")
    expected = torch.nn.functional.normalize((f - f.mean(0)) / std, dim=-1)
    assert torch.allclose(z, expected, atol=1e-5)
    m.mark_fitted()
    back = round_trip(m, tmp_path / "run", modalities=sorted(m.input_encoders()),
                      encoders=toy_encoders()).method
    assert torch.equal(back.block_std_audio, m.block_std_audio)
    assert "block_std_audio" not in make().trainable_state_dict()  # older run folders keep loading


def test_block_dropout_drops_sample_blocks_in_training_only():
    m = make(standardize_blocks=True, block_dropout=0.5, use_smep=False)  # no prompts: the blocks are f's
    b = batch()
    m.setup([b])
    m.train()
    pos_a, neg_a = m.class_features()
    pos_b, neg_b = m.class_features()
    assert all(torch.equal(pos_a[k], pos_b[k]) and torch.equal(neg_a[k], neg_b[k]) for k in neg_a)  # never dropped
    torch.manual_seed(0)
    blocks, _ = m.sample_features(b)
    with torch.no_grad():
        f = m.encoders["audio"](b["audio"])
    full = (f - m.block_mean_audio) / m.block_std_audio
    undropped = m._normalize(f, "audio")  # no dropout asked: the reference
    assert not torch.allclose(blocks["audio"], undropped, atol=1e-4)  # some dimensions were dropped
    kept = blocks["audio"] != 0
    assert 0.2 < kept.float().mean() < 0.8
    # the kept dimensions keep their direction: proportional to the standardised feature
    ratio = blocks["audio"][kept] / full[kept]
    assert ratio.min() > 0
    m.eval()
    one, _ = m.sample_features(b)
    two, _ = m.sample_features(b)
    assert torch.allclose(one["audio"], undropped, atol=1e-5) and torch.equal(one["audio"], two["audio"])


def test_one_validation_pass_gives_the_loss_and_the_scores_of_two():
    m = make()
    m.mark_fitted()
    m.eval()
    b = batch(seed=4)
    b["label"] = b["label"].clone()
    b["label"][:2] = -1  # two unknown samples: scored, left out of the loss
    loss, s = m.evaluate_batch(b)
    known = {k: v[2:] for k, v in b.items()}
    with torch.no_grad():
        assert torch.allclose(loss, m.loss(known), atol=1e-6)
    assert torch.allclose(s.probabilities, m.score(b).probabilities, atol=1e-6)


def test_training_logs_what_explains_learning(tmp_path):
    """Issue 10: per epoch, both loss terms, accuracies, logit spread, class-feature cosines, gradient norms."""
    import json

    from openmer.training import TrainConfig, fit

    m = make()
    fit(m, [batch(seed=1)], [batch(seed=2)], TrainConfig(epochs=2, optimizer="adam", lr=1e-2,
                                                        lr_scales={"cuep": 10.0}), run_dir=tmp_path)
    last = json.loads((tmp_path / "metrics.json").read_text())["history"][-1]
    for key in ("loss_emo", "loss_osr", "train_acc", "val_acc", "val_logit_spread", "val_majority_fraction",
                "class_cos_pos_audio", "class_cos_neg_video", "class_cos_pos_text",
                "grad_norm_smep_tokens", "grad_norm_smep_projections", "grad_norm_cuep", "grad_norm_emo_projection"):
        assert key in last, key
    assert abs(last["loss_emo"] + last["loss_osr"] - last["train_loss"]) < 1e-4
    assert all(last[f"grad_norm_{g}"] > 0 for g in ("smep_tokens", "cuep", "emo_projection"))


def test_lr_scales_set_the_learning_rate_of_a_parameter_group():
    from openmer.errors import ConfigError
    from openmer.training import TrainConfig
    from openmer.training.engine import make_optimizer

    m = make()
    opt = make_optimizer(m.parameter_groups(), TrainConfig(lr=1e-3, lr_scales={"cuep": 30.0}))
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs["cuep"] == pytest.approx(3e-2) and lrs["smep_tokens"] == pytest.approx(1e-3)
    with pytest.raises(ConfigError, match="cuepp"):
        make_optimizer(m.parameter_groups(), TrainConfig(lr_scales={"cuepp": 2.0}))


def test_a_collapsed_validation_is_reported(caplog):
    from openmer.training.engine import collapse_warning

    assert collapse_warning({"val_majority_fraction": 0.95, "val_confidence": 0.9}, 5).startswith("one class")
    assert "near-uniform" in collapse_warning({"val_majority_fraction": 0.4, "val_max_probability": 0.23}, 5)
    assert collapse_warning({"val_majority_fraction": 0.4, "val_max_probability": 0.7}, 5) is None


def test_confidence_options_score_the_same_dpol_logits():
    """Issue 16: HCEP's natural scores. The same weights give the same predictions; max p,
    max z and logsumexp z are the paper's, the max-logit and the energy score of z = s (D_neg - D_pos)."""
    b = batch()
    torch.manual_seed(0)
    paper = make().eval()
    paper.mark_fitted()
    logits = paper._streams(b, emo=False, osr=True)[1]
    scores = {}
    for name in ("max_probability", "max_logit", "energy"):
        m = make(confidence=name).eval()
        m.load_state_dict(paper.state_dict())
        m.mark_fitted()
        scores[name] = m.score(b)
    for s in scores.values():
        torch.testing.assert_close(s.prediction, scores["max_probability"].prediction)
    torch.testing.assert_close(scores["max_probability"].confidence, torch.softmax(logits, 1).max(1).values)
    torch.testing.assert_close(scores["max_logit"].confidence, logits.max(1).values)
    torch.testing.assert_close(scores["energy"].confidence, torch.logsumexp(logits, 1))
    assert bool((scores["energy"].confidence >= scores["max_logit"].confidence).all())


def test_scores_and_features_of_a_test_batch_come_from_one_encoder_pass():
    """Issue 13: the media benchmark scores test clips and keeps F_M (t-SNE) without encoding them twice."""
    b = batch()
    torch.manual_seed(0)
    m = make().eval()
    m.mark_fitted()
    m.score(b)  # CUEP class features are computed and cached on the first call
    calls = []
    hook = m.encoders["audio"].register_forward_hook(lambda *_: calls.append(1))
    s, f_m = m.score_all_with_features([b])
    one_pass = len(calls)
    calls.clear()
    separate = (m.score_all([b]), m.features(b))
    hook.remove()
    assert one_pass == 1 and len(calls) == 2
    torch.testing.assert_close(s.confidence, separate[0].confidence)
    torch.testing.assert_close(f_m, separate[1])


def test_post_hoc_scores_read_the_dpol_head():
    """Issue 16: HCEP's head is its DPOL logits z and F_M, so the post-hoc scores of the toolkit apply
    to it; post-hoc max-logit / energy equal its own ``confidence`` options, and ``--score`` selects them."""
    from openmer.methods.posthoc import posthoc_scores

    b = batch()
    torch.manual_seed(0)
    m = make().eval()
    m.mark_fitted()
    out = m.head(b)
    s, f_m = m.score_with_features(b)
    assert out.logits.shape == (len(b["label"]), m.num_classes)
    torch.testing.assert_close(out.logits.argmax(1), s.prediction)
    torch.testing.assert_close(out.features, f_m)
    post = posthoc_scores(m, [b], [b], ["max_logit", "energy", "msp"])
    for name in ("max_logit", "energy", "msp"):
        own = make(**HCEP.score_options(name)).eval()
        own.load_state_dict(m.state_dict())
        own.mark_fitted()
        torch.testing.assert_close(post[name][0], own.score(b).confidence)
        torch.testing.assert_close(post[name][1], s.prediction)
    with pytest.raises(ConfigError, match="max_logit"):
        HCEP.score_options("mahalanobis")
    assert m.score_name == "msp" and make(confidence="energy").score_name == "energy"


def test_learned_block_weights_start_as_the_papers_sum_and_learn():
    """Reading 18: ``block_weights="learned"`` starts equal to Eq. 7-8's plain sum (same logits as
    ``"equal"``), is its own parameter group, gets a gradient, and is logged per block."""
    b = batch()
    torch.manual_seed(0)
    equal = make().eval()
    torch.manual_seed(0)
    learned = make(block_weights="learned").eval()
    learned.load_state_dict(equal.state_dict(), strict=False)
    torch.testing.assert_close(learned._streams(b, emo=False, osr=True)[1], equal._streams(b, emo=False, osr=True)[1])
    assert [p is learned.block_logits for p in learned.parameter_groups()["block_weights"]] == [True]
    learned.train()
    learned.loss(b).backward()
    assert learned.block_logits.grad is not None and bool(learned.block_logits.grad.abs().sum() > 0)
    with torch.no_grad():
        learned.block_logits.copy_(torch.arange(len(learned.modalities), dtype=torch.float32))
    w = learned.diagnostics()
    assert {k for k in w if k.startswith("block_weight_")} == {f"block_weight_{m}" for m in learned.modalities}
    assert abs(sum(v for k, v in w.items() if k.startswith("block_weight_")) - len(learned.modalities)) < 1e-5
    assert "block_weights" not in equal.parameter_groups()


def test_cuep_clips_start_keeps_noise_where_the_encoder_cannot_start_from_inputs():
    """``cuep_init="clips"`` (the CPU presets) on encoders that cannot turn real inputs into whole
    prompts (the toy ones here, the FER face CNN) keeps those modalities' noise start instead of
    failing with a NotImplementedError traceback."""
    m = make(cuep_init="clips")
    before = {k: v.detach().clone() for k, v in m.cuep.state_dict().items()}
    m.setup([batch()])
    after = m.cuep.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    m.loss(batch()).backward()
