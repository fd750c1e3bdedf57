"""CPN* (one-versus-all prototypes): Dempster-Shafer probabilities, confidence limits, warm-up, loss, training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from openmer.data.tensors import FeatureDataset
from openmer.methods.cpn import (
    CPN,
    CPNConfig,
    cpn_ova_loss,
    dempster_shafer_probabilities,
    ova_confidence,
    ova_logits,
    prototype_loss,
    warmup_temperature,
)
from openmer.methods.distance import squared_euclidean as squared_distance
from openmer.metrics import auroc
from openmer.training import TrainConfig, fit
from tests.helpers.features import blobs


def test_probabilities_with_unknown_sum_to_one_and_match_the_sigmoid_evidence():
    logits = torch.randn(6, 4, generator=torch.Generator().manual_seed(0)) * 3
    p = dempster_shafer_probabilities(logits)
    torch.testing.assert_close(p.sum(1), torch.ones(6))
    e = logits.exp()
    torch.testing.assert_close(p[:, :4], e / (1 + e.sum(1, keepdim=True)))
    torch.testing.assert_close(p[:, 4], 1 / (1 + e.sum(1)))


def test_confidence_limits_far_and_at_a_prototype():
    protos = torch.tensor([[0.0, 0.0], [5.0, 5.0]])
    thresholds = torch.tensor([50.0, 50.0])
    far = ova_logits(squared_distance(torch.tensor([[100.0, -100.0]]), protos), thresholds, 3.0)
    at = ova_logits(squared_distance(torch.tensor([[0.0, 0.0]]), protos), thresholds, 3.0)
    assert float(dempster_shafer_probabilities(far)[0, -1]) == pytest.approx(1.0)
    assert float(ova_confidence(far)) == pytest.approx(0.0, abs=1e-6)
    assert float(ova_confidence(at)) == pytest.approx(1.0, abs=1e-6)
    # m = 0 reduces the score to max_k p(k|x)
    logits = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    expected = dempster_shafer_probabilities(logits)[:, :3].max(1).values
    torch.testing.assert_close(ova_confidence(logits, 0.0).float(), expected)


def test_warmup_schedule_is_the_references_on_its_200_epochs():
    # reference: min(epoch / 40 * T, T) with 1-based epochs; 40 / 200 = 0.2
    assert [warmup_temperature(e, 200, 3.0, 0.2) for e in (0, 19, 39, 40, 199)] == pytest.approx(
        [3.0 / 40, 3.0 * 20 / 40, 3.0, 3.0, 3.0])
    assert warmup_temperature(0, 60, 3.0, 0.0) == 3.0  # no warm-up
    m = CPN(CPNConfig(input_dim=4, temperature=2.0, warmup_fraction=0.5), ["a", "b"])
    m.on_epoch_start(0, 10)
    assert m.train_temperature == pytest.approx(0.4)
    m.on_epoch_start(7, 10)
    assert m.train_temperature == 2.0


def test_ova_loss_terms_equal_the_reference_formulas():
    g = torch.Generator().manual_seed(2)
    z, protos, y = torch.randn(5, 3, generator=g), torch.rand(4, 3, generator=g), torch.tensor([0, 1, 2, 3, 0])
    logits = ova_logits(squared_distance(z, protos), torch.ones(4), 3.0)
    one_hot = F.one_hot(y, 4).float()
    ova = F.binary_cross_entropy_with_logits(logits, one_hot) * 4
    ce = F.cross_entropy(torch.cat([logits, torch.zeros(5, 1)], 1), y)
    nz, nc = F.normalize(z, dim=1), F.normalize(protos, dim=1)
    pl = ((nz[:, None] - nc[None]) ** 2).sum(-1)[torch.arange(5), y].sum() / 2 / 5
    torch.testing.assert_close(prototype_loss(z, protos, y, normalized=True), pl)
    got = cpn_ova_loss(logits, z, protos, y, alpha=0.9, weight_pl=0.05, pl_normalized=True)
    torch.testing.assert_close(got, 0.9 * ova + 0.1 * ce + 0.05 * pl)
    assert squared_distance(z, protos).allclose(((z[:, None] - protos[None]) ** 2).sum(-1), atol=1e-5)


@pytest.mark.parametrize("training", ["ova", "dce"])
def test_trains_on_blobs_and_rejects_samples_between_the_classes(training):
    x, y = blobs(seed=0, unknown="centre")
    xt, yt = blobs(seed=0, sample_seed=5, unknown="centre")
    k = y >= 0
    torch.manual_seed(0)
    m = CPN(CPNConfig(input_dim=8, dropout=0.0, training=training), ["a", "b", "c"])
    result = fit(m, FeatureDataset(x[k], y[k]), None, TrainConfig(epochs=15, optimizer="adam", lr=3e-3, batch_size=32))
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]
    s = m.score_all(FeatureDataset(xt, yt).batches())
    assert (s.prediction.numpy()[yt >= 0] == yt[yt >= 0]).mean() > 0.9
    assert auroc(s.confidence.numpy(), yt) > 0.9
    assert ("thresholds" in dict(m.named_parameters())) == (training == "ova")
    if training == "ova":
        assert bool(((s.confidence >= 0) & (s.confidence <= 1)).all()) and m.score_name == "ova"


def test_mode_defaults_and_config_round_trip():
    assert (CPNConfig(input_dim=3).temperature, CPNConfig(input_dim=3).pl_normalized) == (3.0, True)
    dce = CPNConfig(input_dim=3, training="dce")
    assert (dce.temperature, dce.pl_normalized) == (2.0, False)
    cfg = CPNConfig(input_dim=5, training="dce", temperature=1.5, alpha=0.8, weight_pl=0.01, pl_normalized=True,
                    margin=0.0, warmup_fraction=0.1)
    assert CPNConfig.from_json(cfg.to_json()) == cfg


def test_far_samples_keep_their_order_instead_of_tying_at_zero():
    logits = torch.tensor([[-100.0, -120.0], [-110.0, -130.0], [-300.0, -300.0]])
    reference = 1 - 1 / (1 + logits.exp().sum(1))  # the reference's float32 1 - p(unk): all exactly 0
    assert torch.equal(reference, torch.zeros(3))
    conf = ova_confidence(logits)
    assert conf.dtype == torch.float64 and bool((conf[:-1] > conf[1:]).all()) and float(conf[-1]) > 0
    torch.testing.assert_close(conf, torch.sigmoid(torch.logsumexp(logits.double(), 1)))
