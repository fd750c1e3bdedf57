"""What every benchmark shares around the one trial loop: its result, its meta, and the
feature-level benchmark (a plan over :func:`openmer.benchmarks.trials.run_trials`).

A trial trains a method on the known classes of the training groups, selects on the validation
groups (known classes only), chooses its deployable threshold from the validation confidences
(HCEP Sec. 4.4.6), then scores the test groups (known + unknown classes) once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import Field

from openmer.benchmarks.trials import (  # noqa: F401  (budget_note, stratified_cap, trial_result: re-exported)
    MethodPlan,
    Progress,
    TrialData,
    TrialGroup,
    TrialPlan,
    benchmark_meta,
    budget_note,
    run_trials,
    stratified_cap,
    trial_result,
)
from openmer.config import OpenmerConfig
from openmer.errors import ConfigError
from openmer.methods.posthoc import POSTHOC_SCORES
from openmer.methods.registry import get_method, list_methods
from openmer.protocol import Protocol
from openmer.reporting.scores import RunScores
from openmer.training import TrainConfig


class FeatureBenchmarkConfig(OpenmerConfig):
    """What a feature-level benchmark runs.

    Attributes:
        methods: registered method names that consume cached features (default: all of them, in
            registration order).
        modality_sets: each a tuple of feature-table modalities, concatenated in that order; each
            method's config gets the block layout (``blocks``).
        levels: openness labels to run (``None`` = every level of the protocol).
        n_splits: splits per level (at most the protocol's).
        method_options: extra config fields per method name (e.g. ``{"arpl": {"weight_pl": 0.1}}``).
        posthoc: post-hoc scores computed on every trained classifier head as well (records named
            ``"<method>[<score>]"``, tagged ``posthoc_of``); ``()`` = none.
        max_train_per_trial: train on at most this many class-stratified, seeded training clips
            per trial (:func:`stratified_cap`, the same clips as HCEP's under a matched budget);
            ``None`` = all.
    """

    dataset: str
    methods: tuple[str, ...] = Field(default_factory=lambda: list_methods(consumes="features"))
    modality_sets: tuple[tuple[str, ...], ...]
    levels: tuple[str, ...] | None = None
    n_splits: int = Field(default=4, gt=0)
    train: TrainConfig = TrainConfig(epochs=60, optimizer="adam", lr=1e-3, batch_size=64, step_size=30, eval_every=5)
    method_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    posthoc: tuple[str, ...] = tuple(POSTHOC_SCORES)
    max_train_per_trial: int | None = None
    preset_note: str = ""


@dataclass
class BenchmarkResult:
    """Records (one per trial), the raw scores per trial, and how the run was made.

    ``sections``: extra ``(heading, markdown lines)`` for results.md
    (:func:`openmer.reporting.results.write_results`), e.g. a cross-corpus run's label vocabulary.
    """

    records: list[dict[str, Any]]
    runs: list[RunScores]
    meta: dict[str, Any] = field(default_factory=dict)
    sections: list[tuple[str, list[str]]] = field(default_factory=list)


def registered_methods() -> tuple[str, ...]:
    """Every registered method (:data:`openmer.methods.METHODS`), in registration order: the
    default method list of the benchmarks that run every method."""
    from openmer.methods import METHODS

    return tuple(METHODS)


def run_feature_benchmark(
    cfg: FeatureBenchmarkConfig,
    features: dict[str, np.ndarray],
    labels: Sequence[str],
    groups: Sequence[str],
    protocol: Protocol,
    *,
    present: dict[str, np.ndarray] | None = None,
    progress: Progress | None = None,
    text_encoder: Any = None,
) -> BenchmarkResult:
    """A feature-level benchmark: ``cfg.methods`` on every modality set, a plan over the one trial
    loop (:func:`openmer.benchmarks.trials.run_trials`).

    Args:
        cfg: what to run.
        features: modality name -> (N, D) float array, rows aligned with ``labels``/``groups``.
        labels: (N,) class names.
        groups: (N,) speaker/actor ids, partitioned by ``protocol.partition``.
        protocol: the openness levels, splits and group partition (:mod:`openmer.protocol`).
        present: modality name -> (N,) bool, False where a clip lacks the modality (``None``:
            every clip has every modality). Absent blocks are filled with the trial's training
            mean of the present rows (:func:`~openmer.data.feature_blocks.fill_absent_blocks`).
        progress: optional callback.
        text_encoder: the profile's frozen text encoder, handed to the methods that build on
            class sentences (Open-VCLIP's zero-shot class weights); ``None`` = none.

    Returns:
        :class:`BenchmarkResult` with metrics per trial (fractions in [0, 1]). A method that cannot
        run on a modality set (:meth:`~openmer.methods.base.OpenSetMethod.unavailable`) is left
        out of it, with the reason in ``meta["left_out"]["<method> <modalities>"]``.

    Raises:
        ConfigError: a method that does not train on feature vectors, an unknown level.
    """
    t0 = time.perf_counter()
    classes = [get_method(m) for m in cfg.methods]
    not_features = [c.name for c in classes if c.consumes != "features"]
    if not_features:
        raise ConfigError(f"method(s) {not_features} do not train on cached features; feature methods: "
                          f"{list(list_methods(consumes='features'))}")
    methods = tuple(MethodPlan(c, cfg.method_options.get(c.name, {}), cfg.train, cfg.max_train_per_trial, cfg.posthoc)
                    for c in classes)
    plan = TrialPlan(protocol, cfg.levels, cfg.n_splits, cfg.train.seed,
                     (TrialGroup(methods, cfg.modality_sets),))
    data = TrialData(list(labels), list(groups), features=features, present=present,
                     encoders={} if text_encoder is None else {"text": text_encoder})
    out = run_trials(plan, data, progress=progress)
    meta = benchmark_meta(cfg, protocol, t0, left_out=out.left_out)
    return BenchmarkResult(records=out.records, runs=out.runs, meta=meta)


