"""Open-VCLIP on cached features: zero-shot weights, interpolation, SWA, patching, benchmark pickup."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from openmer.benchmarks.runner import FeatureBenchmarkConfig, run_feature_benchmark
from openmer.data.tensors import FeatureDataset
from openmer.errors import ConfigError
from openmer.methods import list_methods
from openmer.methods.openvclip import OpenVCLIP, OpenVCLIPConfig, interpolate, zero_shot_weights
from openmer.protocol import GroupPartition, make_protocol
from openmer.training import TrainConfig, fit
from tests.helpers.encoders import ToyText
from tests.helpers.features import sphere_blobs
from tests.helpers.run_folders import round_trip

CLASSES = ["anger", "joy", "sadness"]


def make(d: int = 8, **options) -> OpenVCLIP:
    torch.manual_seed(0)
    cfg = OpenVCLIPConfig(input_dim=d, blocks=(("video", d),), **options)
    return OpenVCLIP.build(cfg, CLASSES, text_encoder=ToyText(dim=d))


def test_zero_shot_weights_are_unit_template_means():
    text = ToyText(dim=5)
    w = zero_shot_weights(text, CLASSES, ("a {}.", "the {} face"))
    torch.testing.assert_close(w.norm(dim=1), torch.ones(3))
    e = F.normalize(text(["a joy.", "the joy face"]), dim=-1).mean(0)
    torch.testing.assert_close(w[1], F.normalize(e, dim=0))


def test_with_theta_at_zero_shot_the_scores_are_zero_shot_clip():
    m = make()
    m.mark_fitted()
    m.eval()
    x = torch.randn(6, 8)
    expected = torch.softmax(100.0 * F.normalize(x, dim=-1) @ m.class_weights.t(), dim=1)
    s = m.score({"features": x})
    torch.testing.assert_close(s.probabilities, expected)
    torch.testing.assert_close(s.confidence, expected.max(1).values)


def test_interpolation_ends_and_patched_test_weights():
    theta0, theta = torch.eye(3), torch.randn(3, 3)
    torch.testing.assert_close(interpolate(theta0, theta, 0.0), theta)
    torch.testing.assert_close(interpolate(theta0, theta, 1.0), theta0)
    m = make(patch_ratio=0.5)
    with torch.no_grad():
        m.theta.copy_(torch.randn(8, 8))
    torch.testing.assert_close(m.test_theta(), 0.5 * torch.eye(8) + 0.5 * m.theta.detach())


def test_swa_is_the_mean_of_theta_from_the_start_epoch_on():
    m = make(swa_start_epoch=2)
    recorded = []
    for epoch in range(4):
        with torch.no_grad():
            m.theta.copy_(torch.randn(8, 8))
        m.on_epoch_end(epoch, 4)
        if epoch >= 1:
            recorded.append(m.theta.detach().clone())
    assert int(m.swa_count) == 3
    torch.testing.assert_close(m.test_theta(), 0.5 * torch.eye(8) + 0.5 * torch.stack(recorded).mean(0))


def test_interpolated_term_takes_its_gradient_at_theta_alpha():
    """With alpha = 0 the two terms coincide: the gradient is (1 + weight_interp) x that of CE(f_theta)."""
    m = make(alpha_max=0.0, weight_interp=0.5)
    batch = {"features": torch.randn(10, 8), "label": torch.randint(0, 3, (10,))}
    out = m.training_step(batch)
    torch.testing.assert_close(out.terms["loss_interp"], 0.5 * out.terms["loss_ce"])
    out.total.backward()
    g_total = m.theta.grad.clone()
    m.theta.grad = None
    m.training_step(batch).terms["loss_ce"].backward()
    torch.testing.assert_close(g_total, 1.5 * m.theta.grad)


def test_unavailable_reasons_and_errors():
    cfg = OpenVCLIPConfig(input_dim=8, blocks=(("video", 4), ("audio", 4)))
    assert "text encoder" in OpenVCLIP.unavailable(cfg)
    assert "not one embedding space" in OpenVCLIP.unavailable(cfg, text_encoder=ToyText(dim=6))
    assert OpenVCLIP.unavailable(cfg, text_encoder=ToyText(dim=4)) is None
    no_video = OpenVCLIPConfig(input_dim=8, blocks=(("text", 4), ("audio", 4)))
    assert "'video' feature block" in OpenVCLIP.unavailable(no_video, text_encoder=ToyText(dim=4))
    with pytest.raises(ConfigError, match="'video' feature block"):
        OpenVCLIP(no_video, CLASSES)
    with pytest.raises(ConfigError, match="not one embedding space"):
        OpenVCLIP.build(cfg, CLASSES, text_encoder=ToyText(dim=6))
    bare = OpenVCLIP(cfg, CLASSES)  # no zero-shot weights
    with pytest.raises(ConfigError, match="zero-shot class weights"):
        fit(bare, FeatureDataset(np.zeros((6, 8), np.float32), np.arange(6) % 3), None, TrainConfig(epochs=1))


def test_learns_on_held_out_data_uses_only_the_video_block_and_round_trips(tmp_path):
    x, y = sphere_blobs(seed=3)
    xt, yt = sphere_blobs(seed=3, sample_seed=4)
    noise = np.random.default_rng(0).normal(size=(len(x), 4)).astype(np.float32)
    k = y >= 0
    torch.manual_seed(0)
    cfg = OpenVCLIPConfig(input_dim=12, blocks=(("video", 8), ("audio", 4)), templates=("{}",), logit_scale=10.0)
    m = OpenVCLIP.build(cfg, CLASSES, text_encoder=ToyText(dim=8))
    train = FeatureDataset(np.concatenate([x, noise], 1)[k], y[k])
    fit(m, train, None, TrainConfig(epochs=15, optimizer="adam", lr=0.1, batch_size=32))
    test_x = np.concatenate([xt, noise[: len(xt)]], 1)
    s = m.score_all(FeatureDataset(test_x[yt >= 0], yt[yt >= 0]).batches())
    assert (s.prediction.numpy() == yt[yt >= 0]).mean() > 0.9
    shuffled = test_x.copy()
    shuffled[:, 8:] = np.random.default_rng(1).normal(size=(len(xt), 4))  # the audio block is not read
    s2 = m.score_all(FeatureDataset(shuffled[yt >= 0], yt[yt >= 0]).batches())
    torch.testing.assert_close(s.confidence, s2.confidence)
    back = round_trip(m, tmp_path / "ovc", modalities=["video"]).method  # no text encoder: weights saved
    torch.testing.assert_close(back.class_weights, m.class_weights)
    torch.testing.assert_close(back.score_all(FeatureDataset(test_x, yt).batches()).confidence,
                               m.score_all(FeatureDataset(test_x, yt).batches()).confidence)


def test_the_feature_benchmark_runs_it_with_a_text_encoder_and_leaves_it_out_without():
    assert "openvclip" in list_methods(consumes="features")
    x, y = sphere_blobs(seed=0, k=4, n=30, d=6)
    labels = [["a", "b", "c", "d"][i] for i in np.where(y >= 0, y, 0)][: 4 * 30]
    feats = {"video": x[: 4 * 30], "audio": np.random.default_rng(0).normal(size=(4 * 30, 2))}
    groups = [f"s{i % 6}" for i in range(4 * 30)]
    part = GroupPartition(("s0", "s1", "s2", "s3"), ("s4",), ("s5",))
    protocol = make_protocol("toy", ["a", "b", "c", "d"], groups, [3], n_splits=1, seed=0, partition=part)
    cfg = FeatureBenchmarkConfig(dataset="toy", methods=("openvclip",), modality_sets=(("video", "audio"), ("audio",)),
                                 posthoc=("energy",),
                                 train=TrainConfig(epochs=2, optimizer="adam", lr=1e-2, batch_size=16))
    result = run_feature_benchmark(cfg, feats, labels, groups, protocol, text_encoder=ToyText(dim=6))
    assert [(r["method"], r["modalities"]) for r in result.records] == [
        ("openvclip", "video+audio"), ("openvclip[energy]", "video+audio")]
    assert "'video' feature block" in result.meta["left_out"]["openvclip audio"]
    assert result.records[0]["score"] == "msp" and 0 <= result.records[0]["oscr"] <= result.records[0]["auroc"] <= 1
    without = run_feature_benchmark(cfg, feats, labels, groups, protocol)
    assert without.records == [] and set(without.meta["left_out"]) == {"openvclip video+audio", "openvclip audio"}


def test_runs_on_the_tiny_random_paper_profile(tmp_path):
    """CLIP text + vision (tiny, random): the video features and the class embeddings share one
    width, so Open-VCLIP is available and trains on the tower's cached clip features."""
    from openmer.backbones.factory import load_profile
    from tests.backbones.tiny import make_tiny_paper_models

    encoders = load_profile(make_tiny_paper_models(tmp_path)["profile"], modalities=("text", "video"))
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(3).repeat_interleave(6)
    clips = torch.randn(len(labels), 2, 3, 32, 32, generator=g) * 0.1 + labels.float()[:, None, None, None, None]
    with torch.no_grad():
        feats = encoders["video"](clips).numpy()
    cfg = OpenVCLIPConfig(input_dim=feats.shape[1], blocks=(("video", feats.shape[1]),))
    assert OpenVCLIP.unavailable(cfg, text_encoder=encoders["text"]) is None
    m = OpenVCLIP.build(cfg, CLASSES, text_encoder=encoders["text"])
    result = fit(m, FeatureDataset(feats, labels.numpy()), None, TrainConfig(epochs=5, optimizer="adam", lr=0.05))
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    s = m.score_all(FeatureDataset(feats, labels.numpy()).batches())
    assert bool(torch.isfinite(s.confidence).all()) and s.probabilities.shape == (len(labels), 3)
