"""LPL* (logit prototypes): fusion weights, loss, prototypes after finalize, calibration, the stepwise rule."""

from __future__ import annotations

import functools

import pytest
import torch

from openmer.data.tensors import FeatureDataset
from openmer.errors import ConfigError
from openmer.methods.lpl import (
    LPL,
    LPLConfig,
    calibrated_scores,
    dc_distance,
    entropy_weights,
    fuse_logits,
    l2_distance,
    lpl_loss,
)
from openmer.metrics import auroc
from openmer.training import TrainConfig, fit
from tests.helpers.features import blobs

BLOCKS = [["a", 4], ["b", 4]]


def test_entropy_weights_sum_to_one_and_favour_the_decided_block():
    anchors = 5.0 * torch.eye(3).repeat(2, 1, 1)
    decided = torch.tensor([[5.0, 0.0, 0.0]])  # on anchor 0
    undecided = torch.tensor([[1.0, 1.0, 1.0]])  # equidistant from every anchor: entropy log 3
    w = entropy_weights(torch.stack([undecided, decided]), anchors)
    torch.testing.assert_close(w.sum(1), torch.ones(1))
    assert float(w[0, 0]) < float(w[0, 1])
    # the reference: q = L1(1 / D2), w = softmax(-entropy)
    q = torch.nn.functional.normalize(1 / l2_distance(undecided, anchors[0]), p=1, dim=1)
    assert float(-(q * q.log()).sum()) == pytest.approx(float(torch.log(torch.tensor(3.0))), abs=1e-6)
    # an absent block gets weight 0 and the fused logits are the other block's
    w2 = entropy_weights(torch.stack([undecided, decided]), anchors, present=torch.tensor([[False, True]]))
    assert w2.tolist() == [[0.0, 1.0]]
    torch.testing.assert_close(fuse_logits(torch.stack([undecided, decided]), w2), decided)


def test_dc_distance_and_loss_equal_the_reference():
    g = torch.Generator().manual_seed(0)
    logits, anchors, y = torch.randn(6, 3, generator=g), 5 * torch.eye(3), torch.tensor([0, 1, 2, 0, 1, 2])
    ref_dc = (torch.norm(logits[:, None] - anchors[None], 2, 2) + 1
              - torch.cosine_similarity(logits[:, None], anchors[None], 2))
    torch.testing.assert_close(dc_distance(logits, anchors), ref_dc)
    blocks = torch.stack([dc_distance(logits + 0.1, anchors), dc_distance(logits - 0.1, anchors)])
    # reference JointLoss: tuplet on the fused distances, anchor = mean true distance, per block
    d = ref_dc
    true = d.gather(1, y[:, None])
    others = torch.stack([d[i][[j for j in range(3) if j != y[i]]] for i in range(6)])
    tuplet = torch.log(1 + torch.exp(-others + true).sum(1)).mean()
    anchor = sum(b.gather(1, y[:, None]).mean() for b in blocks)
    torch.testing.assert_close(lpl_loss(d, blocks, y, weight_anchor=0.1), tuplet + 0.1 * anchor)


def test_confidence_rises_with_reliability_and_disagreement_is_measured():
    anchors = 5.0 * torch.eye(3)
    fused = torch.tensor([[4.0, 1.0, 0.0]])
    blocks = torch.stack([fused, fused])
    confs = []
    for r in (0.5, 1.0, 2.0):
        probs, pred, var = calibrated_scores(fused, anchors, blocks, anchors.repeat(2, 1, 1), torch.full((2, 3), r))
        confs.append(float(probs.max()))
        assert int(pred) == 0 and float(var) == pytest.approx(0.0, abs=1e-12)  # agreeing blocks
    assert confs[0] < confs[1] < confs[2]
    # block 1 at its class anchor (reliable), block 2 far from it: L1-normalised reliabilities ~ (1, 0)
    blocks = torch.stack([torch.tensor([[5.0, 0.0, 0.0]]) + 1e-3, torch.tensor([[-50.0, 0.0, 0.0]])])
    _, _, var = calibrated_scores(fused, anchors, blocks, anchors.repeat(2, 1, 1), torch.ones(2, 3))
    assert float(var) > 0.4  # the maximum is 1/M = 0.5


@functools.cache
def _trained(**options) -> LPL:
    x, y = blobs(seed=0, unknown="centre")
    k = y >= 0
    torch.manual_seed(0)
    m = LPL(LPLConfig(input_dim=8, dropout=0.0, blocks=BLOCKS, **options), ["a", "b", "c"])
    result = fit(m, FeatureDataset(x[k], y[k]), None, TrainConfig(epochs=15, optimizer="adam", lr=3e-3, batch_size=32))
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]
    return m


def test_finalize_sets_anchors_to_the_training_class_means_and_radii_to_mean_distances():
    m = _trained()
    x, y = blobs(seed=0, unknown="centre")
    k = y >= 0
    with torch.no_grad():
        _, logits, _, _ = m.streams({"features": torch.as_tensor(x[k])})
    labels = torch.as_tensor(y[k])
    for c in range(3):
        torch.testing.assert_close(m.block_anchors[:, c], logits[:, labels == c].mean(1), atol=1e-5, rtol=0)
        for b in range(2):
            expected = dc_distance(logits[b][labels == c], m.block_anchors[b])[:, c].mean()
            torch.testing.assert_close(m.radii[b, c], expected, atol=1e-5, rtol=0)
    assert not torch.allclose(m.anchors, 5.0 * torch.eye(3))  # moved from the training anchors


def test_trains_on_blobs_scores_every_sample_and_rejects_between_the_classes():
    m = _trained()
    xt, yt = blobs(seed=0, sample_seed=5, unknown="centre")
    s = m.score_all(FeatureDataset(xt, yt).batches())
    assert s.confidence.shape == (len(yt),)  # none dropped
    assert (s.prediction.numpy()[yt >= 0] == yt[yt >= 0]).mean() > 0.9
    assert auroc(s.confidence.numpy(), yt) > 0.9


def test_disagreeing_blocks_are_rejected_and_the_threshold_is_04_at_two_blocks():
    m = _trained()
    x = torch.as_tensor(blobs(seed=0, unknown="centre")[0][:2])  # two class-0 samples
    mixed = x.clone()
    mixed[1, 4:] = 1e3 * torch.sign(x[1, 4:] - m.embedding.mean[4:])  # block b far from everything
    s = m.score({"features": mixed})
    with torch.no_grad():
        _, logits, fused, _ = m.streams({"features": mixed})
    _, _, var = calibrated_scores(fused, m.anchors, logits, m.block_anchors, m.radii)
    assert float(var[1]) >= 0.4 and float(var[0]) < 0.4  # 0.8 / M with M = 2: the reference's 0.4
    assert float(s.confidence[1]) == 0.0 and float(s.confidence[0]) > 0.0
    keep = LPL(m.config.model_copy(update={"unreliable": "keep"}), m.known_classes)
    keep.load_state_dict(m.state_dict())
    keep.eval()
    assert float(keep.score({"features": mixed}).confidence[1]) > 0.0


def test_blocks_must_sum_to_the_input_width():
    with pytest.raises(ConfigError, match="do not sum"):
        LPLConfig.from_dict({"input_dim": 8, "blocks": [["a", 4], ["b", 3]]})
    with pytest.raises(ConfigError, match="distinct"):
        LPLConfig.from_dict({"input_dim": 8, "blocks": [["a", 4], ["a", 4]]})
    two = LPL(LPLConfig(input_dim=8, blocks=BLOCKS), ["a", "b"])
    assert two.embedding.mean.shape == (8,)  # the whole vector's training mean (inference fills absent blocks with it)
    one = LPL(LPLConfig(input_dim=6), ["a", "b"])
    assert len(one.classifiers) == 1 and one.config.block_layout() == (("features", 6),)
