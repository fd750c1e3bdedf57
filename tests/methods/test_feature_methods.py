"""MSP and ARPL on precomputed features: math, training, interface, persistence."""

from __future__ import annotations

import pytest
import torch

from openmer.data.tensors import FeatureDataset
from openmer.errors import CheckpointError, ConfigError, MissingModalityError, NotFittedError
from openmer.methods import METHODS, OpenSetMethod, get_method
from openmer.methods.arpl import ARPL, ARPLConfig, arpl_loss
from openmer.methods.distance import composite_distance
from openmer.methods.msp import MSP, MSPConfig
from openmer.training import TrainConfig, fit
from tests.helpers.features import blobs
from tests.helpers.run_folders import round_trip

FAST = TrainConfig(epochs=15, optimizer="adam", lr=3e-3, batch_size=32, eval_every=5)


def test_composite_distance_matches_arpl_reference():
    g = torch.Generator().manual_seed(0)
    f, p = torch.randn(5, 7, generator=g), torch.randn(3, 7, generator=g)
    # iCGY96/ARPL loss/Dist.py: l2 = (f^2 - 2 f.p + p^2) / D; logits = l2 - dot
    l2 = ((f[:, None, :] - p[None]) ** 2).sum(-1) / 7
    assert torch.allclose(composite_distance(f, p), l2 - f @ p.t(), atol=1e-5)
    with pytest.raises(ValueError, match="same D"):
        composite_distance(f, torch.randn(3, 6))


def test_arpl_loss_includes_margin_term():
    g = torch.Generator().manual_seed(1)
    z, pts = torch.randn(4, 3, generator=g), torch.randn(2, 3, generator=g)
    y = torch.tensor([0, 1, 0, 1])
    base = arpl_loss(z, y, pts, torch.tensor(0.0), weight_pl=0.0)
    with_r = arpl_loss(z, y, pts, torch.tensor(0.0), weight_pl=0.5)
    d = (z - pts[y]).pow(2).mean(1)
    assert torch.allclose(with_r - base, 0.5 * torch.clamp(d - 0.0 + 1.0, min=0).mean(), atol=1e-6)


@pytest.mark.parametrize("name", ["msp", "arpl"])
def test_trains_and_separates_known_from_unknown(name):
    x, y = blobs()
    k = y >= 0
    train = FeatureDataset(x[k][::2], y[k][::2])
    val = FeatureDataset(x[k][1::2], y[k][1::2])
    cls = get_method(name)
    m = cls(cls.config_class(input_dim=8, dropout=0.0), ["a", "b", "c"])
    result = fit(m, train, val.batches(), FAST)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    s = m.score_all(FeatureDataset(x, y).batches())
    assert s.confidence.shape == (len(y),) and s.prediction.dtype == torch.int64
    acc = (s.prediction.numpy()[k] == y[k]).mean()
    assert acc > 0.9


def test_registry_and_errors():
    assert {"msp", "arpl", "hcep"} <= set(METHODS)
    with pytest.raises(ConfigError, match="choose one of"):
        get_method("nope")
    with pytest.raises(ConfigError, match="at least 2"):
        MSP(MSPConfig(input_dim=3), ["only"])
    m = ARPL(ARPLConfig(input_dim=3), ["a", "b"])
    with pytest.raises(NotFittedError):
        m.score_all([{"features": torch.zeros(2, 3), "label": torch.zeros(2, dtype=torch.long)}])
    with pytest.raises(MissingModalityError, match="features"):
        m.score({"audio": torch.zeros(2, 3)})
    with pytest.raises(ValueError, match=r"\(B, 3\)"):
        m.score({"features": torch.zeros(2, 4)})
    with pytest.raises(ConfigError, match="extra"):
        ARPLConfig.from_dict({"input_dim": 3, "wieght_pl": 0.2})


def test_config_round_trip_non_defaults(tmp_path):
    cfg = ARPLConfig(input_dim=11, hidden_dim=0, embed_dim=7, dropout=0.3, temperature=2.0, weight_pl=0.5,
                     margin=2.0, confidence="softmax")
    path = tmp_path / "c.json"
    cfg.to_json(path)
    back = ARPLConfig.from_json(path)
    assert back == cfg and back.to_dict()["confidence"] == "softmax" and back.embed_dim == 7


@pytest.mark.parametrize("name", ["msp", "arpl"])
def test_save_load_identical_scores(tmp_path, name):
    x, y = blobs(1)
    k = y >= 0
    cls = get_method(name)
    m = cls(cls.config_class(input_dim=8), ["a", "b", "c"])
    fit(m, FeatureDataset(x[k], y[k]), None, FAST.model_copy(update={"epochs": 3}))
    m.threshold = 0.5
    back = round_trip(m, tmp_path / "run").method
    assert type(back) is cls and back.threshold == 0.5 and back.known_classes == ["a", "b", "c"]
    batches = FeatureDataset(x, y).batches()
    a, b = m.score_all(batches), back.score_all(batches)
    assert torch.equal(a.confidence, b.confidence) and torch.equal(a.prediction, b.prediction)


def test_load_errors(tmp_path):
    import json

    from openmer.files import read_safetensors
    from openmer.inference import load_run

    with pytest.raises(CheckpointError, match=r"run\.json: not found"):
        load_run(tmp_path, encoders={})
    m = MSP(MSPConfig(input_dim=8), ["a", "b", "c"])
    m.mark_fitted()
    round_trip(m, tmp_path / "r")
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    meta["method_config"]["embed_dim"] = 5
    (tmp_path / "r" / "run.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"model.safetensors: was trained with method config \(SHA-256\)"):
        load_run(tmp_path / "r", encoders={})
    state, _ = read_safetensors(tmp_path / "r" / "model.safetensors")
    with pytest.raises(CheckpointError, match="does not match the rebuilt MSP"):
        OpenSetMethod.from_description(
            {"method": "msp", "config": meta["method_config"], "known_classes": ["a", "b", "c"]}, state,
            weights=tmp_path / "r" / "model.safetensors", source=tmp_path / "r" / "run.json")
