"""Feature-level open-set benchmark: every (method, modalities, openness level, split) trial.

A trial trains a method on the known classes of the training groups, selects on the validation
groups (known classes only), chooses its deployable threshold from the validation confidences
(HCEP Sec. 4.4.6), then scores the test groups (known + unknown classes) once: one
:func:`openmer.training.trial.run_trial` per trial.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from pydantic import Field

from openmer import __version__
from openmer.config import OpenmerConfig
from openmer.errors import ConfigError
from openmer.methods.base import OpenSetMethod
from openmer.methods.feature_method import feature_blocks
from openmer.methods.inputs import FeatureInputs
from openmer.methods.posthoc import POSTHOC_SCORES, posthoc_scores
from openmer.methods.registry import get_method, list_methods
from openmer.metrics import open_set_metrics
from openmer.protocol import OpenSetSplit, Protocol, open_set_subsets
from openmer.reporting.scores import RunScores
from openmer.training import TrainConfig
from openmer.training.trial import TrialThreshold, run_trial

#: ``progress(done, total, message)``
Progress = Callable[[int, int, str], None]


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


def consumes_features(method: str) -> bool:
    """True when ``method`` trains on precomputed feature vectors (it declares ``consumes =
    "features"``), False when it runs through the encoders.

    Raises:
        ConfigError: unknown method (the message lists the registered ones).
    """
    return get_method(method).consumes == "features"


def machine_description() -> dict[str, Any]:
    """Machine facts for a report (measured, not typed in)."""
    import os

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "openmer": __version__,
        "git_commit": _CODE_COMMIT,
    }


def _git_commit() -> str | None:
    """The checkout's commit (``+dirty`` with uncommitted changes), or ``None`` outside a git checkout."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


#: the commit of the code this process imported (read once at import, so that edits or commits
#: made while a long benchmark runs do not change what its results say it ran)
_CODE_COMMIT = _git_commit()


def select_levels(levels: Sequence[str] | None, protocol: Protocol) -> tuple[str, ...]:
    """The openness levels to run: ``levels`` (e.g. ``("O(5:2)",)``), or every level of ``protocol``.

    Raises:
        ConfigError: a level that ``protocol`` does not have (the message lists those it has).
    """
    if not levels:
        return tuple(protocol.levels)
    missing = [lv for lv in levels if lv not in protocol.levels]
    if missing:
        raise ConfigError(f"openness level(s) {', '.join(missing)} not in the {protocol.dataset} protocol; "
                          f"it has {', '.join(protocol.levels)}")
    return tuple(levels)


def stratified_cap(indices: np.ndarray, labels: np.ndarray, cap: int | None, seed: int) -> np.ndarray:
    """At most ``cap`` of ``indices``, drawn per class in proportion to its share (seeded).

    Args:
        indices: (n,) candidate rows (a trial's training rows).
        labels: (N,) label of every row, indexed by ``indices``.
        cap: the most rows to keep (``None`` or >= n: all of them).
        seed: the draw's seed (a trial's ``seed + split``, the same for every method of the trial).

    Returns:
        The kept rows, sorted.
    """
    if cap is None or len(indices) <= cap:
        return indices
    rng = np.random.default_rng(seed)
    y = labels[indices]
    keep = []
    for c in np.unique(y):
        members = indices[y == c]
        n = max(1, round(cap * len(members) / len(indices)))
        keep.append(rng.choice(members, size=min(n, len(members)), replace=False))
    return np.sort(np.concatenate(keep))


def budget_note(cfg: TrainConfig, max_clips: int | None = None) -> str:
    """A method's training budget in one line, for the ``budget`` column of results.md.

    >>> budget_note(TrainConfig(epochs=10, optimizer="adam", lr=1e-3, batch_size=16))
    '10 ep adam lr 0.001, step 30 x0.1, batch 16, select val_acc/1 ep, all clips'
    """
    scales = "".join(f" {g} x{v:g}" for g, v in sorted(cfg.lr_scales.items()))
    clips = "all clips" if max_clips is None else f"<= {max_clips} clips"
    return (f"{cfg.epochs} ep {cfg.optimizer} lr {cfg.lr:g}{scales}, step {cfg.step_size} x{cfg.gamma:g}, "
            f"batch {cfg.batch_size}, select {cfg.select_metric}/{cfg.eval_every} ep, {clips}")


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
    """Run every trial of a feature-level benchmark.

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
    """
    levels = select_levels(cfg.levels, protocol)
    not_features = [m for m in cfg.methods if get_method(m).consumes != "features"]
    if not_features:
        raise ConfigError(f"method(s) {not_features} do not train on cached features; feature methods: "
                          f"{list(list_methods(consumes='features'))}")
    trials = [(lv, sp, m, mods) for lv in levels for sp in protocol.levels[lv][: cfg.n_splits]
              for mods in cfg.modality_sets for m in cfg.methods]
    records, runs = [], []
    left_out: dict[str, str] = {}
    t0 = time.perf_counter()
    labels = list(labels)
    for i, (level, split, method_name, mods) in enumerate(trials):
        method_cls = get_method(method_name)
        mcfg = method_cls.config_class.from_dict(
            {"input_dim": sum(int(features[m].shape[1]) for m in mods), "blocks": feature_blocks(features, mods),
             **cfg.method_options.get(method_name, {})})
        reason = method_cls.unavailable(mcfg, text_encoder=text_encoder)
        if reason:
            left_out[f"{method_name} {'+'.join(mods)}"] = reason
            continue
        if progress:
            progress(i, len(trials), f"{method_name} {'+'.join(mods)} {level} split {split.index}")
        sub = open_set_subsets(labels, groups, split, protocol.partition)
        sub["train"] = stratified_cap(sub["train"], sub["labels"], cfg.max_train_per_trial, cfg.train.seed + split.index)
        sets = FeatureInputs(features, present, mods, sub["labels"]).parts({p: sub[p] for p in ("train", "val", "test")})
        train, val, test = sets["train"], sets["val"], sets["test"]
        torch.manual_seed(cfg.train.seed + split.index)
        method = method_cls.build(mcfg, split.known_classes, text_encoder=text_encoder)
        tcfg = cfg.train.model_copy(update={"seed": cfg.train.seed + split.index})
        trial = run_trial(method, train, val, tcfg, test=test)
        s = trial.scores
        names = [labels[j] for j in sub["test"]]
        record, run = trial_result(method_name, mods, split, s.confidence.numpy(), s.prediction.numpy(),
                                   test.y.numpy(), names, threshold=trial.threshold)
        budget = budget_note(tcfg, cfg.max_train_per_trial)
        records.append({**record, "score": method.score_name, "budget": budget})
        runs.append(run)
        records += posthoc_records(method, method_name, mods, split, cfg.posthoc, train.batches(), test.batches(),
                                   test.y.numpy(), names, budget=budget)
    if progress:
        progress(len(trials), len(trials), "done")
    meta = benchmark_meta(cfg, protocol, t0, trials=len(trials), left_out=left_out)
    return BenchmarkResult(records=records, runs=runs, meta=meta)


def posthoc_records(method: OpenSetMethod, method_name: str, modalities: Sequence[str], split: OpenSetSplit,
                    scores: Sequence[str], train: Iterable[Any], test: Iterable[Any], labels: np.ndarray,
                    label_names: Sequence[str], *, budget: str) -> list[dict[str, Any]]:
    """One record ``"<method>[<score>]"`` (tagged ``score``, ``posthoc_of``, ``budget``) per post-hoc
    score in ``scores`` on a trained method's classifier head (:func:`~openmer.methods.posthoc.posthoc_scores`,
    fitted on the ``train`` batches where the score needs it); ``[]`` when ``scores`` is empty or
    the method has no ``head``."""
    if not scores or not method.has_head():
        return []
    out = []
    for score, (conf, pred) in posthoc_scores(method, train, test, scores).items():
        rec, _ = trial_result(f"{method_name}[{score}]", modalities, split, conf.numpy(), pred.numpy(), labels, label_names)
        out.append({**rec, "score": score, "posthoc_of": method_name, "budget": budget})
    return out


def trial_result(method: str, modalities: Sequence[str], split: OpenSetSplit, confidence: np.ndarray,
                 prediction: np.ndarray, labels: np.ndarray, class_names: list[str],
                 features: np.ndarray | None = None,
                 threshold: TrialThreshold | None = None) -> tuple[dict[str, Any], RunScores]:
    """The metrics record and the saved scores of one trial (test split scored once).

    With ``threshold``, the record carries its value (``"threshold"``) and the saved scores carry
    the value, its source and the known-class confidences it was chosen from (for Figs. 10/11).
    """
    metrics = open_set_metrics(confidence, prediction, labels, num_classes=split.n_known)
    record = {"method": method, "modalities": "+".join(modalities), "level": split.label,
              "openness": split.openness, "split": split.index, **metrics}
    if threshold is not None:
        record["threshold"] = threshold.value
    run = RunScores(method=method, modalities=tuple(modalities), level=split.label, openness=split.openness,
                    split=split.index, known_classes=list(split.known_classes),
                    unknown_classes=list(split.unknown_classes), confidence=confidence, prediction=prediction,
                    labels=labels, class_names=class_names, features=features,
                    threshold=None if threshold is None else threshold.value,
                    threshold_confidence=None if threshold is None else threshold.confidence,
                    threshold_source=None if threshold is None else threshold.source)
    return record, run


def benchmark_meta(cfg: OpenmerConfig, protocol: Protocol, t0: float, **extra: Any) -> dict[str, Any]:
    """How a benchmark was made: dataset, protocol (version, seed, partition), config, machine, time."""
    return {
        "dataset": getattr(cfg, "dataset", protocol.dataset),
        "protocol": {"name": protocol.dataset, "version": protocol.version, "seed": protocol.seed,
                     "partition": protocol.partition.to_dict(), "note": protocol.note},
        "config": cfg.to_dict(),
        "machine": machine_description(),
        "seconds": round(time.perf_counter() - t0, 1),
        **extra,
    }
