"""``openmer evaluate``: open-set metrics of a run on labelled data, with figures.

Known classes = the run's; every other label is unknown. The threshold is the run's deployable
one (or, with ``score=``, a post-hoc score's, chosen on the run's training clips).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from openmer.data.clips import ClipDataset
from openmer.data.manifest import Manifest, label_indices, near_known_labels
from openmer.datasets import resolve_data
from openmer.errors import DataError, OpenmerWarning
from openmer.inference.loaded import LoadedRun, load_run
from openmer.inference.scoring import posthoc_rescore
from openmer.methods.threshold import Threshold
from openmer.paths import default_cache_dir
from openmer.runs import read_run_info

if TYPE_CHECKING:
    from openmer.backbones.specs import ProfileConfig

__all__ = ["evaluate"]


def _operating_points(conf: np.ndarray, pred: np.ndarray, labels: np.ndarray, run: LoadedRun,
                      th: Threshold) -> dict[str, Any]:
    """Known acceptance, TPR, FPR and CCR on the test clips at threshold ``th`` and at each acceptance target."""
    from openmer.metrics import operating_point

    k = len(run.known_classes)

    def at(threshold: float) -> dict[str, float]:
        op = operating_point(conf, pred, labels, threshold, num_classes=k)
        return {"threshold": threshold, "known_acceptance": op["tpr"], **op}

    return {
        "threshold": th.value,
        "threshold_source": th.source,
        "threshold_acceptance": th.acceptance,
        "at_threshold": at(th.value),
        "at_acceptance": [{"acceptance": p.acceptance, **at(p.threshold)} for p in th.at_acceptance],
    }


def evaluate(run_dir: str | Path | LoadedRun, data: str | Path, *, out: str | Path | None = None,
             test_only: bool = True, allow_outside_root: bool = False, score: str | None = None,
             profile: ProfileConfig | None = None) -> dict[str, Any]:
    """Open-set metrics of a run on a dataset; known classes = the run's, every other label unknown.

    Which clips are scored: with ``test_only``, a built-in dataset's protocol test groups, or a
    manifest's ``test`` rows when it has a ``split`` column. Clips whose id the run was trained
    or selected on (``run.json`` ``samples``) are always left out, with a warning and the count
    in ``n_excluded_seen``.

    Writes ``evaluation.json`` and figures (ROC, OSCR, confidence histogram, confusion) to ``out``,
    whose writability is checked before any clip is scored.

    ``score``: a post-hoc score (:data:`~openmer.methods.posthoc.POSTHOC_SCORES`) on the run's
    trained classifier head instead of the confidence it was trained with; its statistics and its
    threshold (at the run's acceptance) come from the run's training clips (``run.json``
    ``samples["train"]``), which must be rows of ``data`` (:func:`posthoc_rescore`). ``None``:
    the run's own confidence and stored threshold.

    ``profile``: the profile the run was trained with, when it is not a registered profile
    (:func:`~openmer.inference.loaded.load_run`).

    Returns:
        ``{"auroc", "oscr", "aupr_in", "aupr_out", "closed_acc", "macro_f1", "fpr95", "threshold", "threshold_source",
        "threshold_acceptance", "at_threshold": {...}, "at_acceptance": [...], "n_known",
        "n_unknown", "n_excluded_seen", "clips"}``; ``at_*`` hold ``known_acceptance`` (= TPR, the
        fraction of test knowns accepted), ``tpr``, ``fpr``, ``ccr`` and ``accepted_rate``.

    Raises:
        CheckpointError: the run folder cannot be read (naming the file).
        DataError: the data give no known or no unknown clip to score.
        OutputError: ``out`` cannot be written.
    """
    from openmer.files import atomic_write_json, check_writable, json_safe
    from openmer.metrics import open_set_metrics
    from openmer.protocol import partition_indices
    from openmer.reporting.figures import plot_confidence_hist, plot_confusion, plot_oscr, plot_roc
    from openmer.reporting.scores import RunScores

    if not isinstance(run_dir, LoadedRun):
        read_run_info(run_dir)  # a missing or damaged run folder fails before anything is created
    if out is not None:
        check_writable(out)
    run = run_dir if isinstance(run_dir, LoadedRun) else load_run(run_dir, profile=profile)
    run_dir = run.run_dir
    manifest, partition = resolve_data(data, allow_outside_root=allow_outside_root)
    train_clips = _training_clips(run, manifest, data) if score is not None else None
    clips_rule = "all rows"
    if test_only and partition is not None:
        manifest = manifest.subset(partition_indices([s.group or s.id for s in manifest], partition)["test"])
        clips_rule = "protocol test groups"
    elif test_only and manifest.has_splits:
        manifest = manifest.subset(manifest.split_indices()["test"])
        clips_rule = "manifest split column: test rows"
    manifest = manifest.subset([i for i, s in enumerate(manifest) if s.label])
    known = run.known_classes
    for label, match in near_known_labels(manifest.labels, known).items():
        warnings.warn(OpenmerWarning(f"{manifest.source or data}: label {label!r} differs from the known class "
                                     f"{match!r} only in case or spaces; it is scored as unknown"), stacklevel=2)
    seen = run.info.seen_ids
    keep = [i for i, s in enumerate(manifest) if s.id not in seen]
    n_seen = len(manifest) - len(keep)
    if n_seen:
        warnings.warn(OpenmerWarning(f"left out {n_seen} clip(s) of {data} that {Path(run_dir).name} was trained or "
                                     "selected on (same ids as in its run.json)"), stacklevel=2)
        manifest = manifest.subset(keep)
    elif not seen and partition is None and not manifest.has_splits:
        warnings.warn(OpenmerWarning(f"{Path(run_dir)} does not record its training clips (an older run folder); "
                                     "make sure none of them is in the evaluation data"), stacklevel=2)
    labels = label_indices(manifest.labels, known)
    if (labels >= 0).sum() == 0 or (labels < 0).sum() == 0:
        n_known, n_unknown = int((labels >= 0).sum()), int((labels < 0).sum())
        raise DataError(manifest.source or data, f"evaluation needs both known-class and unknown-class clips "
                                                 f"({clips_rule}, {n_seen} seen clip(s) left out); found "
                                                 f"{n_known} known and {n_unknown} unknown")
    clips = run.clips(manifest, labels)
    if score is None or train_clips is None:
        s, threshold = run.score(clips, cache_dir=default_cache_dir()), run.info.threshold
    else:
        s, threshold = posthoc_rescore(run, score, clips, train_clips, cache_dir=default_cache_dir())
    conf, pred = s.confidence.numpy(), s.prediction.numpy()
    metrics: dict[str, Any] = open_set_metrics(conf, pred, labels, num_classes=len(known))
    metrics["score"] = score or run.method.score_name
    metrics.update(_operating_points(conf, pred, labels, run, threshold))
    metrics.update(n_known=int((labels >= 0).sum()), n_unknown=int((labels < 0).sum()), n_excluded_seen=n_seen,
                   clips=clips_rule)
    if out is not None:
        out = Path(out)
        atomic_write_json(out / "evaluation.json", json_safe(metrics), allow_nan=False)
        unknown_classes = sorted({lb for lb in manifest.labels if lb} - set(known))
        rs = RunScores(method=run.info.method, modalities=tuple(run.modalities),
                       level=f"O({len(known)}:{len(unknown_classes)})", openness=float("nan"), split=0,
                       known_classes=known, unknown_classes=unknown_classes, confidence=conf, prediction=pred,
                       labels=labels, class_names=[str(lb) for lb in manifest.labels], features=None,
                       threshold=threshold.value)
        name = Path(run_dir).name
        plot_roc([rs], out / "roc.png", f"ROC: {name} on {data}")
        plot_oscr([rs], out / "oscr.png", f"OSCR: {name} on {data}")
        plot_confidence_hist(rs, out / "confidence_hist.png", f"Confidence: {name} on {data}")
        plot_confusion(rs, out / "confusion_open.png", f"Open-set confusion: {name}", open_set=True,
                       threshold=threshold.value)
        if score is None and out.resolve().is_relative_to(Path(run_dir).resolve()):  # RUN/eval: the card's row
            from openmer.model_card import card_row, write_model_card

            corpus, held_out = str(data).partition("=")[0], "held-out speakers" if partition is not None else clips_rule
            write_model_card(run_dir, rows=[card_row(
                f"{corpus}, {held_out}", conf, pred, labels, threshold.value, num_classes=len(known),
                trained_on=run.info.data.source.partition("=")[0], tested_on=corpus, unknown_classes=unknown_classes)])
    return metrics


def _training_clips(run: LoadedRun, manifest: Manifest, data: str | Path) -> ClipDataset:
    """The run's training clips (``run.json`` ``samples["train"]``) among the rows of ``manifest``.

    Raises:
        DataError: the run records no training clips, or some are not rows of ``data``.
    """
    ids = list(run.info.samples.get("train", []))
    rows = {s.id: i for i, s in enumerate(manifest)}
    missing = [i for i in ids if i not in rows]
    if not ids or missing:
        raise DataError(manifest.source or data, f"--score fits the score and its threshold on the run's training "
                                                 f"clips; {len(missing) if ids else 'no'} of them "
                                                 f"{'are not rows of this data' if ids else 'are recorded in run.json'}"
                                                 f"{f' (e.g. {missing[0]!r})' if missing else ''}")
    train = manifest.subset([rows[i] for i in ids])
    labels = label_indices(train.labels, run.known_classes)
    return run.clips(train, labels)


