"""One trial: build a method under its seed, fit it, choose its deployable threshold, score the test set once.

Every benchmark (the one trial loop, :func:`openmer.benchmarks.trials.run_trials`) and ``openmer
train`` (:mod:`openmer.training.run`) build each method with :func:`build_method` (one factory:
the method's config from its data and options, initial parameters drawn under a forked RNG seeded
with the trial's seed) and run it through :func:`run_trial`, which trains it with
:func:`openmer.training.fit` (model selection on known-class validation data only), chooses the
threshold from known-class validation or training confidences (HCEP Sec. 4.4.6, never test data)
and only then reads the test set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from openmer.errors import ConfigError
from openmer.methods.base import MethodConfig, OpenSetMethod, OpenSetScores
from openmer.methods.threshold import DEFAULT_ACCEPTANCE, Threshold, ThresholdSource
from openmer.training.config import TrainConfig
from openmer.training.engine import TrainResult, fit

if TYPE_CHECKING:  # the profile's type, for annotations only
    from openmer.backbones.factory import ProfileConfig

#: ``build(config, known_classes, encoders)``: a model to train instead of the registered class's
#: own (the ablation grid's HCEP variants, :mod:`openmer.benchmarks.ablation_models`)
Builder = Callable[[Any, Sequence[str], dict[str, Any]], "OpenSetMethod"]


def method_config(cls: type[OpenSetMethod], options: Mapping[str, Any], *, seed: int = 0,
                  input_dim: int | None = None, blocks: Sequence[tuple[str, int]] = (),
                  profile: ProfileConfig | None = None, modalities: Sequence[str] = ()) -> MethodConfig:
    """The config of method class ``cls`` on its data: what ``cls.consumes`` needs from the data,
    then ``options`` (extra config fields, e.g. a preset's) on top.

    A method on features gets ``input_dim`` (default: the sum of the block widths) and ``blocks``
    (the modality layout ``(name, width)`` of the concatenated features; none: one block); a method
    on clips gets ``profile``, ``modalities`` and ``seed``.

    Raises:
        ConfigError: an option the method's config does not have, or a bad value.
    """
    if cls.consumes == "features":
        width = sum(w for _, w in blocks) if input_dim is None else input_dim
        data: dict[str, Any] = {"input_dim": width, **({"blocks": list(blocks)} if blocks else {})}
    else:
        data = {"profile": None if profile is None else profile.to_dict(), "modalities": list(modalities), "seed": seed}
    return cls.config_class.from_dict({**data, **options})


def build_method(cls: type[OpenSetMethod], config: MethodConfig, known: Sequence[str], *, seed: int,
                 encoders: dict[str, Any] | None = None, build: Builder | None = None) -> OpenSetMethod:
    """The one factory of a trial's method: ``cls.build(config, known, ...)`` (or ``build``), its
    initial parameters drawn from ``seed`` under a forked RNG (equal seeds give equal methods; the
    global RNG state is left as it was).

    Args:
        cls: the method's class (resolved once from :data:`openmer.methods.METHODS`).
        config: its config (:func:`method_config`).
        known: the known classes, in class-index order.
        seed: the trial's seed.
        encoders: the profile's frozen encoders (``None``: a method on clips loads its own); the
            methods on features get the text encoder (Open-VCLIP's zero-shot class weights).
        build: a model to build instead of ``cls`` (:data:`Builder`).

    Raises:
        ConfigError: the method cannot run with ``config`` and ``encoders``
            (:meth:`~openmer.methods.base.OpenSetMethod.unavailable`, the reason in the message).
    """
    context = {"encoders": encoders, "text_encoder": (encoders or {}).get("text")}
    reason = cls.unavailable(config, **context)
    if reason:
        raise ConfigError(f"{cls.name} cannot run here: it {reason}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls.build(config, known, **context) if build is None else build(config, known, encoders or {})

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
class TrialOutcome:
    """What :func:`run_trial` returns.

    Attributes:
        fit: the training result (selected epoch, history).
        threshold: the deployable threshold (:class:`~openmer.methods.threshold.Threshold`; its
            ``source`` says which known-class clips it was chosen on, ``"train"`` or ``"val"``).
        threshold_confidence: (M,) the known-class confidences it was chosen from (never test).
        scores: the test set's scores (``None`` without a test set).
        features: (N_test, E) the features the test scores come from (for t-SNE, HCEP Figs. 6
            and 8), from the same pass; ``None`` when not asked for, without a test set, or for a
            method without features.
    """

    fit: TrainResult
    threshold: Threshold
    threshold_confidence: np.ndarray
    scores: OpenSetScores | None = None
    features: Tensor | None = None


def _batches(data: Any, batch_size: int | None) -> list[Any]:
    return data.batches() if batch_size is None else data.batches(batch_size)


def run_trial(method: OpenSetMethod, train: Any, val: Any, cfg: TrainConfig, *, test: Any = None,
              threshold: ThresholdRule = ThresholdRule(), batch_size: int | None = None,
              test_features: bool = False, clean_train: Any = None, **fit_options: Any) -> TrialOutcome:
    """Train a built method, choose its deployable threshold, then score the test set once, in one pass.

    The threshold is :func:`openmer.methods.threshold.choose_threshold` at ``threshold.acceptance``
    on the known-class confidences of ``threshold.source`` (:class:`ThresholdRule`; HCEP Sec. 4.4.6):
    validation, or training when the trial has no validation sample; never test samples.

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
        clean_train: the training set without augmentation (``--augment``, :mod:`openmer.data.augment`),
            what the threshold reads when it is chosen on training clips; ``None``: ``train``.
        **fit_options: passed to :func:`openmer.training.fit` (``run_dir``, ``resume``,
            ``progress``, ``identity``).

    Returns:
        :class:`TrialOutcome`; ``method`` is fitted, with its selected weights.

    Raises:
        As :func:`openmer.training.fit`; ValueError: an acceptance outside (0, 1].
    """
    has_val = val is not None and len(val) > 0
    result = fit(method, train, _batches(val, batch_size) if has_val else None, cfg, **fit_options)
    source: ThresholdSource = "val" if threshold.source == "val" and has_val else "train"
    known = val if source == "val" else (train if clean_train is None else clean_train)  # never augmented clips
    confidence = method.score_all(_batches(known, batch_size)).confidence.numpy()
    scores, features = None, None
    if test is not None:  # scored in the same pass as the known-class confidences; never read by the threshold
        scores, features = method.score_all_with_features(_batches(test, batch_size), features=test_features)
    confidence = confidence.astype(np.float64)
    chosen = Threshold.from_confidences(confidence, threshold.acceptance, source)
    return TrialOutcome(result, chosen, confidence, scores, features)
