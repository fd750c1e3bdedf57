"""The deployable threshold (HCEP Sec. 4.4.6): chosen on known-class training data, accept = confidence >= threshold."""

from __future__ import annotations

import numpy as np
import pytest

from openmer.methods.threshold import UNKNOWN_LABEL, choose_threshold, decide, thresholds_at


def test_threshold_accepts_at_least_the_asked_fraction():
    rng = np.random.default_rng(0)
    conf = rng.random(101)
    for a in (0.6, 0.66, 0.9, 1.0):
        assert (conf >= choose_threshold(conf, a)).mean() >= a
    assert choose_threshold(np.array([0.1, 0.2, 0.3, 0.4, 0.5]), 0.5) == 0.3
    assert [p["acceptance"] for p in thresholds_at(conf, [0.6, 0.9])] == [0.6, 0.9]


@pytest.mark.parametrize("acceptance", [0.0, 1.5, -1])
def test_acceptance_outside_0_1_is_refused(acceptance):
    with pytest.raises(ValueError, match=r"acceptance must be in \(0, 1\]"):
        choose_threshold(np.array([0.5]), acceptance)


def test_decide():
    assert decide(0.7, 1, 0.5, ["a", "b"]) == "b" and decide(0.4, 1, 0.5, ["a", "b"]) == UNKNOWN_LABEL
