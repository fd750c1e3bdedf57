"""CSSR (RCSSR / PCSSR): reconstruction logits, clamp, predictions, score and training."""

from __future__ import annotations

import functools

import pytest
import torch

from openmer.data.tensors import FeatureDataset
from openmer.methods.cssr import CSSR, CSSRConfig, cssr_confidence, reconstruction_logits
from openmer.metrics import auroc
from openmer.training import TrainConfig, fit
from tests.helpers.features import blobs


def _weights(k=3, latent=2, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(k, latent, d, generator=g), torch.randn(k, d, latent, generator=g)


def test_logits_equal_reference_autoencoder_errors():
    enc, dec = _weights()
    z = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    # reference AutoEncoder(ae_hidden=[]): latent = tanh(W_enc z); rc = W_dec latent; error = ||rc - z||_1
    expected = torch.stack([(dec[k] @ torch.tanh(enc[k] @ z.t())).t().sub(z).abs().sum(1) for k in range(3)], 1)
    torch.testing.assert_close(reconstruction_logits(z, enc, dec, gamma=0.1, reciprocal=True), 0.1 * expected)
    torch.testing.assert_close(reconstruction_logits(z, enc, dec, gamma=0.1, reciprocal=False), -0.1 * expected)


def test_zero_decoders_give_the_norm_and_uniform_probabilities():
    enc, dec = _weights()
    z = torch.randn(6, 5, generator=torch.Generator().manual_seed(2))
    logits = reconstruction_logits(z, enc, torch.zeros_like(dec), gamma=0.1, reciprocal=True)
    torch.testing.assert_close(logits, (0.1 * z.abs().sum(1, keepdim=True)).expand(6, 3))
    torch.testing.assert_close(torch.softmax(logits, 1), torch.full((6, 3), 1 / 3))


def test_clamp_at_plus_minus_100():
    enc, dec = _weights()
    z = 1e4 * torch.ones(2, 5)
    zero = torch.zeros_like(dec)
    assert torch.equal(reconstruction_logits(z, enc, zero, gamma=0.1, reciprocal=True), torch.full((2, 3), 100.0))
    assert torch.equal(reconstruction_logits(z, enc, zero, gamma=0.1, reciprocal=False), torch.full((2, 3), -100.0))


def test_pcssr_predicts_best_and_rcssr_worst_reconstruction():
    enc, dec = _weights()
    z = torch.randn(8, 5, generator=torch.Generator().manual_seed(3))
    error = reconstruction_logits(z, enc, dec, gamma=1.0, reciprocal=True)  # = e
    _, pred_r = cssr_confidence(reconstruction_logits(z, enc, dec, gamma=0.1, reciprocal=True), z, reciprocal=True)
    logits_p = reconstruction_logits(z, enc, dec, gamma=0.1, reciprocal=False)
    conf_p, pred_p = cssr_confidence(logits_p, z, reciprocal=False)
    assert torch.equal(pred_r, error.argmax(1)) and torch.equal(pred_p, error.argmin(1))
    # PCSSR confidence: -gamma min_k e_k / (mean |z|)^2, higher for a smaller relative error
    torch.testing.assert_close(conf_p, -0.1 * error.min(1).values / z.abs().mean(1) ** 2)


@functools.cache
def _trained(variant: str) -> CSSR:
    x, y = blobs(seed=0, unknown="centre")
    k = y >= 0
    torch.manual_seed(0)
    m = CSSR(CSSRConfig(input_dim=8, variant=variant, latent_dim=4), ["a", "b", "c"])
    result = fit(m, FeatureDataset(x[k], y[k]), None, TrainConfig(epochs=30, optimizer="adam", lr=1e-2, batch_size=32))
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]
    return m


@pytest.mark.parametrize("variant", ["rcssr", "pcssr"])
def test_trains_on_blobs_and_rejects_samples_between_the_classes(variant):
    m = _trained(variant)
    xt, yt = blobs(seed=0, sample_seed=5, unknown="centre")  # held-out samples
    s = m.score_all(FeatureDataset(xt, yt).batches())
    assert (s.prediction.numpy()[yt >= 0] == yt[yt >= 0]).mean() > 0.9
    assert auroc(s.confidence.numpy(), yt) > 0.9
    assert m.score_name == variant


def test_rcssr_confidence_grows_with_the_feature_magnitude_up_to_the_clamp():
    # A property of the reference's score (R[0]): far from the training data every reconstruction
    # error is large, so the reciprocal logit of the predicted class is large. A distant unknown
    # class therefore looks *more* known (docs/methods.md).
    m = _trained("rcssr")
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(4))
    near = m.score({"features": m.embedding.mean + 0.1 * x * m.embedding.std}).confidence
    far = m.score({"features": m.embedding.mean + 1e4 * x * m.embedding.std}).confidence
    assert bool((far > near).all()) and torch.equal(far, torch.full((5,), 100.0))


def test_projection_option_and_config_round_trip():
    original = CSSRConfig(input_dim=6, variant="pcssr", latent_dim=3, gamma=0.5, projection_dim=4)
    cfg = CSSRConfig.from_json(original.to_json())
    assert (cfg.variant, cfg.latent_dim, cfg.gamma, cfg.projection_dim) == ("pcssr", 3, 0.5, 4)
    m = CSSR(cfg, ["a", "b"])
    assert m.encoders.shape == (2, 3, 4) and m.decoders.shape == (2, 4, 3)
    m.mark_fitted()
    m.eval()
    assert m.score({"features": torch.randn(5, 6)}).confidence.shape == (5,)
    assert not any(p.requires_grad for p in m.embedding.parameters())  # standardisation only
