"""The deployable threshold on ``confidence`` and the known/unknown decision (HCEP Sec. 4.4.6).

HCEP Sec. 4.4.6 sets the threshold of Algorithm 1 from *training* data: the confidence that a
chosen fraction of known-class training samples reach ("known acceptance"); it reports 0.60-0.66
working best on MAFW. openmer's default acceptance is 0.90 (fewer known clips rejected). Test
data never take part. ``openmer train --threshold-from val`` uses the known-class validation
clips instead; the run folder records which.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from openmer.config import OpenmerConfig

#: openmer's default known-class acceptance
DEFAULT_ACCEPTANCE = 0.90
#: the known-acceptance rates HCEP Sec. 4.4.6 reports as best on MAFW (0.60 to 0.66)
PAPER_ACCEPTANCE_RANGE = (0.60, 0.61, 0.62, 0.63, 0.64, 0.65, 0.66)
#: the label of a rejected sample
UNKNOWN_LABEL = "unknown"
#: whose known-class confidences set the threshold: the training clips (HCEP Sec. 4.4.6) or the validation clips
ThresholdSource = Literal["train", "val"]
#: the words of :data:`ThresholdSource` in sentences ("chosen on the validation clips")
SOURCE_WORDS: dict[str, str] = {"train": "training", "val": "validation"}
#: older words for the source (openmer's trial before one threshold type), read as today's
LEGACY_SOURCES: dict[str, str] = {"training": "train", "validation": "val"}
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


def threshold_source(value: Any) -> Any:
    """``value`` with an older source word (``"training"``, ``"validation"``) read as today's
    (``"train"``, ``"val"``); anything else unchanged (for the caller to validate)."""
    return LEGACY_SOURCES.get(value, value) if isinstance(value, str) else value


class AcceptancePoint(OpenmerConfig):
    """A threshold that accepts ``acceptance`` of the threshold source's known-class clips."""

    acceptance: float = Field(gt=0, le=1)
    threshold: float = Field(allow_inf_nan=False)


class Threshold(OpenmerConfig):
    """The one deployable threshold type (HCEP Sec. 4.4.6): its value and how it was chosen.

    A trial returns it (:func:`openmer.training.trial.run_trial`), ``run.json`` stores it
    (:mod:`openmer.runs`), ``openmer evaluate`` reports it.

    Attributes:
        value: accept a clip as known when ``confidence >= value`` (finite).
        acceptance: the fraction of the source's known-class clips it accepts, in (0, 1].
        source: ``"train"`` (the paper) or ``"val"``: which known-class clips it was chosen on
            (older words ``"training"`` / ``"validation"`` are read as these).
        rule: the rule in words.
        at_acceptance: thresholds from the same clips at other acceptance targets (the paper's
            0.60-0.66 and openmer's default), reported by ``openmer evaluate``.
    """

    value: float = Field(allow_inf_nan=False)
    acceptance: float = Field(gt=0, le=1)
    source: ThresholdSource
    rule: str = ""
    at_acceptance: list[AcceptancePoint] = Field(default_factory=list)

    @field_validator("source", mode="before")
    @classmethod
    def _legacy_source(cls, v: Any) -> Any:
        return threshold_source(v)

    @classmethod
    def from_confidences(cls, known_confidence: np.ndarray, acceptance: float,
                         source: ThresholdSource) -> Threshold:
        """The threshold that accepts ``acceptance`` of ``known_confidence`` (the known-class clips of
        ``source``; :func:`choose_threshold`), and the thresholds at the paper's 0.60-0.66,
        openmer's default 0.90 and ``acceptance`` from the same clips.

        Raises:
            ValueError: an acceptance outside (0, 1], no confidence, or a non-finite one.
        """
        conf = np.asarray(known_confidence, dtype=np.float64)
        if conf.size and not np.isfinite(conf).all():
            raise ValueError(f"{int((~np.isfinite(conf)).sum())} of {conf.size} known-class confidences are not "
                             "finite; no threshold can be chosen from them")
        targets = sorted({*PAPER_ACCEPTANCE_RANGE, DEFAULT_ACCEPTANCE, float(acceptance)})
        points = [AcceptancePoint(acceptance=p["acceptance"], threshold=p["threshold"])
                  for p in thresholds_at(conf, targets)]
        return cls(value=choose_threshold(conf, acceptance), acceptance=acceptance, source=source,
                   rule=THRESHOLD_RULE, at_acceptance=points)

    @property
    def source_words(self) -> str:
        """The source in words: ``"training"`` or ``"validation"``."""
        return SOURCE_WORDS[self.source]

    def accepts(self, confidence: float) -> bool:
        """Whether a clip of ``confidence`` is accepted as known (``confidence >= value``; NaN never is)."""
        return not math.isnan(confidence) and confidence >= self.value
