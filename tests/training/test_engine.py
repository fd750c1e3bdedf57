"""The training engine: selection on val, resume, NaN guard, frozen parameters."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from openmer.data.tensors import FeatureDataset
from openmer.errors import CheckpointError, TrainingError
from openmer.methods.arpl import ARPL, ARPLConfig
from openmer.training import TrainConfig, fit

CFG = TrainConfig(epochs=6, optimizer="sgd", lr=0.05, batch_size=16, step_size=2, gamma=0.5)


def data(seed=0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(c, 1, (40, 6)) for c in (-2, 0, 2)]).astype(np.float32)
    y = np.repeat(np.arange(3), 40)
    return FeatureDataset(x[::2], y[::2]), FeatureDataset(x[1::2], y[1::2])


def new_method():
    torch.manual_seed(0)
    return ARPL(ARPLConfig(input_dim=6, dropout=0.2), ["a", "b", "c"])


def test_resume_equals_uninterrupted(tmp_path):
    train, val = data()
    full = new_method()
    r_full = fit(full, train, val.batches(), CFG, run_dir=tmp_path / "full")

    part = new_method()
    fit(part, train, val.batches(), CFG.model_copy(update={"epochs": 3}), run_dir=tmp_path / "cut")
    # the "interrupted" run only got 3 epochs; resume the 6-epoch schedule from its last checkpoint
    state = json.loads((tmp_path / "cut" / "last" / "epoch-0003" / "trainer_state.json").read_text())
    assert state["state"]["epoch"] == 2
    resumed = new_method()
    r_res = fit(resumed, train, val.batches(), CFG, run_dir=tmp_path / "cut", resume=True)
    assert r_res.best_epoch == r_full.best_epoch
    assert [h["train_loss"] for h in r_res.history] == pytest.approx([h["train_loss"] for h in r_full.history],
                                                                    abs=1e-6)
    for (k, a), b in zip(full.trainable_state_dict().items(), resumed.trainable_state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), k
    metrics = json.loads((tmp_path / "full" / "metrics.json").read_text())
    assert metrics["best_epoch"] == r_full.best_epoch and len(metrics["history"]) == 6


def test_resume_without_checkpoint(tmp_path):
    train, val = data()
    with pytest.raises(CheckpointError, match="no checkpoint"):
        fit(new_method(), train, val.batches(), CFG, run_dir=tmp_path, resume=True)


def test_nan_loss_stops_naming_the_step(tmp_path):
    train, val = data()
    train.x[5] = float("nan")
    with pytest.raises(TrainingError, match=r"epoch 1, step \d+"):
        fit(new_method(), train, val.batches(), CFG, run_dir=tmp_path)


def test_selection_uses_val_and_only_trainable_parameters_change():
    train, val = data()
    m = new_method()
    before = {k: v.clone() for k, v in m.embedding.state_dict().items() if k in ("mean", "std")}
    r = fit(m, train, val.batches(), CFG)
    best = max(r.history, key=lambda h: (h["val_acc"], -h["val_loss"]))
    assert r.best_epoch == best["epoch"]
    assert not torch.equal(before["mean"], m.embedding.mean)  # set from the training statistics, not trained
    assert all(p.grad is None or p.requires_grad for p in m.parameters())


def test_balanced_validation_accuracy_does_not_reward_predicting_the_majority_class():
    """A validation split with 1 clip of one class and 18 of the other (EmoDB's O(2:5) split 3):
    predicting the majority class everywhere has accuracy 0.95 but balanced accuracy 0.5."""
    from openmer.methods.base import OpenSetScores
    from openmer.training.engine import _is_better, evaluate_known

    labels = torch.tensor([0] + [1] * 18)

    class Fixed:
        num_classes = 2

        def __init__(self, pred):
            self.pred = torch.tensor(pred)

        def eval(self):
            return self

        def evaluate_batch(self, batch):
            return torch.tensor(0.5), OpenSetScores(confidence=torch.ones(19), prediction=self.pred)

    collapsed = evaluate_known(Fixed([1] * 19), [{"label": labels}])
    separating = evaluate_known(Fixed([0] + [1] * 15 + [0] * 3), [{"label": labels}])
    assert collapsed["val_acc"] > separating["val_acc"]
    assert collapsed["val_balanced_acc"] == pytest.approx(0.5)
    assert separating["val_balanced_acc"] == pytest.approx((1 + 15 / 18) / 2)
    assert _is_better(separating, collapsed, "val_balanced_acc")
    assert not _is_better(separating, collapsed, "val_acc")


def test_fit_selects_on_balanced_accuracy_when_asked():
    train, val = data()
    keep = np.r_[0, np.arange(20, 60)]  # 1 clip of class 0, 20 of each other class
    val = FeatureDataset(val.x[keep], val.y[keep])
    r = fit(new_method(), train, val.batches(), CFG.model_copy(update={"select_metric": "val_balanced_acc"}))
    best = max(r.history, key=lambda h: (h["val_balanced_acc"], -h["val_loss"]))
    assert r.best_epoch == best["epoch"] and r.select_metric == "val_balanced_acc"


def test_hooks_run_each_epoch_and_once_after_the_selected_weights_are_loaded():
    calls = []

    class Hooked(ARPL):
        def on_epoch_start(self, epoch, num_epochs):
            calls.append(("epoch", epoch, num_epochs, self.training))

        def finalize(self, train):
            n = sum(len(b["label"]) for b in train)
            calls.append(("finalize", n, self.training, self.reciprocal_points.detach().clone()))

    train, val = data()
    torch.manual_seed(0)
    m = Hooked(ARPLConfig(input_dim=6), ["a", "b", "c"])
    fit(m, train, val.batches(), CFG.model_copy(update={"select_metric": "val_loss"}))
    assert [c[:3] for c in calls[:-1]] == [("epoch", e, 6) for e in range(6)]
    kind, n, training, points = calls[-1]
    assert (kind, n, training) == ("finalize", len(train), False)  # the whole training set, eval mode
    assert torch.equal(points, m.reciprocal_points.detach())  # after the selected state was loaded
    assert m.is_fitted


def test_collapse_check_reads_probabilities_not_a_confidence_on_another_scale():
    """CPN*'s and ARPL's confidences are not class probabilities: a low mean confidence with
    peaked probabilities and varied predictions is no collapse (a false alarm before)."""
    from openmer.methods.base import OpenSetScores
    from openmer.training.engine import collapse_warning, evaluate_known

    class Stub:
        num_classes = 2

        def eval(self):
            return self

        def evaluate_batch(self, batch):
            y = torch.as_tensor(batch["label"])
            probs = torch.nn.functional.one_hot(y, 2).float() * 0.9 + 0.05
            return None, OpenSetScores(torch.full((len(y),), 0.3), y, probs)

    status = evaluate_known(Stub(), [{"label": [0, 1, 0, 1]}])
    assert collapse_warning(status, 2) is None
    flat = {"val_majority_fraction": 0.5, "val_confidence": 0.9, "val_max_probability": 0.52}
    assert "near-uniform" in collapse_warning(flat, 2)
