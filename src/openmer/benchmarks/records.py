"""A trial's records: its metrics, its post-hoc scores and its saved scores (one place for all
the benchmarks' rows, :func:`trial_records`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from torch import Tensor

from openmer.methods.threshold import Threshold
from openmer.metrics import open_set_metrics
from openmer.protocol import OpenSetSplit
from openmer.reporting.scores import RunScores
from openmer.training import TrainConfig
from openmer.training.trial import TrialOutcome


def trial_records(name: str, modalities: Sequence[str], split: OpenSetSplit, trial: TrialOutcome, own_score: str,
                  posthoc: Mapping[str, tuple[Tensor, Tensor]], labels: np.ndarray, label_names: list[str], *,
                  train_config: TrainConfig, max_train: int | None) -> tuple[list[dict[str, Any]], RunScores]:
    """The records of one trial and its saved scores: the method's own record (its confidence
    ``own_score``, its deployable threshold), then one ``"<name>[<score>]"`` record per post-hoc
    score on its head (tagged ``posthoc_of``), each with the trial's ``budget``.

    Args:
        name, modalities: the method's and the modalities' names in the records.
        split: the known/unknown split.
        trial: what :func:`~openmer.training.trial.run_trial` returned, its test set scored.
        own_score: the name of the method's own confidence (``method.score_name``).
        posthoc: post-hoc score name -> (confidence, prediction) on the test set
            (:func:`~openmer.methods.posthoc.posthoc_scores`).
        labels: (N_test,) known-class index or :data:`openmer.UNKNOWN`; ``label_names``: their names.
        train_config, max_train: the training budget (:func:`budget_note`).

    Raises:
        ValueError: ``trial`` has no test scores.
    """
    if trial.scores is None:
        raise ValueError("a benchmark trial scores its test set")
    budget = budget_note(train_config, max_train)
    f_m = trial.features
    rows = [(name, {"score": own_score}, trial.scores.confidence, trial.scores.prediction)]
    rows += [(f"{name}[{k}]", {"score": k, "posthoc_of": name}, conf, pred) for k, (conf, pred) in posthoc.items()]
    records, runs = [], []
    for row, tags, conf, pred in rows:
        own = row == name
        record, run = trial_result(row, modalities, split, conf.numpy(), pred.numpy(), labels, label_names,
                                   features=None if f_m is None or not own else f_m.numpy(),
                                   threshold=trial.threshold if own else None,
                                   threshold_confidence=trial.threshold_confidence if own else None)
        records.append({**record, **tags, "budget": budget})
        runs.append(run)
    return records, runs[0]


def budget_note(cfg: TrainConfig, max_clips: int | None = None) -> str:
    """A method's training budget in one line, for the ``budget`` column of results.md.

    >>> budget_note(TrainConfig(epochs=10, optimizer="adam", lr=1e-3, batch_size=16))
    '10 ep adam lr 0.001, step 30 x0.1, batch 16, select val_acc/1 ep, all clips'
    """
    scales = "".join(f" {g} x{v:g}" for g, v in sorted(cfg.lr_scales.items()))
    clips = "all clips" if max_clips is None else f"<= {max_clips} clips"
    return (f"{cfg.epochs} ep {cfg.optimizer} lr {cfg.lr:g}{scales}, step {cfg.step_size} x{cfg.gamma:g}, "
            f"batch {cfg.batch_size}, select {cfg.select_metric}/{cfg.eval_every} ep, {clips}")


def trial_result(method: str, modalities: Sequence[str], split: OpenSetSplit, confidence: np.ndarray,
                 prediction: np.ndarray, labels: np.ndarray, class_names: list[str] | None,
                 features: np.ndarray | None = None,
                 threshold: Threshold | None = None,
                 threshold_confidence: np.ndarray | None = None) -> tuple[dict[str, Any], RunScores]:
    """The metrics record and the saved scores of one trial (test split scored once).

    With ``threshold``, the record carries its value (``"threshold"``) and the saved scores carry
    the value, its source and ``threshold_confidence``, the known-class confidences it was chosen
    from (for Figs. 10/11).
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
                    threshold_confidence=None if threshold is None else threshold_confidence,
                    threshold_source=None if threshold is None else threshold.source)
    return record, run
