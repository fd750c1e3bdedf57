"""Tests for openmer.reporting.figures: every figure writes a readable PNG of the expected size."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from openmer.metrics import operating_point
from openmer.reporting import figures as F
from openmer.reporting.scores import RunScores

EMOTIONS = ["neutral", "calm", "happy", "sad", "angry", "fearful"]


def _run(seed: int, method: str = "msp", n_known: int = 4, split: int = 0, n: int = 60, features: bool = True):
    rng = np.random.default_rng(seed)
    known, unknown = EMOTIONS[:n_known], EMOTIONS[n_known:]
    names = rng.choice(EMOTIONS, size=n)
    labels = np.array([known.index(c) if c in known else -1 for c in names])
    conf = np.where(labels >= 0, rng.normal(0.7, 0.15, n), rng.normal(0.45, 0.15, n))
    pred = np.where((labels >= 0) & (rng.random(n) < 0.7), labels, rng.integers(0, n_known, n))
    centers = rng.normal(size=(len(EMOTIONS), 5)) * 3
    feats = centers[[EMOTIONS.index(c) for c in names]] + rng.normal(size=(n, 5)) if features else None
    k, u = n_known, len(EMOTIONS) - n_known
    return RunScores(
        method=method, modalities=("face_au", "audio"), level=f"O({k}:{u})", openness=1 - np.sqrt(k / (k + u)),
        split=split, known_classes=known, unknown_classes=unknown, confidence=conf, prediction=pred, labels=labels,
        class_names=list(names), features=feats, threshold=0.55,
    )


@pytest.fixture(scope="module")
def runs() -> list[RunScores]:
    return [_run(10 * k + s, n_known=k, split=s) for k in (4, 2) for s in range(2)]


def _check_png(path: Path, size_inches: tuple[float, float] = F.FIGSIZE) -> None:
    assert path.is_file() and path.stat().st_size > 1000
    image = mpimg.imread(path)
    w, h = size_inches
    assert image.shape[:2] == (round(h * F.DPI), round(w * F.DPI))
    assert image.std() > 0  # not a blank canvas


def test_plot_roc_and_oscr(tmp_path, runs):
    _check_png(F.plot_roc(runs, tmp_path / "roc.png", "ROC test"))
    _check_png(F.plot_oscr(runs[0], tmp_path / "sub" / "oscr.png"))  # one run, default title, new folder


def test_plot_confidence_hist(tmp_path, runs):
    _check_png(F.plot_confidence_hist(runs, tmp_path / "hist.png", "hist"), F.hist_figsize(2))  # two levels
    _check_png(F.plot_confidence_hist(runs[0], tmp_path / "hist1.png"), F.hist_figsize(1))


def test_threshold_sweep(tmp_path, runs):
    run = runs[0]
    train_conf = np.random.default_rng(1).normal(0.7, 0.15, 200)
    sweep = F.threshold_sweep(run, train_conf)
    np.testing.assert_allclose(sweep["rate"], np.arange(1, 21) * 0.05)
    # at least a fraction a of the reference confidences are accepted, and the thresholds fall as a grows
    accepted = (train_conf[None, :] >= sweep["threshold"][:, None]).mean(axis=1)
    assert np.all(accepted >= sweep["rate"] - 1e-12)
    assert np.all(np.diff(sweep["threshold"]) <= 0)
    assert sweep["fpr"][-1] == operating_point(run.confidence, run.prediction, run.labels, train_conf.min())["fpr"]
    _check_png(F.plot_threshold_sweep(run, tmp_path / "sweep.png", "sweep", train_confidence=train_conf))
    # test labels never set the thresholds: a run without saved training/validation confidences is refused
    with pytest.raises(ValueError, match="must not be set on the test set"):
        F.threshold_sweep(run)
    with pytest.raises(ValueError, match="must not be set on the test set"):
        F.plot_threshold_sweep(run, tmp_path / "sweep_test.png")


def test_threshold_sweep_uses_the_saved_validation_confidences(tmp_path, runs):
    run = runs[0]
    val = np.random.default_rng(2).normal(0.9, 0.02, 40)  # far above the test knowns (mean 0.7)
    saved = RunScores(**{**run.__dict__, "threshold_confidence": val, "threshold_source": "validation",
                         "threshold": float(np.quantile(val, 0.1, method="lower"))})
    sweep = F.threshold_sweep(saved)
    np.testing.assert_array_equal(sweep["threshold"], np.quantile(val, 1 - F.ACCEPTANCE_RATES, method="lower"))
    # a = 1 accepts every validation known, not every test known
    assert sweep["threshold"][-1] == val.min() and sweep["tpr"][-1] < 1.0
    _check_png(F.plot_threshold_sweep(saved, tmp_path / "saved.png"))


def test_confusion_counts(runs):
    run = runs[0]
    k = run.n_known
    closed, rows, cols = F.confusion_counts(run, open_set=False)
    assert closed.shape == (k, k) and rows == cols == run.known_classes
    assert closed.sum() == run.is_known.sum()
    assert np.trace(closed) == np.sum(run.prediction[run.is_known] == run.labels[run.is_known])
    grouped, rows, cols = F.confusion_counts(run, threshold=0.6)
    assert grouped.shape == (k + 1, k + 1) and rows[-1] == cols[-1] == "unknown"
    assert grouped[-1].sum() == (~run.is_known).sum()
    assert grouped[:, -1].sum() == np.sum(run.confidence < 0.6)
    per_class, rows, cols = F.confusion_counts(run, group_unknowns=False)  # run.threshold = 0.55
    assert per_class.shape == (k + len(run.unknown_classes), k + 1)
    np.testing.assert_array_equal(per_class[k:].sum(axis=0), F.confusion_counts(run)[0][-1])
    with pytest.raises(ValueError, match="needs a threshold"):
        F.confusion_counts(RunScores(**{**vars(run), "threshold": None}))


def test_plot_confusion(tmp_path, runs):
    _check_png(F.plot_confusion(runs[0], tmp_path / "open.png", "open"))
    _check_png(F.plot_confusion(runs[0], tmp_path / "closed.png", "closed", open_set=False))
    _check_png(F.plot_confusion(runs[0], tmp_path / "per_class.png", threshold=0.5, group_unknowns=False))


def test_plot_tsne(tmp_path):
    run = _run(3, n=80)
    # one OpenMP thread: Barnes-Hut t-SNE slows down badly on oversubscribed shared CI cores
    with threadpool_limits(limits=1, user_api="openmp"):
        _check_png(F.plot_tsne(run, tmp_path / "tsne.png", "tsne", max_points=40, seed=0))
    with pytest.raises(ValueError, match="no features"):
        F.plot_tsne(_run(3, features=False), tmp_path / "none.png")


def test_write_standard_figures(tmp_path, runs):
    other = [_run(99, method="arpl")]
    paths = F.write_standard_figures(tmp_path, [*runs, *other])
    names = sorted(p.name for p in paths)
    assert names == sorted(f"{kind}_{m}_face_au-audio.png" for kind in ("roc", "oscr", "confidence_hist")
                           for m in ("msp", "arpl"))
    for p in paths:
        assert p.parent == tmp_path / "figures"
        assert mpimg.imread(p).shape[2] == 4
    assert F.write_standard_figures(tmp_path, []) == []


def _cross(run: RunScores, train: str, test: str) -> RunScores:
    return RunScores(**{**run.__dict__, "train_set": train, "test_set": test})


def test_confidence_shift_side_by_side(tmp_path, runs):
    columns = {"in-corpus: emodb": [_cross(r, "emodb", "emodb") for r in runs],
               "cross-corpus: ravdess-speech": [_cross(r, "emodb", "ravdess-speech") for r in runs[:2]]}
    # two levels (rows) x two test sets (columns); the cross column has no runs at the second level
    _check_png(F.plot_confidence_shift(columns, tmp_path / "shift.png"), (4.2 * 2 + 0.4, 3.2 * 2 + 0.8))
    with pytest.raises(ValueError, match="no test sets"):
        F.plot_confidence_shift({}, tmp_path / "none.png")
    with pytest.raises(ValueError, match="no runs"):
        F.plot_confidence_shift({"in-corpus: emodb": []}, tmp_path / "none.png")


def test_shift_figures_one_per_method_and_training_set(tmp_path, runs):
    one = runs[:1]
    cross = ([_cross(r, "emodb", t) for r in one for t in ("ravdess-speech", "emodb")]
             + [_cross(r, "ravdess-speech", "emodb") for r in one])
    paths = F.write_shift_figures(tmp_path, [*cross, *runs])  # runs without train_set are left out
    assert sorted(p.name for p in paths) == ["shift_confidence_msp_face_au-audio_emodb.png",
                                             "shift_confidence_msp_face_au-audio_ravdess-speech.png"]
    assert F.write_shift_figures(tmp_path, runs) == []
    # the per-test-set standard figures do not overwrite each other
    groups = F._group_runs(cross)
    assert len(groups) == 3 and {k[3] for k in groups} == {"emodb -> ravdess-speech", "emodb -> emodb",
                                                          "ravdess-speech -> emodb"}
