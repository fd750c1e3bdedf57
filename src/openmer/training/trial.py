"""One trial: fit a built method, choose its deployable threshold, score the test set once.

Every benchmark (:mod:`openmer.benchmarks.runner` for methods on cached features,
:mod:`openmer.benchmarks.media` for methods on clips) and ``openmer train``
(:mod:`openmer.training.run`) run a trial through :func:`run_trial`. The caller builds the method
under its seed (the seed order stays the caller's) and chooses the data; the trial trains it with
:func:`openmer.training.fit` (model selection on known-class validation data only), chooses the
threshold from known-class validation or training confidences (HCEP Sec. 4.4.6, never test data)
and only then reads the test set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from torch import Tensor

from openmer.methods.base import OpenSetScores
from openmer.methods.threshold import DEFAULT_ACCEPTANCE, choose_threshold
from openmer.training.config import TrainConfig
from openmer.training.engine import TrainResult, fit

#: whose known-class confidences set the deployable threshold
ThresholdSource = Literal["train", "val"]


@dataclass(frozen=True)
class ThresholdRule:
    """How a trial's deployable threshold is chosen (HCEP Sec. 4.4.6).

    Attributes:
        acceptance: the fraction of the known-class confidences to accept, in (0, 1]
            (openmer's default 0.90; the paper reports 0.60-0.66 on MAFW).
        source: ``"val"``: the known-class validation samples, or the training samples when the
            trial has no validation sample (the benchmarks' rule); ``"train"``: the training
            samples (the paper's rule, ``openmer train``'s default).
    """

    acceptance: float = DEFAULT_ACCEPTANCE
    source: ThresholdSource = "val"


@dataclass(frozen=True)
class TrialThreshold:
    """A trial's deployable threshold and the known-class confidences it was chosen from.

    Attributes:
        value: accept a sample as known when ``confidence >= value``.
        source: ``"validation"`` or ``"training"`` (never test).
        confidence: (M,) the known-class confidences the threshold was chosen from.
    """

    value: float
    source: str
    confidence: np.ndarray


@dataclass(frozen=True)
class TrialOutcome:
    """What :func:`run_trial` returns.

    Attributes:
        fit: the training result (selected epoch, history).
        threshold: the deployable threshold and its known-class confidences.
        scores: the test set's scores (``None`` without a test set).
        features: (N_test, E) the features the test scores come from (for t-SNE, HCEP Figs. 6
            and 8), from the same pass; ``None`` when not asked for, without a test set, or for a
            method without features.
    """

    fit: TrainResult
    threshold: TrialThreshold
    scores: OpenSetScores | None = None
    features: Tensor | None = None


def _batches(data: Any, batch_size: int | None) -> list[Any]:
    return data.batches() if batch_size is None else data.batches(batch_size)


def deployable_threshold(method: Any, val: Any, train: Any, *, rule: ThresholdRule = ThresholdRule(),
                         batch_size: int | None = None) -> TrialThreshold:
    """The threshold a trained method would be deployed with (HCEP Sec. 4.4.6).

    :func:`openmer.methods.threshold.choose_threshold` at ``rule.acceptance`` on the confidences
    of the known-class samples of ``rule.source``: validation (training when the trial has no
    validation sample) or training. Test samples are never used. Both splits hold known classes only.

    Args:
        method: a fitted :class:`~openmer.methods.base.OpenSetMethod`.
        val, train: the trial's validation and training sets (anything with ``len`` and
            ``batches()``: :class:`~openmer.data.tensors.FeatureDataset`,
            :class:`~openmer.data.clips.ClipDataset`); ``val`` may be ``None`` or empty.
        rule: the acceptance and the source.
        batch_size: passed to ``batches`` (``None``: the set's default).
    """
    use_val = rule.source == "val" and val is not None and len(val) > 0
    source, data = ("validation", val) if use_val else ("training", train)
    conf = method.score_all(_batches(data, batch_size)).confidence.numpy().astype(np.float64)
    return TrialThreshold(choose_threshold(conf, rule.acceptance), source, conf)


def run_trial(method: Any, train: Any, val: Any, cfg: TrainConfig, *, test: Any = None,
              threshold: ThresholdRule = ThresholdRule(), batch_size: int | None = None,
              test_features: bool = False, **fit_options: Any) -> TrialOutcome:
    """Train a built method, choose its deployable threshold, then score the test set once.

    Args:
        method: a built, unfitted :class:`~openmer.methods.base.OpenSetMethod` (its initial
            parameters drawn by the caller, under the trial's seed).
        train: the training set (a ``Dataset``; :func:`~openmer.training.fit` batches and
            shuffles it with ``cfg``).
        val: the validation set, known classes only (``None`` or empty: no model selection, the
            last epoch is kept).
        cfg: the schedule and the seed of the training loop.
        test: the test set (known and unknown classes), scored after training; ``None``: none.
        threshold: how the deployable threshold is chosen (:class:`ThresholdRule`).
        batch_size: batch size of the scoring passes (validation, threshold, test); ``None``:
            each set's own default (:class:`~openmer.data.tensors.FeatureDataset`: 1024 rows).
        test_features: also return the test features of the scoring pass
            (:meth:`~openmer.methods.base.OpenSetMethod.score_all_with_features`).
        **fit_options: passed to :func:`openmer.training.fit` (``run_dir``, ``resume``,
            ``progress``, ``identity``).

    Returns:
        :class:`TrialOutcome`; ``method`` is fitted, with its selected weights.

    Raises:
        As :func:`openmer.training.fit`; ValueError: an acceptance outside (0, 1].
    """
    has_val = val is not None and len(val) > 0
    result = fit(method, train, _batches(val, batch_size) if has_val else None, cfg, **fit_options)
    chosen = deployable_threshold(method, val, train, rule=threshold, batch_size=batch_size)
    scores, features = None, None
    if test is not None:
        scores, features = method.score_all_with_features(_batches(test, batch_size), features=test_features)
    return TrialOutcome(result, chosen, scores, features)
