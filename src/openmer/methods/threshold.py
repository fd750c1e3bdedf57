"""The deployable threshold on ``confidence`` and the known/unknown decision (HCEP Sec. 4.4.6).

HCEP Sec. 4.4.6 sets the threshold of Algorithm 1 from *training* data: the confidence that a
chosen fraction of known-class training samples reach ("known acceptance"); it reports 0.60-0.66
working best on MAFW. openmer's default acceptance is 0.90 (fewer known clips rejected). Test
data never take part. ``openmer train --threshold-from val`` uses the known-class validation
clips instead; the run folder records which.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: openmer's default known-class acceptance
DEFAULT_ACCEPTANCE = 0.90
#: the known-acceptance rates HCEP Sec. 4.4.6 reports as best on MAFW (0.60 to 0.66)
PAPER_ACCEPTANCE_RANGE = (0.60, 0.61, 0.62, 0.63, 0.64, 0.65, 0.66)
#: the label of a rejected sample
UNKNOWN_LABEL = "unknown"
THRESHOLD_RULE = ("(1 - acceptance) quantile (numpy method 'lower') of the known-class confidences "
                  "of the threshold source; accept = confidence >= threshold (HCEP Sec. 4.4.6)")


def check_acceptance(acceptance: float) -> float:
    """``acceptance`` as a float.

    Raises:
        ValueError: outside (0, 1].
    """
    acceptance = float(acceptance)
    if not 0 < acceptance <= 1:
        raise ValueError(f"acceptance must be in (0, 1], got {acceptance}")
    return acceptance


def choose_threshold(known_confidence: np.ndarray, acceptance: float = DEFAULT_ACCEPTANCE) -> float:
    """Deployable threshold from known-class data only (HCEP Sec. 4.4.6).

    Args:
        known_confidence: (N,) confidences (higher = more likely known) of known-class training
            or validation samples, never test samples.
        acceptance: the fraction of them to accept (``confidence >= threshold``).

    Returns:
        The ``(1 - acceptance)`` quantile (``method="lower"``), so at least ``acceptance`` of the
        given confidences are accepted.

    Raises:
        ValueError: ``acceptance`` outside (0, 1] or no confidence given.

    Example:
        >>> choose_threshold(np.array([0.1, 0.2, 0.3, 0.4, 0.5]), 0.5)  # accepts 0.3, 0.4, 0.5
        0.3
    """
    acceptance = check_acceptance(acceptance)
    conf = np.asarray(known_confidence, dtype=np.float64)
    if conf.size == 0:
        raise ValueError("no known-class confidence to choose a threshold from")
    return float(np.quantile(conf, 1.0 - acceptance, method="lower"))


def thresholds_at(known_confidence: np.ndarray, acceptances: Sequence[float]) -> list[dict[str, float]]:
    """:func:`choose_threshold` at several acceptance targets: ``[{"acceptance", "threshold"}, ...]``."""
    return [{"acceptance": float(a), "threshold": choose_threshold(known_confidence, a)} for a in acceptances]


def decide(confidence: float, prediction: int, threshold: float, known_classes: Sequence[str]) -> str:
    """The label of one sample: its predicted known class when ``confidence >= threshold``, else ``"unknown"``."""
    return known_classes[int(prediction)] if confidence >= threshold else UNKNOWN_LABEL
