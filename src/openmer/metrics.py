"""Exact open-set metrics: AUROC, OSCR, AUPR-in/out, their curves, FPR at a TPR, closed-set scores.

Every function takes numpy array-likes and returns python floats (or NamedTuples of numpy
arrays for the curves). Conventions, shared with the rest of openmer:

* ``labels``: (N,) integers; ``labels < 0`` marks an unknown-class sample, ``0..K-1`` a
  known class. ``K = max(labels) + 1`` unless ``num_classes=`` is given.
* ``confidence``: (N,) finite floats, *higher = more likely a known class*. A sample is
  *accepted* (declared known) at threshold ``t`` when ``confidence >= t``.
* ``predictions``: (N,) integers in ``0..K-1``, the known class each sample is assigned to
  (unknown samples too: a closed-set classifier always names some known class).
* Results are fractions in [0, 1], never percentages.

Definitions (exact mode, the default)
-------------------------------------
Positives are the known samples. At a threshold ``t``:

* TPR = accepted knowns / all knowns,
* FPR = accepted unknowns / all unknowns,
* CCR = accepted knowns whose prediction equals their label / all knowns
  (correct classification rate, Dhamija et al., "Reducing Network Agnostophobia",
  NeurIPS 2018, Sec. 4).

The curves have one operating point per *distinct* confidence value (all samples that share
a value are accepted together), in order of decreasing threshold, preceded by the point at
threshold ``+inf`` where nothing is accepted, (FPR, TPR) = (FPR, CCR) = (0, 0). The last point
accepts everything: FPR = TPR = 1 and CCR = closed-set accuracy. AUROC and OSCR are the
trapezoidal areas under TPR(FPR) and CCR(FPR); a tie between a known and an unknown sample
therefore counts 1/2, exactly as in ``sklearn.metrics.roc_auc_score`` (which ``auroc``
equals). AUPR-in and AUPR-out are the *average precision* (step-wise area under the
precision-recall curve, no interpolation) with the knowns, respectively the unknowns ranked by
``-confidence``, as the positive class, on the same distinct-threshold points; they equal
``sklearn.metrics.average_precision_score``. The areas are accumulated in integer counts and divided
once, so they are the correctly rounded values of the exact rationals; strictly increasing transforms of
``confidence`` leave every result bit-for-bit unchanged. Everything is vectorised and costs
one sort, O(N log N).

ARPL-compatible mode (``arpl_compatible=True``)
-----------------------------------------------
Reproduces the numbers of the evaluation code of the ARPL reference implementation
(Chen et al., "Adversarial Reciprocal Points Learning for Open Set Recognition", TPAMI 2021;
repository iCGY96/ARPL, file ``core/evaluation.py``, functions ``get_curve_online``,
``metric_ood`` and ``compute_oscr``), vectorised but bit-for-bit equal to a straight port
(``tests/test_metrics.py`` keeps that port as the oracle). It differs from the exact mode in:

* **AUROC** (``metric_ood`` → ``get_curve_online``): the knowns and the unknowns are each sorted
  ascending and merged, removing *one sample at a time*; when a known and an unknown have the
  same confidence the known is removed first. Each step is a separate operating point, so a
  known-unknown tie counts 0 instead of 1/2 (the area is the fraction of pairs with the known
  strictly above the unknown). The area is ``-np.trapz(1 - fpr, tpr)`` on that staircase.
  Without ties it equals the exact AUROC (up to rounding of the float sum).
* **OSCR** (``compute_oscr``): the confidences of the knowns followed by those of the unknowns
  are sorted with ``np.argsort`` (default, unstable, kind), and point ``k`` (k = 0..N-2, in
  ascending order) takes CCR = correct knowns at sorted positions ``> k`` and FPR = unknowns at
  positions ``>= k``: an off-by-one, the sample at position ``k`` counts as accepted for the FPR
  but not for the CCR. Tied samples yield extra operating points whose order is whatever the
  argsort gives. Point ``N-1`` is left at (0, 0) (never computed) instead of the true top
  point, and (0, 0) and (1, 1) are added; the points are sorted by (FPR, CCR) descending
  and the area is summed left to right with the trapezoidal rule. The (1, 1) point adds no
  area (point 0 already has FPR = 1). Because of the off-by-one the ARPL OSCR is below the
  exact one even without ties: by ``m / (2 * n_known * n_unknown)``, where ``m`` counts the
  unknown samples immediately followed, in ascending confidence order, by a correctly
  classified known (a perfect detector with a perfect classifier scores
  ``1 - 1 / (2 * n_known * n_unknown)``, not 1). With ties it can be above or below.
* **AUPR-in / AUPR-out** (``metric_ood``'s ``AUIN`` / ``AUOUT``): trapezoidal areas under
  precision(recall) on the one-at-a-time staircase, with pseudo end points of precision 1/2 at
  recall 1 (AUIN) and recall 0 (AUOUT), skipping points whose precision is 0/0.
* **fpr95** (only in :func:`open_set_metrics`): ARPL reports ``TNR = 1 - FPR`` at the point of
  the one-at-a-time staircase whose TPR is *closest* to 0.95 (first such point); the ARPL mode
  returns that point's FPR. The exact mode takes the first distinct-threshold point whose
  TPR >= 0.95 (:func:`fpr_at_tpr`).
* ARPL multiplies by 100; this module always returns fractions.

``closed_acc`` and ``macro_f1`` do not depend on the mode.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "OscrCurve",
    "RocCurve",
    "aupr_in",
    "aupr_out",
    "auroc",
    "closed_set_accuracy",
    "fpr_at_95_tpr",
    "fpr_at_tpr",
    "macro_f1",
    "open_set_metrics",
    "operating_point",
    "oscr",
    "oscr_curve",
    "roc_curve",
]

# numpy >= 2.0 renamed trapz to trapezoid (same algorithm); keep numpy 1.26 working.
# (numpy 2's stubs have no trapz, and ruff's NPY201 asks for exactly this fallback on numpy 1.)
_trapezoid = np.trapezoid if hasattr(np, "trapezoid") else np.trapz  # type: ignore[attr-defined]  # noqa: NPY201


class RocCurve(NamedTuple):
    """ROC curve with one operating point per distinct confidence value.

    Attributes:
        fpr: (P,) float64, accepted unknowns / all unknowns; starts at 0, ends at 1.
        tpr: (P,) float64, accepted knowns / all knowns; starts at 0, ends at 1.
        thresholds: (P,) float64, strictly decreasing; point ``i`` accepts
            ``confidence >= thresholds[i]``; ``thresholds[0] == +inf``.
    """

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray


class OscrCurve(NamedTuple):
    """Open-set classification rate curve, CCR against FPR (Dhamija et al. 2018).

    Attributes:
        fpr: (P,) float64, accepted unknowns / all unknowns; starts at 0, ends at 1.
        ccr: (P,) float64, accepted and correctly classified knowns / all knowns; starts at 0,
            ends at the closed-set accuracy.
        thresholds: (P,) float64, as in :class:`RocCurve`.
    """

    fpr: np.ndarray
    ccr: np.ndarray
    thresholds: np.ndarray


# ----------------------------------------------------------------------------- validation


def _as_1d(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D of shape (N,), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: need at least one sample")
    return arr


def _check_lengths(**arrays: np.ndarray) -> None:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise ValueError(f"length mismatch: {shown} (all must have the same length N)")


def _as_int(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype == bool:
        raise ValueError(f"{name} must be integers, got a boolean array")
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.int64, copy=False)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must be integer-valued, got non-integer or non-finite values")
        return arr.astype(np.int64)
    raise ValueError(f"{name} must be integers, got dtype {arr.dtype}")


def _confidence(confidence: Any) -> np.ndarray:
    arr = _as_1d(confidence, "confidence")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
        raise ValueError(f"confidence must be real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(
            f"confidence must be finite: {int(bad.sum())} NaN/inf value(s), first at index {int(np.argmax(bad))}"
        )
    return arr


def _labels(labels: Any) -> np.ndarray:
    return _as_int(_as_1d(labels, "labels"), "labels")


def _num_classes(labels: np.ndarray, num_classes: int | None) -> int:
    top = int(labels.max()) + 1
    if num_classes is None:
        return top
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if top > num_classes:
        raise ValueError(f"labels contain class {top - 1}, out of range for num_classes={num_classes}")
    return int(num_classes)


def _predictions(predictions: Any, labels: np.ndarray, num_classes: int | None) -> np.ndarray:
    pred = _as_int(_as_1d(predictions, "predictions"), "predictions")
    _check_lengths(predictions=pred, labels=labels)
    k = _num_classes(labels, num_classes)
    bad = (pred < 0) | (pred >= k)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"predictions must be known-class indices in [0, {k - 1}] (K={k} known classes), "
            f"got {int(pred[i])} at index {i}"
        )
    return pred


def _require_both(is_known: np.ndarray) -> None:
    if not is_known.any():
        raise ValueError("no known sample (labels >= 0): the metric is undefined")
    if is_known.all():
        raise ValueError("no unknown sample (labels < 0): the metric is undefined")


def _require_known(is_known: np.ndarray) -> None:
    if not is_known.any():
        raise ValueError("no known sample (labels >= 0): the metric is undefined")


def _open_set_inputs(
    confidence: Any, labels: Any, predictions: Any = None, num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate and return (confidence float64, is_known bool, correct bool | None)."""
    conf = _confidence(confidence)
    lab = _labels(labels)
    _check_lengths(confidence=conf, labels=lab)
    is_known = lab >= 0
    _require_both(is_known)
    correct = None
    if predictions is not None:
        pred = _predictions(predictions, lab, num_classes)
        correct = is_known & (pred == lab)
    return conf, is_known, correct


# ----------------------------------------------------------------------------- exact curves


def _distinct_counts(
    conf: np.ndarray, is_known: np.ndarray, correct: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """Cumulative counts at each distinct threshold, thresholds decreasing.

    Returns (tp, fp, cc, thresholds), int64 counts of accepted knowns, accepted unknowns and
    accepted correct knowns, each with a leading 0 for the threshold ``+inf``.
    """
    order = np.argsort(conf, kind="stable")[::-1]
    c = conf[order]
    # last index of each run of equal values (c is sorted descending)
    ends = np.append(np.flatnonzero(c[1:] != c[:-1]), c.size - 1)
    tp = np.cumsum(is_known[order], dtype=np.int64)[ends]
    fp = (ends + 1).astype(np.int64) - tp
    zero = np.zeros(1, dtype=np.int64)
    cc = None
    if correct is not None:
        cc = np.concatenate([zero, np.cumsum(correct[order], dtype=np.int64)[ends]])
    thresholds = np.concatenate([[np.inf], c[ends]])
    return np.concatenate([zero, tp]), np.concatenate([zero, fp]), cc, thresholds


def _area(fp: np.ndarray, y: np.ndarray, n_unknown: int, n_known: int) -> float:
    """Trapezoidal area under y/n_known against fp/n_unknown, from integer counts."""
    # 2 * area * n_known * n_unknown is an integer; int64 holds it while n_known * n_unknown < 4.6e18.
    twice = int(np.sum(np.diff(fp) * (y[1:] + y[:-1])))
    return twice / (2 * n_known * n_unknown)


def _average_precision(pos: np.ndarray, neg: np.ndarray) -> float:
    """Average precision from per-group counts, groups in order of decreasing score.

    ``AP = sum_g (pos_g / P) * precision_g`` with ``precision_g = TP_g / (TP_g + FP_g)`` counted
    down to and including group ``g`` (``sklearn.metrics.average_precision_score``); a tied group
    is one operating point.
    """
    tp = np.cumsum(pos, dtype=np.int64)
    fp = np.cumsum(neg, dtype=np.int64)
    return float(np.sum(pos * (tp / (tp + fp))) / tp[-1])


def _aupr_exact(tp: np.ndarray, fp: np.ndarray) -> tuple[float, float]:
    """(AUPR-in, AUPR-out) from the cumulative counts of :func:`_distinct_counts`."""
    known, unknown = np.diff(tp), np.diff(fp)  # per distinct value, confidence decreasing
    return _average_precision(known, unknown), _average_precision(unknown[::-1], known[::-1])


def roc_curve(confidence: Any, labels: Any) -> RocCurve:
    """ROC curve of known (positive) against unknown samples, one point per distinct confidence.

    Args:
        confidence: (N,) finite floats, higher = more likely known.
        labels: (N,) integers, ``< 0`` for unknown samples.

    Returns:
        :class:`RocCurve` with P = (number of distinct confidences) + 1 points; the same
        fpr/tpr/thresholds as ``sklearn.metrics.roc_curve(labels >= 0, confidence,
        drop_intermediate=False)``.

    Raises:
        ValueError: if an input is empty or not 1-D, lengths differ, confidence has NaN/inf,
            labels are not integers, or there is no known or no unknown sample.
    """
    conf, is_known, _ = _open_set_inputs(confidence, labels)
    tp, fp, _, thresholds = _distinct_counts(conf, is_known, None)
    return RocCurve(fpr=fp / fp[-1], tpr=tp / tp[-1], thresholds=thresholds)


def oscr_curve(confidence: Any, predictions: Any, labels: Any, *, num_classes: int | None = None) -> OscrCurve:
    """OSCR curve, CCR against FPR, one point per distinct confidence (Dhamija et al. 2018).

    Args:
        confidence: (N,) finite floats, higher = more likely known.
        predictions: (N,) known-class indices in ``0..K-1``.
        labels: (N,) integers, ``< 0`` for unknown samples.
        num_classes: K; defaults to ``max(labels) + 1``.

    Returns:
        :class:`OscrCurve` with P = (number of distinct confidences) + 1 points.

    Raises:
        ValueError: as :func:`roc_curve`, and if a prediction is outside ``0..K-1``.
    """
    conf, is_known, correct = _open_set_inputs(confidence, labels, predictions, num_classes)
    tp, fp, cc, thresholds = _distinct_counts(conf, is_known, correct)
    assert cc is not None
    return OscrCurve(fpr=fp / fp[-1], ccr=cc / tp[-1], thresholds=thresholds)


# ----------------------------------------------------------------------------- ARPL mode


def _arpl_staircase(conf: np.ndarray, is_known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``tp``, ``fp`` arrays (N+1,) of ARPL ``get_curve_online``, vectorised.

    ARPL merges the ascending knowns and unknowns, removing a known first on ties
    (``novel[n] < known[k]`` is false), one sample per step, from (n_known, n_unknown) to (0, 0).
    """
    # ascending by value, knowns (key 0) before unknowns (key 1) at equal values
    order = np.lexsort((~is_known, conf))
    k = is_known[order]
    tp = np.concatenate([[k.sum()], k.sum() - np.cumsum(k)]).astype(int)
    u = ~k
    fp = np.concatenate([[u.sum()], u.sum() - np.cumsum(u)]).astype(int)
    return tp, fp


def _arpl_auroc(conf: np.ndarray, is_known: np.ndarray) -> float:
    tp, fp = _arpl_staircase(conf, is_known)
    tpr = np.concatenate([[1.0], tp / tp[0], [0.0]])
    fpr = np.concatenate([[1.0], fp / fp[0], [0.0]])
    return float(-_trapezoid(1.0 - fpr, tpr))


def _arpl_aupr(conf: np.ndarray, is_known: np.ndarray) -> tuple[float, float]:
    """ARPL ``metric_ood``'s ``AUIN`` and ``AUOUT`` (as fractions), vectorised."""
    tp, fp = _arpl_staircase(conf, is_known)
    tpr = np.concatenate([[1.0], tp / tp[0], [0.0]])
    fpr = np.concatenate([[1.0], fp / fp[0], [0.0]])
    denom = (tp + fp).astype(float)
    denom[denom == 0.0] = -1.0
    keep = np.concatenate([[True], denom > 0.0, [True]])
    pin = np.concatenate([[0.5], tp / denom, [0.0]])
    au_in = float(-_trapezoid(pin[keep], tpr[keep]))
    denom = (tp[0] - tp + fp[0] - fp).astype(float)
    denom[denom == 0.0] = -1.0
    keep = np.concatenate([[True], denom > 0.0, [True]])
    pout = np.concatenate([[0.0], (fp[0] - fp) / denom, [0.5]])
    au_out = float(_trapezoid(pout[keep], 1.0 - fpr[keep]))
    return au_in, au_out


def _arpl_fpr95(conf: np.ndarray, is_known: np.ndarray) -> float:
    tp, fp = _arpl_staircase(conf, is_known)
    pos = np.abs(tp / tp[0] - 0.95).argmin()
    return float(fp[pos] / fp[0])


def _arpl_oscr(conf: np.ndarray, is_known: np.ndarray, correct: np.ndarray) -> float:
    # ARPL's inputs: x1 = known confidences, x2 = unknown confidences, in dataset order.
    x1, x2 = conf[is_known], conf[~is_known]
    n_known, n_unknown = len(x1), len(x2)
    predict = np.concatenate((x1, x2))
    k_target = np.concatenate((correct[is_known].astype(np.float64), np.zeros(n_unknown)))
    u_target = np.concatenate((np.zeros(n_known), np.ones(n_unknown)))
    n = len(predict)
    idx = predict.argsort()  # default kind, as ARPL: fixes the order of tied samples
    s_k = k_target[idx]
    s_u = u_target[idx]
    # suffix sums: suffix[k] = sum(s[k:]), exact (integers in float64)
    suf_k = np.cumsum(s_k[::-1])[::-1]
    suf_u = np.cumsum(s_u[::-1])[::-1]
    ccr = np.zeros(n + 2)
    fpr = np.zeros(n + 2)
    # for k in range(n - 1): CC = s_k[k + 1:].sum(); FP = s_u[k:].sum()
    ccr[: n - 1] = suf_k[1:n] / float(n_known)
    fpr[: n - 1] = suf_u[: n - 1] / float(n_unknown)
    ccr[n + 1] = 1.0
    fpr[n + 1] = 1.0
    # sorted(zip(FPR, CCR), reverse=True)
    order = np.lexsort((ccr, fpr))[::-1]
    f, c = fpr[order], ccr[order]
    terms = (f[:-1] - f[1:]) * ((c[:-1] + c[1:]) / 2.0)
    # np.cumsum accumulates left to right, like ARPL's python loop (np.sum would pair up terms)
    return float(np.cumsum(terms)[-1])


# ----------------------------------------------------------------------------- public scalars


def auroc(confidence: Any, labels: Any, *, arpl_compatible: bool = False) -> float:
    """Area under the ROC curve of known (positive) against unknown samples.

    Args:
        confidence: (N,) finite floats, higher = more likely known.
        labels: (N,) integers, ``< 0`` for unknown samples.
        arpl_compatible: reproduce ARPL's ``metric_ood`` AUROC (ties count 0, see the module
            docstring) instead of the exact one.

    Returns:
        AUROC in [0, 1]. In the default mode it equals
        ``sklearn.metrics.roc_auc_score(labels >= 0, confidence)``: a known-unknown tie counts 1/2.

    Raises:
        ValueError: if an input is empty or not 1-D, lengths differ, confidence has NaN/inf,
            labels are not integers, or there is no known or no unknown sample.

    Example:
        >>> auroc([0.9, 0.5, 0.5, 0.1], [0, 1, -1, -1])
        0.875
    """
    conf, is_known, _ = _open_set_inputs(confidence, labels)
    if arpl_compatible:
        return _arpl_auroc(conf, is_known)
    tp, fp, _, _ = _distinct_counts(conf, is_known, None)
    return _area(fp, tp, int(fp[-1]), int(tp[-1]))


def oscr(
    confidence: Any,
    predictions: Any,
    labels: Any,
    *,
    arpl_compatible: bool = False,
    num_classes: int | None = None,
) -> float:
    """Open-set classification rate: area under CCR(FPR) (Dhamija et al., NeurIPS 2018).

    Args:
        confidence: (N,) finite floats, higher = more likely known.
        predictions: (N,) known-class indices in ``0..K-1``.
        labels: (N,) integers, ``< 0`` for unknown samples.
        arpl_compatible: reproduce ARPL's ``compute_oscr`` (one point per sample, off-by-one,
            see the module docstring) instead of the exact area.
        num_classes: K; defaults to ``max(labels) + 1``.

    Returns:
        OSCR in [0, 1]; in the default mode OSCR <= AUROC, with equality when every known
        is classified correctly.

    Raises:
        ValueError: as :func:`auroc`, and if a prediction is outside ``0..K-1``.

    Example:
        >>> oscr([0.9, 0.5, 0.5, 0.1], [0, 0, 1, 0], [0, 1, -1, -1])
        0.5
    """
    conf, is_known, correct = _open_set_inputs(confidence, labels, predictions, num_classes)
    assert correct is not None
    if arpl_compatible:
        return _arpl_oscr(conf, is_known, correct)
    tp, fp, cc, _ = _distinct_counts(conf, is_known, correct)
    assert cc is not None
    return _area(fp, cc, int(fp[-1]), int(tp[-1]))


def fpr_at_tpr(confidence: Any, labels: Any, tpr: float = 0.95) -> float:
    """FPR at the first operating point (highest threshold) whose TPR is at least ``tpr``.

    Operating points are those of :func:`roc_curve` (one per distinct confidence), so all
    samples tied at the chosen threshold are accepted together.

    Args:
        confidence: (N,) finite floats, higher = more likely known.
        labels: (N,) integers, ``< 0`` for unknown samples.
        tpr: target true positive rate (fraction of knowns accepted), in [0, 1].

    Returns:
        FPR in [0, 1].

    Raises:
        ValueError: as :func:`auroc`, and if ``tpr`` is not in [0, 1].
    """
    tpr = float(tpr)
    if not 0.0 <= tpr <= 1.0:
        raise ValueError(f"tpr must be a fraction in [0, 1], got {tpr}")
    curve = roc_curve(confidence, labels)
    i = int(np.argmax(curve.tpr >= tpr))  # the last point has tpr == 1, so one always exists
    return float(curve.fpr[i])


def fpr_at_95_tpr(confidence: Any, labels: Any) -> float:
    """``fpr_at_tpr(confidence, labels, 0.95)``: the usual FPR95 (fraction, lower is better)."""
    return fpr_at_tpr(confidence, labels, 0.95)


def _aupr(confidence: Any, labels: Any, arpl_compatible: bool) -> tuple[float, float]:
    conf, is_known, _ = _open_set_inputs(confidence, labels)
    if arpl_compatible:
        return _arpl_aupr(conf, is_known)
    tp, fp, _, _ = _distinct_counts(conf, is_known, None)
    return _aupr_exact(tp, fp)


def aupr_in(confidence: Any, labels: Any, *, arpl_compatible: bool = False) -> float:
    """Area under the precision-recall curve with the *known* samples as positives (AUPR-in).

    Args:
        confidence: (N,) finite floats, higher = more likely known.
        labels: (N,) integers, ``< 0`` for unknown samples.
        arpl_compatible: reproduce ARPL's ``metric_ood`` ``AUIN`` (trapezoids on the one-at-a-time
            staircase, see the module docstring) instead of the average precision.

    Returns:
        AUPR-in in [0, 1]. In the default mode it equals
        ``sklearn.metrics.average_precision_score(labels >= 0, confidence)``; a chance-level
        detector scores about the fraction of knowns, not 1/2.

    Raises:
        ValueError: as :func:`auroc`.

    Example:
        >>> aupr_in([0.9, 0.5, 0.5, 0.1], [0, 1, -1, -1])
        0.8333333333333333
    """
    return _aupr(confidence, labels, arpl_compatible)[0]


def aupr_out(confidence: Any, labels: Any, *, arpl_compatible: bool = False) -> float:
    """Area under the precision-recall curve with the *unknown* samples as positives, ranked by ``-confidence``.

    Args:
        confidence: (N,) finite floats, higher = more likely known.
        labels: (N,) integers, ``< 0`` for unknown samples.
        arpl_compatible: reproduce ARPL's ``metric_ood`` ``AUOUT`` instead of the average precision.

    Returns:
        AUPR-out in [0, 1]. In the default mode it equals
        ``sklearn.metrics.average_precision_score(labels < 0, -confidence)``.

    Raises:
        ValueError: as :func:`auroc`.

    Example:
        >>> aupr_out([0.9, 0.5, 0.5, 0.1], [0, 1, -1, -1])
        0.8333333333333333
    """
    return _aupr(confidence, labels, arpl_compatible)[1]


def closed_set_accuracy(predictions: Any, labels: Any, *, num_classes: int | None = None) -> float:
    """Accuracy of ``predictions`` on the known samples (``labels >= 0``); unknowns are ignored.

    Args:
        predictions: (N,) known-class indices in ``0..K-1``.
        labels: (N,) integers, ``< 0`` for unknown samples.
        num_classes: K; defaults to ``max(labels) + 1``.

    Returns:
        Fraction of known samples whose prediction equals their label.

    Raises:
        ValueError: if an input is empty or not 1-D, lengths differ, values are not integers,
            a prediction is outside ``0..K-1``, or there is no known sample.
    """
    lab = _labels(labels)
    _require_known(lab >= 0)
    pred = _predictions(predictions, lab, num_classes)
    known = lab >= 0
    return int(np.count_nonzero(pred[known] == lab[known])) / int(np.count_nonzero(known))


def macro_f1(predictions: Any, labels: Any, num_classes: int | None = None) -> float:
    """Macro-averaged F1 of ``predictions`` on the known samples (``labels >= 0``).

    The average runs over the classes that occur among the known samples' labels or
    predictions (scikit-learn's default for ``f1_score(..., average="macro")``); a class's F1
    is ``2 TP / (2 TP + FP + FN)``, 0 for a class that is predicted but absent or present but
    never predicted.

    Args:
        predictions: (N,) known-class indices in ``0..K-1``.
        labels: (N,) integers, ``< 0`` for unknown samples.
        num_classes: K, used to check the range of ``predictions``; defaults to ``max(labels) + 1``.

    Returns:
        Macro-F1 in [0, 1]; equals
        ``sklearn.metrics.f1_score(labels[known], predictions[known], average="macro")``.

    Raises:
        ValueError: as :func:`closed_set_accuracy`.
    """
    lab = _labels(labels)
    _require_known(lab >= 0)
    pred = _predictions(predictions, lab, num_classes)
    known = lab >= 0
    y, p = lab[known], pred[known]
    classes = np.union1d(y, p)
    k = int(classes.max()) + 1
    tp = np.bincount(y[y == p], minlength=k)[classes]
    n_true = np.bincount(y, minlength=k)[classes]
    n_pred = np.bincount(p, minlength=k)[classes]
    f1 = 2.0 * tp / (n_true + n_pred)  # 2TP + FP + FN = n_true + n_pred > 0 for every class listed
    return float(np.mean(f1))


def operating_point(
    confidence: Any, predictions: Any, labels: Any, threshold: float, *, num_classes: int | None = None
) -> dict[str, float]:
    """Rates at one threshold (accept = ``confidence >= threshold``), e.g. a deployed threshold.

    Args:
        confidence: (N,) finite floats, higher = more likely known.
        predictions: (N,) known-class indices in ``0..K-1``.
        labels: (N,) integers, ``< 0`` for unknown samples.
        threshold: the acceptance threshold (any non-NaN float; ``+inf`` accepts nothing).
        num_classes: K; defaults to ``max(labels) + 1``.

    Returns:
        ``{"tpr": accepted knowns / knowns, "fpr": accepted unknowns / unknowns,
        "ccr": accepted correct knowns / knowns, "accepted_rate": accepted samples (known or unknown) / N}``;
        the last is the fraction of *all* samples declared known at this threshold.

    Raises:
        ValueError: as :func:`oscr`, and if ``threshold`` is NaN.
    """
    threshold = float(threshold)
    if math.isnan(threshold):
        raise ValueError("threshold must not be NaN")
    conf, is_known, correct = _open_set_inputs(confidence, labels, predictions, num_classes)
    assert correct is not None
    accepted = conf >= threshold
    n_known = int(np.count_nonzero(is_known))
    n_unknown = conf.size - n_known
    return {
        "tpr": int(np.count_nonzero(accepted & is_known)) / n_known,
        "fpr": int(np.count_nonzero(accepted & ~is_known)) / n_unknown,
        "ccr": int(np.count_nonzero(accepted & correct)) / n_known,
        "accepted_rate": int(np.count_nonzero(accepted)) / conf.size,
    }


def open_set_metrics(
    confidence: Any,
    predictions: Any,
    labels: Any,
    *,
    arpl_compatible: bool = False,
    num_classes: int | None = None,
) -> dict[str, float]:
    """All headline metrics at once.

    Args:
        confidence: (N,) finite floats, higher = more likely known.
        predictions: (N,) known-class indices in ``0..K-1``.
        labels: (N,) integers, ``< 0`` for unknown samples.
        arpl_compatible: compute ``auroc``, ``oscr``, ``aupr_in``, ``aupr_out`` and ``fpr95`` as
            ARPL's ``core/evaluation.py`` does (see the module docstring).
        num_classes: K; defaults to ``max(labels) + 1``.

    Returns:
        ``{"auroc", "oscr", "aupr_in", "aupr_out", "closed_acc", "macro_f1", "fpr95"}``, fractions
        in [0, 1].

    Raises:
        ValueError: as :func:`oscr`.
    """
    conf, is_known, correct = _open_set_inputs(confidence, labels, predictions, num_classes)
    assert correct is not None
    if arpl_compatible:
        auroc_value = _arpl_auroc(conf, is_known)
        oscr_value = _arpl_oscr(conf, is_known, correct)
        fpr95 = _arpl_fpr95(conf, is_known)
        aupr = _arpl_aupr(conf, is_known)
    else:
        tp, fp, cc, _ = _distinct_counts(conf, is_known, correct)
        assert cc is not None
        n_known, n_unknown = int(tp[-1]), int(fp[-1])
        auroc_value = _area(fp, tp, n_unknown, n_known)
        oscr_value = _area(fp, cc, n_unknown, n_known)
        fpr95 = float(fp[np.argmax(tp / n_known >= 0.95)] / n_unknown)
        aupr = _aupr_exact(tp, fp)
    return {
        "auroc": auroc_value,
        "oscr": oscr_value,
        "aupr_in": aupr[0],
        "aupr_out": aupr[1],
        "closed_acc": closed_set_accuracy(predictions, labels, num_classes=num_classes),
        "macro_f1": macro_f1(predictions, labels, num_classes),
        "fpr95": fpr95,
    }
