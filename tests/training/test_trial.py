"""One trial (fit -> deployable threshold -> test scores), shared by the benchmarks and ``openmer train``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from openmer.data.tensors import FeatureDataset
from openmer.methods.arpl import ARPL, ARPLConfig
from openmer.methods.threshold import choose_threshold
from openmer.training import TrainConfig, fit
from openmer.training.trial import ThresholdRule, run_trial

CFG = TrainConfig(epochs=3, optimizer="adam", lr=1e-2, batch_size=16)


def sets():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(c, 1, (30, 4)) for c in (-2, 0, 2)]).astype(np.float32)
    y = np.repeat(np.arange(3), 30)
    test_y = y[2::3].copy()
    test_y[test_y == 2] = -1  # class 2 plays the unknown class of the test set
    return (FeatureDataset(x[0::3], y[0::3]), FeatureDataset(x[1::3], y[1::3]),
            FeatureDataset(x[2::3], test_y))


def built():
    torch.manual_seed(0)
    return ARPL(ARPLConfig(input_dim=4), ["a", "b", "c"])


def test_a_trial_equals_fit_then_threshold_then_test_scores():
    train, val, test = sets()
    trial = run_trial(built(), train, val, CFG, test=test)
    method = built()
    result = fit(method, train, val.batches(), CFG)
    assert trial.fit.best_epoch == result.best_epoch
    val_conf = method.score_all(val.batches()).confidence.numpy()
    assert trial.threshold.source == "val"
    np.testing.assert_array_equal(trial.threshold_confidence, val_conf)
    assert trial.threshold.value == choose_threshold(val_conf)
    expected = method.score_all(test.batches())
    assert torch.equal(trial.scores.confidence, expected.confidence)
    assert torch.equal(trial.scores.prediction, expected.prediction)
    assert trial.features is None


@pytest.mark.parametrize(("source", "val_rows"), [("train", None), ("val", 0)])
def test_the_threshold_comes_from_training_data_by_rule_or_without_validation(source, val_rows):
    train, val, _ = sets()
    if val_rows is not None:
        val = FeatureDataset(val.x[:val_rows].numpy(), val.y[:val_rows].numpy())
    trial = run_trial(built(), train, val, CFG, threshold=ThresholdRule(acceptance=0.5, source=source))
    assert trial.threshold.source == "train" and len(trial.threshold_confidence) == len(train)
    assert trial.threshold.value == choose_threshold(trial.threshold_confidence, 0.5)
    assert trial.scores is None  # no test set given, none read
