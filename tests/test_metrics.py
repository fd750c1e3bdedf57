"""Tests for openmer.metrics: hand-computed cases, scikit-learn references, ARPL oracle, properties, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from openmer.metrics import (
    OscrCurve,
    RocCurve,
    aupr_in,
    aupr_out,
    auroc,
    closed_set_accuracy,
    fpr_at_95_tpr,
    fpr_at_tpr,
    macro_f1,
    open_set_metrics,
    operating_point,
    oscr,
    oscr_curve,
    roc_curve,
)

_trapz = np.trapezoid if hasattr(np, "trapezoid") else np.trapz  # noqa: NPY201 - numpy 1 fallback


# ----------------------------------------------------------------------------- ARPL oracle
# Straight, slow port of iCGY96/ARPL core/evaluation.py (get_curve_online, metric_ood's AUROC
# and TNR, compute_oscr after its argmax step), kept as close to the original as possible.
# Only changes: single stype, copies before the in-place sorts, np.trapz -> _trapz, no printing.


def _arpl_get_curve_online(known, novel):
    known = np.array(known, dtype=float)  # ARPL sorts its arguments in place
    novel = np.array(novel, dtype=float)
    known.sort()
    novel.sort()
    num_k = known.shape[0]
    num_n = novel.shape[0]
    tp = -np.ones([num_k + num_n + 1], dtype=int)
    fp = -np.ones([num_k + num_n + 1], dtype=int)
    tp[0], fp[0] = num_k, num_n
    k, n = 0, 0
    for l in range(num_k + num_n):  # noqa: E741 (ARPL's name)
        if k == num_k:
            tp[l + 1 :] = tp[l]
            fp[l + 1 :] = np.arange(fp[l] - 1, -1, -1)
            break
        elif n == num_n:
            tp[l + 1 :] = np.arange(tp[l] - 1, -1, -1)
            fp[l + 1 :] = fp[l]
            break
        else:
            if novel[n] < known[k]:
                n += 1
                tp[l + 1] = tp[l]
                fp[l + 1] = fp[l] - 1
            else:
                k += 1
                tp[l + 1] = tp[l] - 1
                fp[l + 1] = fp[l]
    tpr95_pos = np.abs(tp / num_k - 0.95).argmin()
    tnr_at_tpr95 = 1.0 - fp[tpr95_pos] / num_n
    return tp, fp, tnr_at_tpr95


def _arpl_metric_ood(x1, x2):
    tp, fp, tnr_at_tpr95 = _arpl_get_curve_online(x1, x2)
    tpr = np.concatenate([[1.0], tp / tp[0], [0.0]])
    fpr = np.concatenate([[1.0], fp / fp[0], [0.0]])
    out = {"TNR": 100.0 * tnr_at_tpr95, "AUROC": 100.0 * (-_trapz(1.0 - fpr, tpr))}
    # AUIN / AUOUT, as metric_ood
    denom = (tp + fp).astype(float)
    denom[denom == 0.0] = -1.0
    pin_ind = np.concatenate([[True], denom > 0.0, [True]])
    pin = np.concatenate([[0.5], tp / denom, [0.0]])
    out["AUIN"] = 100.0 * (-_trapz(pin[pin_ind], tpr[pin_ind]))
    denom = (tp[0] - tp + fp[0] - fp).astype(float)
    denom[denom == 0.0] = -1.0
    pout_ind = np.concatenate([[True], denom > 0.0, [True]])
    pout = np.concatenate([[0.0], (fp[0] - fp) / denom, [0.5]])
    out["AUOUT"] = 100.0 * (_trapz(pout[pout_ind], 1.0 - fpr[pout_ind]))
    return out


def _arpl_compute_oscr(x1, x2, pred, labels):
    m_x1 = np.zeros(len(x1))
    m_x1[pred == labels] = 1
    k_target = np.concatenate((m_x1, np.zeros(len(x2))), axis=0)
    u_target = np.concatenate((np.zeros(len(x1)), np.ones(len(x2))), axis=0)
    predict = np.concatenate((x1, x2), axis=0)
    n = len(predict)
    CCR = [0 for x in range(n + 2)]
    FPR = [0 for x in range(n + 2)]
    idx = predict.argsort()
    s_k_target = k_target[idx]
    s_u_target = u_target[idx]
    for k in range(n - 1):
        CC = s_k_target[k + 1 :].sum()
        FP = s_u_target[k:].sum()
        CCR[k] = float(CC) / float(len(x1))
        FPR[k] = float(FP) / float(len(x2))
    CCR[n] = 0.0
    FPR[n] = 0.0
    CCR[n + 1] = 1.0
    FPR[n + 1] = 1.0
    ROC = sorted(zip(FPR, CCR, strict=True), reverse=True)
    OSCR = 0
    for j in range(n + 1):
        h = ROC[j][0] - ROC[j + 1][0]
        w = (ROC[j][1] + ROC[j + 1][1]) / 2.0
        OSCR = OSCR + h * w
    return OSCR


def _arpl_inputs(confidence, predictions, labels):
    """Our (N,) arrays -> ARPL's x1 (known conf), x2 (unknown conf), pred and labels of knowns."""
    confidence, predictions, labels = map(np.asarray, (confidence, predictions, labels))
    known = labels >= 0
    return confidence[known].astype(float), confidence[~known].astype(float), predictions[known], labels[known]


def _random_case(rng, n, n_classes=3, ties=True):
    labels = rng.integers(-1, n_classes, n)
    labels[0], labels[1] = 0, -1  # at least one known and one unknown
    predictions = rng.integers(0, n_classes, n)
    known = labels >= 0
    predictions[known] = np.where(rng.random(known.sum()) < 0.6, labels[known], predictions[known])
    confidence = rng.integers(0, 6, n).astype(float) if ties else rng.normal(size=n)
    return confidence, predictions, labels


# ----------------------------------------------------------------------------- hand-computed

# Shared small case with ties.
#   index:       0    1    2    3    4    5
#   confidence: 0.9  0.7  0.7  0.7  0.2  0.2
#   label:       0    1   -1    0   -1   -1      knowns {0,1,3}, unknowns {2,4,5}
#   prediction:  0    0    1    0    1    0      known 1 misclassified -> CCR max 2/3
CONF = [0.9, 0.7, 0.7, 0.7, 0.2, 0.2]
LABELS = [0, 1, -1, 0, -1, -1]
PREDS = [0, 0, 1, 0, 1, 0]


def test_auroc_hand_computed_with_ties():
    # Curve (FPR, TPR): thr inf (0,0); 0.9 (0,1/3); 0.7 (1/3,1); 0.2 (1,1).
    # Area = 1/3 * (1/3 + 1)/2 + 2/3 * 1 = 2/9 + 6/9 = 8/9.
    # Pair count: 0.9 beats 3 unknowns (3); each 0.7 known: tie 1/2 + two wins (2.5 each) -> 8/9.
    assert auroc(CONF, LABELS) == pytest.approx(8 / 9, abs=1e-15)
    assert auroc(CONF, LABELS) == pytest.approx(roc_auc_score(np.array(LABELS) >= 0, CONF), abs=1e-15)


def test_auroc_arpl_hand_computed_with_ties():
    # ARPL's one-at-a-time walk counts a known-unknown tie as 0: (3 + 2 + 2) / 9 = 7/9.
    assert auroc(CONF, LABELS, arpl_compatible=True) == pytest.approx(7 / 9, abs=1e-15)


def test_oscr_hand_computed_with_ties():
    # Curve (FPR, CCR): thr inf (0,0); 0.9 (0,1/3); 0.7 (1/3,2/3); 0.2 (1,2/3).
    # Area = 0 + 1/3 * (1/3 + 2/3)/2 + 2/3 * 2/3 = 1/6 + 4/9 = 11/18.
    assert oscr(CONF, PREDS, LABELS) == pytest.approx(11 / 18, abs=1e-15)


def test_oscr_all_tied_is_half_accuracy():
    # One distinct value: curve (0,0) -> (1, acc); area = acc / 2. Here acc = 1/2 -> 1/4.
    assert oscr([1.0] * 4, [0, 0, 0, 0], [0, 1, -1, -1]) == pytest.approx(0.25, abs=1e-15)
    assert auroc([1.0] * 4, [0, 1, -1, -1]) == 0.5


def test_oscr_arpl_hand_computed_perfect_separation():
    # confidence 0,1,2,3 with labels -1,-1,0,0, both knowns correct. Exact OSCR = 1.
    # ARPL points (k=0..2): (FPR of positions >= k, CCR of positions > k) = (1,1), (1/2,1), (0,1/2),
    # then (0,0), (0,0), (1,1). Area = 1/2 * 1 + 1/2 * (1 + 1/2)/2 = 0.875.
    conf, preds, labels = [0.0, 1.0, 2.0, 3.0], [0, 0, 0, 0], [-1, -1, 0, 0]
    assert oscr(conf, preds, labels) == 1.0
    assert oscr(conf, preds, labels, arpl_compatible=True) == 0.875


def test_aupr_hand_computed_with_ties():
    # AUPR-in, knowns positive, groups by decreasing confidence:
    #   0.9 {K}: TP 1, FP 0, precision 1, recall +1/3; 0.7 {K, U, K}: TP 3, FP 1, precision 3/4, recall +2/3;
    #   0.2 {U, U}: recall +0.  AP = 1/3 * 1 + 2/3 * 3/4 = 5/6.
    assert aupr_in(CONF, LABELS) == pytest.approx(5 / 6, abs=1e-15)
    # AUPR-out, unknowns positive, groups by increasing confidence:
    #   0.2 {U, U}: precision 1, recall +2/3; 0.7: TP 3, FP 2, precision 3/5, recall +1/3; 0.9: +0.
    #   AP = 2/3 + 1/3 * 3/5 = 13/15.
    assert aupr_out(CONF, LABELS) == pytest.approx(13 / 15, abs=1e-15)
    # all tied: one operating point, precision = prevalence
    assert aupr_in([1.0] * 4, [0, 1, 1, -1]) == 0.75
    assert aupr_out([1.0] * 4, [0, 1, 1, -1]) == 0.25


def test_curves_hand_computed():
    roc = roc_curve(CONF, LABELS)
    assert isinstance(roc, RocCurve)
    np.testing.assert_array_equal(roc.thresholds, [np.inf, 0.9, 0.7, 0.2])
    np.testing.assert_allclose(roc.fpr, [0, 0, 1 / 3, 1], atol=1e-15)
    np.testing.assert_allclose(roc.tpr, [0, 1 / 3, 1, 1], atol=1e-15)
    curve = oscr_curve(CONF, PREDS, LABELS)
    assert isinstance(curve, OscrCurve)
    np.testing.assert_array_equal(curve.thresholds, roc.thresholds)
    np.testing.assert_array_equal(curve.fpr, roc.fpr)
    np.testing.assert_allclose(curve.ccr, [0, 1 / 3, 2 / 3, 2 / 3], atol=1e-15)


def test_fpr95_known_case():
    # 20 knowns at 1..20, 5 unknowns at 0.5, 2.5, 10.5, 18.5, 30. TPR >= 0.95 needs 19 knowns:
    # first reached at threshold 2, which accepts the unknowns 2.5, 10.5, 18.5, 30 -> FPR = 4/5.
    conf = np.r_[np.arange(1.0, 21.0), [0.5, 2.5, 10.5, 18.5, 30.0]]
    labels = np.r_[np.zeros(20, int), -np.ones(5, int)]
    assert fpr_at_95_tpr(conf, labels) == 0.8
    assert fpr_at_tpr(conf, labels, 0.95) == 0.8
    assert fpr_at_tpr(conf, labels, 1.0) == 0.8  # threshold 1 adds no unknown
    assert fpr_at_tpr(conf, labels, 0.0) == 0.0  # threshold +inf
    # ARPL: TPR closest to 0.95 on its staircase -> same point here; its TNR is 20%.
    assert open_set_metrics(conf, np.zeros(25, int), labels, arpl_compatible=True)["fpr95"] == 0.8
    assert _arpl_metric_ood(conf[:20], conf[20:])["TNR"] == pytest.approx(20.0)


def test_fpr_at_tpr_accepts_tied_group_together():
    # knowns 3, 2, 2, 1; unknowns 2, 0. TPR >= 0.5 first at threshold 2 (TPR 3/4), which also
    # accepts the unknown at 2 -> FPR 1/2.
    conf, labels = [3, 2, 2, 1, 2, 0], [0, 0, 1, 1, -1, -1]
    assert fpr_at_tpr(conf, labels, 0.5) == 0.5
    assert fpr_at_tpr(conf, labels, 0.25) == 0.0


def test_operating_point_hand_computed():
    # threshold 0.7 accepts indices 0..3: knowns 0,1,3 (all 3), unknown 2 (1 of 3), correct 0,3.
    assert operating_point(CONF, PREDS, LABELS, 0.7) == pytest.approx(
        {"tpr": 1.0, "fpr": 1 / 3, "ccr": 2 / 3, "accepted_rate": 4 / 6}
    )
    assert operating_point(CONF, PREDS, LABELS, np.inf) == {
        "tpr": 0.0,
        "fpr": 0.0,
        "ccr": 0.0,
        "accepted_rate": 0.0,
    }
    everything = operating_point(CONF, PREDS, LABELS, -np.inf)
    assert everything["fpr"] == everything["tpr"] == everything["accepted_rate"] == 1.0
    assert everything["ccr"] == closed_set_accuracy(PREDS, LABELS)


def test_operating_point_matches_curves(rng):
    conf, preds, labels = _random_case(rng, 80)
    roc = roc_curve(conf, labels)
    curve = oscr_curve(conf, preds, labels)
    for i, t in enumerate(roc.thresholds):
        point = operating_point(conf, preds, labels, t)
        assert point["tpr"] == roc.tpr[i]
        assert point["fpr"] == roc.fpr[i]
        assert point["ccr"] == curve.ccr[i]


def test_closed_set_accuracy_ignores_unknowns():
    # knowns: (0,0) ok, (1,0) wrong, (0,0) ok -> 2/3; unknown predictions don't matter.
    assert closed_set_accuracy(PREDS, LABELS) == pytest.approx(2 / 3, abs=1e-15)
    assert closed_set_accuracy([1, 1], [1, -1]) == 1.0  # no unknown needed


def test_open_set_metrics_keys_and_values():
    out = open_set_metrics(CONF, PREDS, LABELS)
    assert set(out) == {"auroc", "oscr", "aupr_in", "aupr_out", "closed_acc", "macro_f1", "fpr95"}
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in out.values())
    assert out["auroc"] == auroc(CONF, LABELS)
    assert out["oscr"] == oscr(CONF, PREDS, LABELS)
    assert out["closed_acc"] == closed_set_accuracy(PREDS, LABELS)
    assert out["macro_f1"] == macro_f1(PREDS, LABELS)
    assert out["fpr95"] == fpr_at_95_tpr(CONF, LABELS)
    assert out["aupr_in"] == aupr_in(CONF, LABELS) and out["aupr_out"] == aupr_out(CONF, LABELS)


def test_return_types_are_python_floats():
    assert type(auroc(CONF, LABELS)) is float
    assert type(oscr(CONF, PREDS, LABELS)) is float
    assert type(auroc(CONF, LABELS, arpl_compatible=True)) is float
    assert type(oscr(CONF, PREDS, LABELS, arpl_compatible=True)) is float
    assert type(fpr_at_95_tpr(CONF, LABELS)) is float
    assert type(macro_f1(PREDS, LABELS)) is float
    assert type(closed_set_accuracy(PREDS, LABELS)) is float


# ----------------------------------------------------------------------------- scikit-learn references


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n_values", [2, 5, 1000])
def test_auroc_equals_sklearn_with_heavy_ties(seed, n_values):
    rng = np.random.default_rng(seed)
    n = 700
    labels = rng.integers(-2, 4, n)
    conf = rng.integers(0, n_values, n).astype(float) * 0.1
    assert abs(auroc(conf, labels) - roc_auc_score(labels >= 0, conf)) <= 1e-12


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n_values", [2, 5, 1000])
def test_aupr_equals_sklearn_average_precision_with_ties(seed, n_values):
    rng = np.random.default_rng(seed)
    n = 700
    labels = rng.integers(-2, 4, n)
    conf = rng.integers(0, n_values, n).astype(float) * 0.1
    assert abs(aupr_in(conf, labels) - average_precision_score(labels >= 0, conf)) <= 1e-12
    assert abs(aupr_out(conf, labels) - average_precision_score(labels < 0, -conf)) <= 1e-12


@pytest.mark.parametrize("seed", range(5))
def test_roc_curve_equals_sklearn(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(-1, 3, 300)
    conf = rng.integers(0, 30, 300) / 7.0
    ours = roc_curve(conf, labels)
    fpr, tpr, thr = sk_roc_curve(labels >= 0, conf, drop_intermediate=False)
    np.testing.assert_array_equal(ours.fpr, fpr)
    np.testing.assert_array_equal(ours.tpr, tpr)
    np.testing.assert_array_equal(ours.thresholds, thr)


@pytest.mark.parametrize("seed", range(5))
def test_macro_f1_equals_sklearn(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(-1, 6, 60)
    labels[labels == 3] = 4  # class 3 absent from labels ...
    preds = rng.integers(0, 6, 60)  # ... but maybe predicted; class 5 maybe never predicted
    known = labels >= 0
    expected = f1_score(labels[known], preds[known], average="macro", zero_division=0.0)
    assert macro_f1(preds, labels, num_classes=6) == pytest.approx(expected, abs=1e-12)


def test_macro_f1_hand_computed():
    # knowns: labels 0,0,1,1 preds 0,1,1,1 -> class 0: TP1 FN1 FP0 -> F1 2/3; class 1: TP2 FP1 -> 4/5.
    assert macro_f1([0, 1, 1, 1, 0], [0, 0, 1, 1, -1]) == pytest.approx((2 / 3 + 4 / 5) / 2, abs=1e-15)


# ----------------------------------------------------------------------------- ARPL oracle


@pytest.mark.parametrize("ties", [True, False])
@pytest.mark.parametrize("seed", range(8))
def test_arpl_mode_matches_straight_port(seed, ties):
    rng = np.random.default_rng(seed)
    conf, preds, labels = _random_case(rng, int(rng.integers(2, 200)), ties=ties)
    x1, x2, pred_k, labels_k = _arpl_inputs(conf, preds, labels)
    ref = _arpl_metric_ood(x1, x2)
    # bit-for-bit: the vectorised code performs the same float operations in the same order
    assert 100.0 * auroc(conf, labels, arpl_compatible=True) == ref["AUROC"]
    assert oscr(conf, preds, labels, arpl_compatible=True) == _arpl_compute_oscr(x1, x2, pred_k, labels_k)
    out = open_set_metrics(conf, preds, labels, arpl_compatible=True)
    assert out["fpr95"] == pytest.approx(1.0 - ref["TNR"] / 100.0, abs=1e-12)
    assert 100.0 * aupr_in(conf, labels, arpl_compatible=True) == ref["AUIN"]
    assert 100.0 * aupr_out(conf, labels, arpl_compatible=True) == ref["AUOUT"]
    assert (out["aupr_in"], out["aupr_out"]) == (aupr_in(conf, labels, arpl_compatible=True),
                                                 aupr_out(conf, labels, arpl_compatible=True))
    assert out["oscr"] == oscr(conf, preds, labels, arpl_compatible=True)


def test_arpl_mode_agrees_with_exact_auroc_without_ties(rng):
    conf, _, labels = _random_case(rng, 150, ties=False)
    assert auroc(conf, labels, arpl_compatible=True) == pytest.approx(auroc(conf, labels), abs=1e-12)


def test_arpl_oscr_off_by_one_without_ties(rng):
    # Documented: ARPL OSCR = exact - m / (2 n_known n_unknown), m = unknowns immediately followed
    # (ascending confidence) by a correctly classified known.
    conf, preds, labels = _random_case(rng, 150, ties=False)
    order = np.argsort(conf)
    unknown, correct = (labels < 0)[order], ((labels >= 0) & (preds == labels))[order]
    m = np.count_nonzero(unknown[:-1] & correct[1:])
    n_known = np.count_nonzero(labels >= 0)
    expected = oscr(conf, preds, labels) - m / (2 * n_known * (labels.size - n_known))
    assert oscr(conf, preds, labels, arpl_compatible=True) == pytest.approx(expected, abs=1e-12)


# ----------------------------------------------------------------------------- properties

_TRANSFORMS = {
    "exp": lambda x: np.exp(x / 10.0),
    "cubic": lambda x: x**3 + x,
    "tanh": lambda x: np.tanh(x / 100.0),
    "affine": lambda x: 3.0 * x - 7.0,
}


@st.composite
def _cases(draw):
    n = draw(st.integers(2, 60))
    labels = np.array(draw(st.lists(st.integers(-1, 2), min_size=n, max_size=n)))
    assume((labels >= 0).any() and (labels < 0).any())
    conf = np.array(draw(st.lists(st.integers(-50, 50), min_size=n, max_size=n)), dtype=float)
    preds = np.array(draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)))
    return conf, preds, labels


_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])


@_SETTINGS
@given(case=_cases(), name=st.sampled_from(sorted(_TRANSFORMS)))
def test_invariant_under_strictly_increasing_transform(case, name):
    conf, preds, labels = case
    moved = _TRANSFORMS[name](conf)
    assume(np.unique(moved).size == np.unique(conf).size)  # still strictly increasing in floats
    for arpl in (False, True):
        assert auroc(moved, labels, arpl_compatible=arpl) == auroc(conf, labels, arpl_compatible=arpl)
        assert oscr(moved, preds, labels, arpl_compatible=arpl, num_classes=3) == oscr(
            conf, preds, labels, arpl_compatible=arpl, num_classes=3
        )
    assert fpr_at_95_tpr(moved, labels) == fpr_at_95_tpr(conf, labels)
    assert aupr_in(moved, labels) == aupr_in(conf, labels)
    assert aupr_out(moved, labels) == aupr_out(conf, labels)


@_SETTINGS
@given(case=_cases())
def test_oscr_below_auroc_and_bounds(case):
    conf, preds, labels = case
    a = auroc(conf, labels)
    o = oscr(conf, preds, labels, num_classes=3)
    assert 0.0 <= o <= a <= 1.0
    assert abs(a - roc_auc_score(labels >= 0, conf)) <= 1e-12
    # perfect classification makes OSCR equal AUROC
    perfect = np.where(labels >= 0, labels, 0)
    assert oscr(conf, perfect, labels) == a


@_SETTINGS
@given(case=_cases())
def test_arpl_mode_matches_port_property(case):
    conf, preds, labels = case
    x1, x2, pred_k, labels_k = _arpl_inputs(conf, preds, labels)
    assert 100.0 * auroc(conf, labels, arpl_compatible=True) == _arpl_metric_ood(x1, x2)["AUROC"]
    assert oscr(conf, preds, labels, arpl_compatible=True, num_classes=3) == _arpl_compute_oscr(
        x1, x2, pred_k, labels_k
    )


# ----------------------------------------------------------------------------- errors

_BOTH = [
    lambda c, p, y: auroc(c, y),
    lambda c, p, y: auroc(c, y, arpl_compatible=True),
    oscr,
    lambda c, p, y: oscr(c, p, y, arpl_compatible=True),
    lambda c, p, y: roc_curve(c, y),
    oscr_curve,
    lambda c, p, y: fpr_at_95_tpr(c, y),
    lambda c, p, y: operating_point(c, p, y, 0.5),
    open_set_metrics,
    lambda c, p, y: aupr_in(c, y),
    lambda c, p, y: aupr_out(c, y, arpl_compatible=True),
]
_WITH_PREDS = [_BOTH[i] for i in (2, 3, 5, 7, 8)] + [
    lambda c, p, y: closed_set_accuracy(p, y),
    lambda c, p, y: macro_f1(p, y),
]
_ALL = _BOTH + _WITH_PREDS[-2:]


@pytest.mark.parametrize("fn", _ALL)
def test_error_no_known_sample(fn):
    with pytest.raises(ValueError, match="no known sample"):
        fn([0.1, 0.2], [0, 0], [-1, -1])


@pytest.mark.parametrize("fn", _BOTH)
def test_error_no_unknown_sample(fn):
    with pytest.raises(ValueError, match="no unknown sample"):
        fn([0.1, 0.2], [0, 1], [0, 1])


@pytest.mark.parametrize("fn", _ALL)
def test_error_length_mismatch(fn):
    with pytest.raises(ValueError, match="length mismatch"):
        fn([0.1, 0.2, 0.3], [0, 0, 0], [0, -1])


@pytest.mark.parametrize("fn", _WITH_PREDS)
def test_error_predictions_length_mismatch(fn):
    with pytest.raises(ValueError, match="length mismatch"):
        fn([0.1, 0.2], [0, 0, 0], [0, -1])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("fn", _BOTH)
def test_error_non_finite_confidence(fn, bad):
    with pytest.raises(ValueError, match="confidence must be finite"):
        fn([0.1, bad, 0.3], [0, 0, 0], [0, -1, 1])


@pytest.mark.parametrize("bad_pred", [-1, 2])
@pytest.mark.parametrize("fn", _WITH_PREDS)
def test_error_prediction_out_of_range(fn, bad_pred):
    # labels give K = 2, so valid predictions are 0 and 1
    with pytest.raises(ValueError, match=r"predictions must be known-class indices in \[0, 1\]"):
        fn([0.1, 0.2, 0.3], [0, bad_pred, 1], [0, 1, -1])


def test_num_classes_widens_and_checks_range():
    assert oscr([0.1, 0.2, 0.3], [0, 2, 1], [0, 1, -1], num_classes=3) == pytest.approx(0.0)
    with pytest.raises(ValueError, match=r"in \[0, 2\]"):
        oscr([0.1, 0.2, 0.3], [0, 3, 1], [0, 1, -1], num_classes=3)
    with pytest.raises(ValueError, match="out of range for num_classes=1"):
        closed_set_accuracy([0, 0], [0, 1], num_classes=1)
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        macro_f1([0, 0], [0, 1], num_classes=0)


@pytest.mark.parametrize("fn", _ALL)
def test_error_empty_input(fn):
    with pytest.raises(ValueError, match="empty"):
        fn([], [], [])


@pytest.mark.parametrize("fn", _ALL)
def test_error_not_1d(fn):
    with pytest.raises(ValueError, match="must be 1-D"):
        fn([[0.1, 0.2]], [[0, 0]], [[0, -1]])


def test_error_non_integer_labels_and_predictions():
    with pytest.raises(ValueError, match="labels must be integer-valued"):
        auroc([0.1, 0.2], [0.5, -1])
    with pytest.raises(ValueError, match="labels must be integers, got a boolean"):
        auroc([0.1, 0.2], [True, False])
    with pytest.raises(ValueError, match="predictions must be integer-valued"):
        oscr([0.1, 0.2], [0.5, 0], [0, -1])
    with pytest.raises(ValueError, match="confidence must be real numbers"):
        auroc(["a", "b"], [0, -1])
    assert auroc([0.1, 0.2], [-1.0, 0.0]) == 1.0  # float labels holding integers are fine


def test_error_bad_tpr_and_threshold():
    with pytest.raises(ValueError, match=r"tpr must be a fraction in \[0, 1\]"):
        fpr_at_tpr(CONF, LABELS, 1.5)
    with pytest.raises(ValueError, match="threshold must not be NaN"):
        operating_point(CONF, PREDS, LABELS, float("nan"))


def test_inputs_not_modified():
    conf = np.array([0.3, 0.1, 0.2, 0.1])
    labels = np.array([0, -1, 1, -1])
    before = conf.copy()
    open_set_metrics(conf, [0, 0, 1, 0], labels, arpl_compatible=True)
    np.testing.assert_array_equal(conf, before)


def test_no_warnings_on_degenerate_macro_f1():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert macro_f1([1, 1], [0, 0], num_classes=2) == 0.0  # 0 never predicted, 1 never true
