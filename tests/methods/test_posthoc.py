"""Post-hoc scores: hand-computed cases, OpenOOD / pytorch-ood references, and ``score=`` on a trained head."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from openmer.data.tensors import FeatureDataset
from openmer.errors import ConfigError, NotFittedError
from openmer.methods import get_method
from openmer.methods.posthoc import (
    POSTHOC_SCORES,
    HeadOutputs,
    energy_confidence,
    entropy_confidence,
    get_score,
    knn_confidence,
    mahalanobis_confidence,
    max_logit,
    max_softmax,
    posthoc_scores,
)
from openmer.metrics import auroc
from openmer.training import TrainConfig, fit
from tests.helpers.features import blobs
from tests.helpers.run_folders import round_trip

LOGITS = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])


def test_logit_scores_hand_computed():
    z = math.e + math.e**2 + math.e**3
    torch.testing.assert_close(max_softmax(LOGITS), torch.tensor([math.e**3 / z, 1 / 3]))
    torch.testing.assert_close(max_softmax(LOGITS, temperature=2.0)[1], torch.tensor(1 / 3))
    torch.testing.assert_close(max_logit(LOGITS), torch.tensor([3.0, 0.0]))
    torch.testing.assert_close(energy_confidence(LOGITS), torch.tensor([math.log(z), math.log(3.0)]))
    p = torch.tensor([math.e, math.e**2, math.e**3]) / z
    torch.testing.assert_close(entropy_confidence(LOGITS), torch.tensor([float((p * p.log()).sum()), -math.log(3.0)]))


def test_mahalanobis_equals_openood_with_sklearn_covariance():
    from sklearn.covariance import EmpiricalCovariance

    rng = np.random.default_rng(0)
    f = rng.normal(size=(40, 3)) + np.repeat(np.eye(3)[:2] * 4, 20, axis=0)
    y = np.repeat([0, 1], 20)
    test = rng.normal(size=(7, 3))
    # OpenOOD MDSPostprocessor.setup / postprocess: class means, EmpiricalCovariance of the centred
    # training features, confidence = max_k -(x - mu_k) P (x - mu_k)
    means = np.stack([f[y == c].mean(0) for c in (0, 1)])
    precision = EmpiricalCovariance(assume_centered=False).fit(f - means[y]).precision_
    expected = np.max([-np.einsum("ij,jk,ik->i", test - m, precision, test - m) for m in means], axis=0)
    score = get_score("mahalanobis")().fit(HeadOutputs(torch.zeros(40, 2), torch.tensor(f, dtype=torch.float32)),
                                          torch.tensor(y))
    got = score(HeadOutputs(torch.zeros(7, 2), torch.tensor(test, dtype=torch.float32)))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=1e-4)
    assert float(mahalanobis_confidence(torch.zeros(1, 2), torch.zeros(1, 2), torch.eye(2))) == 0.0


def _ill_conditioned(e: int = 16, n: int = 1000, seed: int = 0):
    """Two classes in ``e`` rotated dimensions whose standard deviations fall from 1 to 1e-4 (variances
    to 1e-8 of the largest); unknowns lie 20 standard deviations out along the 4 lowest-variance ones."""
    rng = np.random.default_rng(seed)
    std = np.logspace(0, -4, e)
    rotation, _ = np.linalg.qr(rng.normal(size=(e, e)))
    mu = np.zeros((2, e))
    mu[1, 0] = 3.0
    shift = np.zeros(e)
    shift[-4:] = 20 * std[-4:]

    def draw(m):
        return rng.normal(size=(2 * m, e)) * std + np.repeat(mu, m, axis=0)

    def f(a):
        return torch.tensor(a @ rotation.T, dtype=torch.float32)

    test = np.concatenate([draw(200), draw(200) + shift])
    labels = np.r_[np.zeros(400, int), -np.ones(400, int)]
    return f(draw(n)), torch.repeat_interleave(torch.arange(2), n), f(test), labels


def test_mahalanobis_keeps_low_variance_directions_of_an_ill_conditioned_covariance():
    """Issue 24: a float32 pseudo-inverse dropped every direction with a variance below ~E * 1.2e-7 of
    the largest, so unknowns lying out along them scored as known (AUROC 0.48); in float64 they do
    not (1.00, as pytorch-ood, OpenOOD's recipe and the formula in float64)."""
    train, y, test, labels = _ill_conditioned()
    score = get_score("mahalanobis")().fit(HeadOutputs(torch.zeros(len(train), 2), train), y)
    conf = score(HeadOutputs(torch.zeros(len(test), 2), test))
    assert conf.dtype == torch.float32 and bool(torch.isfinite(conf).all()) and bool((conf <= 0).all())
    assert auroc(conf.numpy(), labels) > 0.99
    # the same numbers as the formula with the float64 inverse of the covariance
    f, yy, t = train.double(), y, test.double()
    means = torch.stack([f[yy == c].mean(0) for c in (0, 1)])
    centred = f - means[yy]
    precision = torch.linalg.inv(centred.T @ centred / len(f))
    expected = mahalanobis_confidence(t, means, torch.linalg.cholesky(precision))
    torch.testing.assert_close(conf.double(), expected, rtol=1e-3, atol=1e-3)


def test_mahalanobis_of_an_older_run_folder_scores_with_its_saved_precision():
    means, precision = torch.tensor([[0.0, 0.0], [4.0, 0.0]]), torch.tensor([[2.0, 0.5], [0.5, 1.0]])
    score = get_score("mahalanobis")()
    score.allocate({"means": [2, 2], "precision": [2, 2]})
    score.load_state_dict({"means": means, "precision": precision})
    x = torch.tensor([[1.0, 1.0], [3.0, -1.0]])
    d = x[:, None] - means[None]
    expected = -torch.einsum("bke,ef,bkf->bk", d, precision, d).min(dim=1).values
    torch.testing.assert_close(score(HeadOutputs(torch.zeros(2, 2), x)), expected)


def test_knn_hand_computed():
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    x = torch.tensor([[2.0, 0.0]])  # normalised (1, 0): distances 0, sqrt 2, 2
    assert knn_confidence(x, bank, 1).tolist() == [0.0]
    torch.testing.assert_close(knn_confidence(x, bank, 2), torch.tensor([-math.sqrt(2.0)]))
    torch.testing.assert_close(knn_confidence(x, bank, 3), torch.tensor([-2.0]))
    score = get_score("knn")().fit(HeadOutputs(torch.zeros(3, 2), 5 * bank), torch.tensor([0, 1, -1]))
    assert score.bank.shape == (2, 2) and int(score.k) == 1  # unknown training rows ignored; k = N / 1000 -> 1


def test_knn_k_follows_the_training_size_and_never_exceeds_the_smallest_known_class():
    """k = round(N / 1000) (Sun et al.'s ratio), at most the smallest known class's count: with a
    larger k every sample of that class has its k-th neighbour in another class (measured on EmoDB
    heads, docs/methods.md: k = 100 above classes of 35-47 clips drops AUROC from 0.72 to 0.40)."""
    g = torch.Generator().manual_seed(0)
    f = torch.randn(3002, 4, generator=g)
    balanced = torch.arange(3002) % 2
    assert int(get_score("knn")().fit(HeadOutputs(torch.zeros(3002, 2), f), balanced).k) == 3
    rare = torch.zeros(3002, dtype=torch.long)
    rare[:2] = 1  # a known class with 2 training samples
    assert int(get_score("knn")().fit(HeadOutputs(torch.zeros(3002, 2), f), rare).k) == 2


def _vim_reference(w, b, train, test, d):
    """A straight port of pytorch-ood 0.4 ``ViM.fit_features`` / ``predict_features``, negated (confidence)."""
    u = -(torch.linalg.pinv(w) @ b)
    x = train - u
    _, vecs = torch.linalg.eigh((x.T @ x) / x.shape[0])
    ns = vecs[:, : vecs.shape[1] - d]
    alpha = ((train @ w.T + b).max(dim=-1).values.mean() / (x @ ns).norm(dim=-1).mean()).item()
    vlogit = ((test - u) @ ns).norm(dim=-1) * alpha
    outlier = -(-vlogit + torch.logsumexp(test @ w.T + b, dim=-1))  # what pytorch-ood returns
    return -outlier


def test_vim_equals_pytorch_ood_port_for_a_linear_head():
    g = torch.Generator().manual_seed(0)
    w, b = torch.randn(3, 6, generator=g), torch.randn(3, generator=g) + 2.0
    train, test = torch.relu(torch.randn(50, 6, generator=g)) + 1.0, torch.randn(9, 6, generator=g)
    known = torch.zeros(50, dtype=torch.long)
    score = get_score("vim")().fit(HeadOutputs(train @ w.T + b, train), known, linear=(w, b))
    got = score(HeadOutputs(test @ w.T + b, test))
    torch.testing.assert_close(got, _vim_reference(w, b, train, test, d=3), rtol=1e-4, atol=1e-4)


def test_against_pytorch_ood_when_installed():
    detector = pytest.importorskip("pytorch_ood.detector", reason="pytorch-ood (and its torchvision) not installed")
    g = torch.Generator().manual_seed(1)
    logits, feats = torch.randn(20, 4, generator=g), torch.randn(20, 5, generator=g)
    torch.testing.assert_close(energy_confidence(logits), -detector.EnergyBased.score(logits))
    torch.testing.assert_close(max_softmax(logits), -detector.MaxSoftmax.score(logits))
    torch.testing.assert_close(entropy_confidence(logits), -detector.Entropy.score(logits))
    w, b = torch.randn(4, 5, generator=g), torch.randn(4, generator=g) + 2
    train, known = torch.relu(feats) + 1, torch.zeros(20, dtype=torch.long)
    ref = detector.ViM(None, d=2, w=w, b=b).fit_features(train, known)
    ours = get_score("vim")().fit(HeadOutputs(train @ w.T + b, train), known, linear=(w, b))
    torch.testing.assert_close(ours(HeadOutputs(feats @ w.T + b, feats)), -ref.predict_features(feats),
                               rtol=1e-4, atol=1e-4)
    ref_md = detector.Mahalanobis(None).fit_features(train, torch.arange(20) % 2)
    ours_md = get_score("mahalanobis")().fit(HeadOutputs(logits, train), torch.arange(20) % 2)
    # pytorch-ood: -1/2 (x - mu)^T (sum of outer products)^-1 (x - mu), i.e. our value / (2 N)
    # (its covariance is not / N)
    torch.testing.assert_close(ours_md(HeadOutputs(logits, feats)) / 40, -ref_md.predict_features(feats),
                               rtol=1e-3, atol=1e-5)
    ref_knn = detector.KNN(None, k=1).fit_features(train, known)
    ours_knn = get_score("knn")().fit(HeadOutputs(logits, train), known)  # k = 1 for 20 samples
    torch.testing.assert_close(ours_knn(HeadOutputs(logits, feats)).double(), -ref_knn.predict_features(feats),
                               rtol=1e-5, atol=1e-5)


def test_registry_errors_and_unfitted_scores():
    assert list(POSTHOC_SCORES) == ["msp", "max_logit", "energy", "entropy", "mahalanobis", "knn", "vim"]
    with pytest.raises(ConfigError, match="choose one of"):
        get_score("odin")
    with pytest.raises(NotFittedError, match="fitted"):
        get_score("knn")()(HeadOutputs(LOGITS, LOGITS))
    with pytest.raises(ConfigError, match="unknown post-hoc score"):
        get_method("arpl").config_class.from_dict({"input_dim": 3, "score": "odin"})


@pytest.mark.parametrize(("name", "score"), [("arpl", "mahalanobis"), ("msp", "vim"), ("lpl", "knn")])
def test_configured_score_replaces_the_own_one_and_survives_save_load(tmp_path, name, score):
    x, y = blobs(seed=0, unknown="centre")
    k = y >= 0
    cls = get_method(name)
    torch.manual_seed(0)
    m = cls(cls.config_class.from_dict({"input_dim": 8, "dropout": 0.0, "score": score}), ["a", "b", "c"])
    fit(m, FeatureDataset(x[k], y[k]), None, TrainConfig(epochs=3, optimizer="adam", lr=3e-3, batch_size=32))
    assert m.score_name == score and m.posthoc.is_fitted
    test = FeatureDataset(*blobs(seed=0, sample_seed=3, unknown="centre")).batches()
    s = m.score_all(test)
    # the same numbers as the post-hoc score computed beside the method's own, on its training data
    (conf, pred), = posthoc_scores(m, FeatureDataset(x[k], y[k]).batches(), test, [score]).values()
    torch.testing.assert_close(s.confidence, conf, rtol=1e-5, atol=1e-5)
    assert torch.equal(s.prediction, pred)
    back = round_trip(m, tmp_path / "run").method
    b = back.score_all(test)
    assert torch.equal(s.confidence, b.confidence) and torch.equal(s.prediction, b.prediction)


def test_score_options_name_the_fields_that_select_a_score():
    """``--score NAME``: a method's own scores first (ARPL's max logit / max softmax), then any
    post-hoc score on a feature head; a score a method cannot report is an error listing its choices."""
    arpl = get_method("arpl")
    assert arpl.score_choices()[:2] == ("max_logit", "msp")
    assert arpl.score_options("msp") == {"confidence": "softmax", "score": None}
    assert arpl.score_options("mahalanobis") == {"score": "mahalanobis"}
    assert get_method("cssr").score_options("knn") == {"score": "knn"}
    cfg = arpl.config_class.from_dict({"input_dim": 3, **arpl.score_options("energy")})
    assert arpl(cfg, ["a", "b"]).score_name == "energy"
    with pytest.raises(ConfigError, match="mahalanobis"):
        arpl.score_options("odin")
