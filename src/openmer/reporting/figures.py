"""Figures of open-set runs: ROC, OSCR, confidence histograms, threshold sweep, confusion, t-SNE.

Each ``plot_*`` function draws from :class:`~openmer.reporting.scores.RunScores`, writes one PNG
(``DPI`` = 120) and returns its path. Every figure has labelled axes, a legend and a title that
names the run(s) (pass ``title=`` to replace the automatic one). The figures follow those of
Liu et al., HCEP (Information Fusion 2026): confidence distributions (Fig. 7), ROC/OSCR curves
(Fig. 9), threshold sweep (Fig. 10), confusion matrices (Fig. 11) and t-SNE maps (Figs. 6/8).

Figures are built with :class:`matplotlib.figure.Figure` and rendered by the Agg canvas, never
through ``pyplot``: nothing here needs a display, and importing this module does not change
the matplotlib backend of an interactive session. Metrics shown on figures are percentages,
labelled "%"; axes show rates as fractions in [0, 1].
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from openmer.methods.threshold import SOURCE_WORDS
from openmer.metrics import auroc, operating_point, oscr, oscr_curve, roc_curve
from openmer.reporting.scores import RunScores

__all__ = [
    "ACCEPTANCE_RATES",
    "DPI",
    "FIGSIZE",
    "confusion_counts",
    "hist_figsize",
    "plot_confidence_hist",
    "plot_confidence_shift",
    "plot_confusion",
    "plot_oscr",
    "plot_roc",
    "plot_threshold_sweep",
    "plot_tsne",
    "threshold_sweep",
    "write_shift_figures",
    "write_standard_figures",
]

#: resolution of every PNG written here
DPI = 120
#: (width, height) in inches of the single-panel figures
FIGSIZE = (6.4, 5.2)
#: known-acceptance rates of the threshold sweep: 0.05, 0.10, ..., 1.00
ACCEPTANCE_RATES = np.round(np.arange(1, 21) * 0.05, 2)

_KNOWN_COLOR = "tab:blue"
_UNKNOWN_COLOR = "tab:red"
#: (method, modalities, level, "<train_set> -> <test_set>" or "")
GroupKey = tuple[str, str, str, str]


# ----------------------------------------------------------------------------- helpers


def _new_figure(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    from openmer.files import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    return path


def _as_runs(run_or_runs: RunScores | Sequence[RunScores]) -> list[RunScores]:
    runs = [run_or_runs] if isinstance(run_or_runs, RunScores) else list(run_or_runs)
    if not runs:
        raise ValueError("no runs to plot")
    for r in runs:
        if not isinstance(r, RunScores):
            raise ValueError(f"expected RunScores, got {type(r).__name__}")
    return runs


def _group_runs(runs: Sequence[RunScores]) -> dict[GroupKey, list[RunScores]]:
    """Runs by (method, modalities, level, train -> test set), in order of first appearance,
    levels by openness."""
    groups: dict[GroupKey, list[RunScores]] = {}
    for r in runs:
        groups.setdefault((r.method, r.modality_label, r.level, r.transfer or ""), []).append(r)
    first: dict[tuple[str, str], int] = {}
    for i, key in enumerate(groups):
        first.setdefault(key[:2], i)
    return dict(sorted(groups.items(), key=lambda kv: (first[kv[0][:2]], kv[0][3], kv[1][0].openness, kv[0][2])))


def _group_labels(keys: Sequence[GroupKey]) -> dict[GroupKey, str]:
    """Label each group by the parts that differ between groups (the level if only one group)."""
    varying = [i for i in range(4) if len({k[i] for k in keys}) > 1] or [2]
    return {k: " · ".join(k[i] for i in varying) for k in keys}


def _describe(runs: Sequence[RunScores]) -> str:
    """What the runs have in common, e.g. "arpl · face_au+audio" or "msp · audio · O(6:2) · split 1"."""
    parts = []
    for getter in (lambda r: r.method, lambda r: r.modality_label, lambda r: r.level, lambda r: r.transfer):
        values = {getter(r) for r in runs}
        if len(values) == 1 and (value := values.pop()) is not None:
            parts.append(value)
    if len(runs) == 1:
        parts.append(f"split {runs[0].split}")
    return " · ".join(parts) if parts else f"{len(runs)} runs"


def _colors(n: int) -> list[Any]:
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _mean_std_text(values: Sequence[float], name: str) -> str:
    v = 100.0 * np.asarray(values, dtype=np.float64)
    if v.size == 1:
        return f"{name} {v[0]:.1f}%"
    return f"{name} {v.mean():.1f} ± {v.std():.1f}% ({v.size} splits)"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "run"


# ----------------------------------------------------------------------------- ROC / OSCR


def _plot_curves(runs: Sequence[RunScores], path: str | Path, title: str | None, kind: str) -> Path:
    runs = _as_runs(runs)
    groups = _group_runs(runs)
    labels = _group_labels(list(groups))
    fig = _new_figure(FIGSIZE)
    ax = fig.add_subplot()
    name = "AUROC" if kind == "roc" else "OSCR"
    for color, (key, members) in zip(_colors(len(groups)), groups.items(), strict=True):
        curves, values = [], []
        for r in members:
            if kind == "roc":
                roc = roc_curve(r.confidence, r.labels)
                curves.append((roc.fpr, roc.tpr))
                values.append(auroc(r.confidence, r.labels))
            else:
                occ = oscr_curve(r.confidence, r.prediction, r.labels, num_classes=r.n_known)
                curves.append((occ.fpr, occ.ccr))
                values.append(oscr(r.confidence, r.prediction, r.labels, num_classes=r.n_known))
        single = len(members) == 1
        for i, (x, y) in enumerate(curves):
            label = f"{labels[key]}: {_mean_std_text(values, name)}" if i == 0 else "_nolegend_"
            ax.plot(x, y, color=color, lw=1.8 if single else 1.1, alpha=1.0 if single else 0.7, label=label)
    if kind == "roc":
        ax.plot([0, 1], [0, 1], ls="--", lw=0.9, color="0.5", label="chance")
        ax.set_ylabel("True positive rate (fraction of knowns accepted)")
        default = f"ROC, knowns vs unknowns: {_describe(runs)}"
    else:
        ax.set_ylabel("Correct classification rate (accepted and correct knowns / knowns)")
        default = f"OSCR curve: {_describe(runs)}"
    ax.set_xlabel("False positive rate (fraction of unknowns accepted)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small", title="area under the curve")
    ax.set_title(title or default, fontsize="medium")
    return _save(fig, path)


def plot_roc(runs: RunScores | Sequence[RunScores], path: str | Path, title: str | None = None) -> Path:
    """ROC curves (TPR against FPR, knowns are positives), AUROC in the legend (HCEP Fig. 9).

    Runs sharing (method, modalities, level) share a colour and one legend entry with the
    mean ± population std of their AUROC over splits.

    Args:
        runs: one run or several.
        path: PNG file to write (parent folders are created).
        title: figure title; by default it names the runs.

    Returns:
        ``path``.

    Raises:
        ValueError: if there is no run, or a run has no known or no unknown sample.
    """
    return _plot_curves(_as_runs(runs), path, title, "roc")


def plot_oscr(runs: RunScores | Sequence[RunScores], path: str | Path, title: str | None = None) -> Path:
    """OSCR curves (CCR against FPR, Dhamija et al. 2018), OSCR in the legend (HCEP Fig. 9).

    Grouping and errors as in :func:`plot_roc`.
    """
    return _plot_curves(_as_runs(runs), path, title, "oscr")


# ----------------------------------------------------------------------------- confidence histograms


def hist_figsize(n_panels: int) -> tuple[float, float]:
    """Figure size (inches) of :func:`plot_confidence_hist` with ``n_panels`` panels (at most 3 per row)."""
    ncols = min(3, n_panels)
    nrows = math.ceil(n_panels / ncols)
    return (4.2 * ncols + 0.4, 3.4 * nrows + 0.6)


def plot_confidence_hist(
    run_or_runs: RunScores | Sequence[RunScores], path: str | Path, title: str | None = None, *, bins: int = 30
) -> Path:
    """Known vs unknown confidence distributions, overlaid density histograms (HCEP Fig. 7).

    One panel per (method, modalities, level); the splits of a group are pooled in its panel.
    A single run with a ``threshold`` gets a vertical line there.

    Args:
        run_or_runs: one run or several.
        path: PNG file to write; size :func:`hist_figsize` (number of panels).
        title: figure title; by default it names the runs.
        bins: number of histogram bins, shared by knowns and unknowns of a panel.

    Returns:
        ``path``.

    Raises:
        ValueError: if there is no run.
    """
    runs = _as_runs(run_or_runs)
    groups = _group_runs(runs)
    labels = _group_labels(list(groups))
    fig = _new_figure(hist_figsize(len(groups)))
    ncols = min(3, len(groups))
    nrows = math.ceil(len(groups) / ncols)
    for i, (key, members) in enumerate(groups.items()):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        edges = np.histogram_bin_edges(np.concatenate([r.confidence for r in members]), bins=bins)
        pooled = f" ({len(members)} splits pooled)" if len(members) > 1 else ""
        _confidence_panel(ax, members, edges, f"{labels[key]}{pooled}")
    fig.suptitle(title or f"Confidence of known vs unknown test samples: {_describe(runs)}", fontsize="medium")
    return _save(fig, path)


def _confidence_panel(ax: Any, members: Sequence[RunScores], edges: np.ndarray, title: str) -> None:
    """One panel of known vs unknown confidence densities, the runs' samples pooled."""
    conf = np.concatenate([r.confidence for r in members])
    known = np.concatenate([r.is_known for r in members])
    for mask, color, name in ((known, _KNOWN_COLOR, "known"), (~known, _UNKNOWN_COLOR, "unknown")):
        if mask.any():
            ax.hist(conf[mask], bins=edges, density=True, color=color, alpha=0.45,
                    label=f"{name} (n={int(mask.sum())})")
            ax.hist(conf[mask], bins=edges, density=True, color=color, histtype="step", lw=1.2)
    if len(members) == 1 and members[0].threshold is not None:
        ax.axvline(members[0].threshold, color="k", ls="--", lw=1, label=f"threshold {members[0].threshold:.3g}")
    ax.set_title(title, fontsize="small")
    ax.set_xlabel("confidence (higher = more likely known)")
    ax.set_ylabel("density")
    ax.legend(fontsize="x-small")
    ax.grid(alpha=0.3)


def plot_confidence_shift(
    columns: Mapping[str, Sequence[RunScores]], path: str | Path, title: str | None = None, *, bins: int = 30
) -> Path:
    """Known vs unknown confidence on several test sets side by side (HCEP Fig. 7, one column per test set).

    Meant for a distribution shift: the same trained models scored on their own corpus's test
    speakers (in-corpus) and on another corpus's (cross-corpus). One row per openness level (in
    the order of the first column), one column per test set; a panel pools the splits of its
    level, and the panels of a row share their bins. Panel titles give the test set's openness
    (its own unknown classes) and AUROC (mean ± population std over splits).

    Args:
        columns: column title (e.g. ``"in-corpus: emodb"``) -> the runs scored on that test set.
        path: PNG file to write.
        title: figure title; by default it names what the runs have in common.
        bins: histogram bins per row.

    Returns:
        ``path``.

    Raises:
        ValueError: no column, or a column without runs.
    """
    if not columns:
        raise ValueError("no test sets to plot")
    cols = {name: _as_runs(runs) for name, runs in columns.items()}
    levels: list[str] = []
    for runs in cols.values():
        for key in _group_runs(runs):
            if key[2] not in levels:
                levels.append(key[2])
    ncols, nrows = len(cols), len(levels)
    fig = _new_figure((4.2 * ncols + 0.4, 3.2 * nrows + 0.8))
    for i, level in enumerate(levels):
        at_level = {name: [r for r in runs if r.level == level] for name, runs in cols.items()}
        present = [r.confidence for runs in at_level.values() for r in runs]
        edges = np.histogram_bin_edges(np.concatenate(present), bins=bins)
        for j, (name, members) in enumerate(at_level.items()):
            ax = fig.add_subplot(nrows, ncols, i * ncols + j + 1)
            if not members:
                ax.set_axis_off()
                ax.set_title(f"{name} · {level}: no runs", fontsize="small")
                continue
            score = _mean_std_text([auroc(r.confidence, r.labels) for r in members], "AUROC")
            _confidence_panel(ax, members, edges, f"{name} · {level} · openness {members[0].openness:.2f}\n{score}")
    every = [r for runs in cols.values() for r in runs]
    fig.suptitle(title or f"Confidence of known vs unknown test samples, by test set: {_describe(every)}",
                 fontsize="medium")
    return _save(fig, path)


# ----------------------------------------------------------------------------- threshold sweep


def _threshold_reference(run: RunScores, train_confidence: Any) -> np.ndarray:
    """The known-class training/validation confidences that set the thresholds (never test)."""
    ref = run.threshold_confidence if train_confidence is None else train_confidence
    if ref is None:
        raise ValueError(f"run {run.name} has no known-class training/validation confidences "
                         "(threshold_confidence); the thresholds must not be set on the test set (HCEP Sec. 4.4.6)")
    ref = np.asarray(ref, dtype=np.float64)
    if ref.ndim != 1 or ref.size == 0 or not np.all(np.isfinite(ref)):
        raise ValueError("train_confidence must be a non-empty 1-D array of finite confidences of known samples")
    return ref


def threshold_sweep(
    run: RunScores, train_confidence: Any = None, rates: Any = ACCEPTANCE_RATES
) -> dict[str, np.ndarray]:
    """Test-set TPR, FPR and CCR when the threshold is set to accept a fraction ``a`` of training/validation knowns.

    The threshold for rate ``a`` is the ``(1 - a)`` quantile (``method="lower"``) of the
    known-class training/validation confidences, so that at least a fraction ``a`` of them
    satisfies ``confidence >= threshold`` (HCEP Sec. 4.4.6, Fig. 10; the rule of
    :func:`openmer.methods.threshold.choose_threshold`). The test set only gives the rates drawn.

    Args:
        run: the scored test set.
        train_confidence: (M,) confidences of *known* training/validation samples; ``None`` =
            ``run.threshold_confidence`` (saved by the benchmarks).
        rates: acceptance rates ``a`` in (0, 1].

    Returns:
        ``{"rate", "threshold", "tpr", "fpr", "ccr"}``, each (len(rates),) float64.

    Raises:
        ValueError: if there are no training/validation confidences (given or saved), they are
            empty, not 1-D or not finite, or a rate is outside (0, 1].
    """
    rates = np.asarray(rates, dtype=np.float64)
    if rates.ndim != 1 or rates.size == 0 or np.any((rates <= 0) | (rates > 1)):
        raise ValueError("rates must be a non-empty 1-D array of fractions in (0, 1]")
    ref = _threshold_reference(run, train_confidence)
    thresholds = np.quantile(ref, 1.0 - rates, method="lower")
    points = [operating_point(run.confidence, run.prediction, run.labels, t, num_classes=run.n_known)
              for t in thresholds]
    return {
        "rate": rates,
        "threshold": np.asarray(thresholds, dtype=np.float64),
        **{k: np.array([p[k] for p in points], dtype=np.float64) for k in ("tpr", "fpr", "ccr")},
    }


def plot_threshold_sweep(
    run: RunScores, path: str | Path, title: str | None = None, train_confidence: Any = None
) -> Path:
    """TPR, FPR and CCR on the test set against the known-acceptance rate that set the threshold (HCEP Fig. 10).

    See :func:`threshold_sweep`: the thresholds come from known-class training/validation
    confidences only. A run with a deployed ``threshold`` gets a vertical line at the fraction of
    those confidences it accepts, labelled with its test-set TPR, FPR and CCR.

    Returns:
        ``path``.

    Raises:
        ValueError: as :func:`threshold_sweep`.
    """
    sweep = threshold_sweep(run, train_confidence)
    ref = _threshold_reference(run, train_confidence)
    source = (SOURCE_WORDS[run.threshold_source] if run.threshold_source and train_confidence is None
              else "training/validation")
    fig = _new_figure(FIGSIZE)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ls=":", color="0.5", lw=1, label="rate = acceptance rate")
    for key, color, marker, name in (("tpr", _KNOWN_COLOR, "o", "TPR (knowns accepted)"),
                                     ("fpr", _UNKNOWN_COLOR, "s", "FPR (unknowns accepted)"),
                                     ("ccr", "tab:green", "^", "CCR (knowns accepted and correct)")):
        ax.plot(sweep["rate"], sweep[key], marker=marker, ms=4, color=color, label=name)
    if run.threshold is not None:
        at = operating_point(run.confidence, run.prediction, run.labels, run.threshold, num_classes=run.n_known)
        rate = float(np.mean(ref >= run.threshold))
        ax.axvline(rate, color="k", ls="--", lw=1,
                   label=f"deployed threshold {run.threshold:.3g}: test TPR {at['tpr']:.2f}, "
                         f"FPR {at['fpr']:.2f}, CCR {at['ccr']:.2f}")
    ax.set_xlabel(f"known-acceptance rate used to set the threshold (on {source} knowns)")
    ax.set_ylabel("rate on the test set (fraction)")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="x-small")
    head = title or f"Threshold sweep: {_describe([run])}"
    ax.set_title(f"{head}\nthresholds from {len(ref)} known {source} confidences; curves on the test set",
                 fontsize="medium")
    return _save(fig, path)


# ----------------------------------------------------------------------------- confusion


def confusion_counts(
    run: RunScores, *, open_set: bool = True, threshold: float | None = None, group_unknowns: bool = True
) -> tuple[np.ndarray, list[str], list[str]]:
    """Confusion counts (rows = true, columns = predicted), from ``sklearn.metrics.confusion_matrix``.

    Args:
        run: the scored test set.
        open_set: ``False``: K x K over the known samples only. ``True``: the "unknown" column
            collects predictions with ``confidence < threshold``, and the true unknowns form the
            "unknown" row ((K+1) x (K+1)), or one row per unknown class if ``group_unknowns`` is
            ``False`` ((K+U) x (K+1), needs ``run.class_names``).
        threshold: acceptance threshold; defaults to ``run.threshold``. Only for ``open_set``.
        group_unknowns: see ``open_set``.

    Returns:
        ``(counts int64 (rows, cols), row names, column names)``.

    Raises:
        ValueError: if ``open_set`` and no threshold is given or set on the run, or if
            ``group_unknowns=False`` and the run has no ``class_names``.
    """
    from sklearn.metrics import confusion_matrix

    k = run.n_known
    known = run.is_known
    if not open_set:
        cm = confusion_matrix(run.labels[known], run.prediction[known], labels=np.arange(k))
        return cm.astype(np.int64), list(run.known_classes), list(run.known_classes)
    threshold = run.threshold if threshold is None else float(threshold)
    if threshold is None:
        raise ValueError("open-set confusion needs a threshold: pass threshold= or set run.threshold "
                         "(from training/validation data, not the test set)")
    y_pred = np.where(run.confidence >= threshold, run.prediction, k)
    cols = [*run.known_classes, "unknown"]
    if group_unknowns:
        y_true = np.where(known, run.labels, k)
        cm = confusion_matrix(y_true, y_pred, labels=np.arange(k + 1))
        return cm.astype(np.int64), cols, list(cols)
    if run.class_names is None:
        raise ValueError("group_unknowns=False needs run.class_names (the original label of each sample)")
    names = np.asarray(run.class_names)
    unknown_names = [c for c in run.unknown_classes if np.any(names[~known] == c)]
    unknown_names += sorted(set(names[~known]) - set(unknown_names))
    index = {c: k + 1 + i for i, c in enumerate(unknown_names)}
    y_true = np.array([lab if lab >= 0 else index[n] for lab, n in zip(run.labels, names, strict=True)])
    cm = confusion_matrix(y_true, y_pred, labels=np.arange(k + 1 + len(unknown_names)))
    rows = [*range(k), *range(k + 1, k + 1 + len(unknown_names))]
    return cm[rows][:, : k + 1].astype(np.int64), [*run.known_classes, *(f"{c} (unknown)" for c in unknown_names)], cols


def plot_confusion(
    run: RunScores,
    path: str | Path,
    title: str | None = None,
    open_set: bool = True,
    threshold: float | None = None,
    *,
    group_unknowns: bool = True,
) -> Path:
    """Confusion matrix with counts, coloured by row-normalised fractions (HCEP Fig. 11).

    See :func:`confusion_counts` for ``open_set``, ``threshold`` and ``group_unknowns``.

    Returns:
        ``path``.

    Raises:
        ValueError: as :func:`confusion_counts`.
    """
    cm, row_names, col_names = confusion_counts(run, open_set=open_set, threshold=threshold,
                                                group_unknowns=group_unknowns)
    totals = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, totals, out=np.zeros(cm.shape, dtype=np.float64), where=totals > 0)
    fig = _new_figure(FIGSIZE)
    ax = fig.add_subplot()
    image = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    size = max(6.0, 11.0 - 0.45 * max(cm.shape))
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=size,
                    color="white" if frac[i, j] > 0.55 else "black")
    ax.set_xticks(np.arange(len(col_names)), col_names, rotation=45, ha="right", fontsize=size)
    ax.set_yticks(np.arange(len(row_names)), row_names, fontsize=size)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.colorbar(image, ax=ax, label="fraction of the true class (row-normalised)")
    # a legend keyed to the two encodings (colour, number) so the reader need not guess
    ax.plot([], [], " ", label="number = count of samples")
    ax.plot([], [], "s", color=colormaps["Blues"](0.8), label="colour = row fraction")
    ax.legend(loc="upper left", bbox_to_anchor=(0, -0.22 if open_set else -0.2), fontsize="x-small", ncols=2,
              frameon=False)
    if open_set:
        thr = run.threshold if threshold is None else threshold
        kind = f"open-set confusion, threshold {thr:.3g} (below = unknown)"
    else:
        kind = "closed-set confusion (known test samples)"
    ax.set_title(f"{title or _describe([run])}\n{kind}", fontsize="medium")
    return _save(fig, path)


# ----------------------------------------------------------------------------- t-SNE


def plot_tsne(
    run: RunScores, path: str | Path, title: str | None = None, max_points: int = 2000, seed: int = 0
) -> Path:
    """2-D t-SNE map of ``run.features``: knowns coloured by class, unknowns grey crosses (HCEP Figs. 6/8).

    Args:
        run: a run with ``features`` (N, D).
        path: PNG file to write.
        title: figure title; by default it names the run.
        max_points: at most this many samples, drawn uniformly without replacement with ``seed``.
        seed: seeds the subsample and ``sklearn.manifold.TSNE`` (``init="pca"``).

    Returns:
        ``path``.

    Raises:
        ValueError: if ``run.features`` is ``None`` or fewer than 4 samples are available.
    """
    from sklearn.manifold import TSNE

    if run.features is None:
        raise ValueError(f"run {run.name} has no features: t-SNE needs RunScores.features (N, D)")
    n = run.features.shape[0]
    if n < 4 or max_points < 4:
        raise ValueError(f"t-SNE needs at least 4 samples, got {min(n, max_points)}")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(n, size=max_points, replace=False)) if n > max_points else np.arange(n)
    x = np.asarray(run.features[idx], dtype=np.float64)
    perplexity = float(min(30.0, (len(idx) - 1) / 3.0))
    emb = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
               random_state=seed).fit_transform(x)
    labels = run.labels[idx]
    fig = _new_figure(FIGSIZE)
    ax = fig.add_subplot()
    for c, (name, color) in enumerate(zip(run.known_classes, _colors(run.n_known), strict=True)):
        mask = labels == c
        if mask.any():
            ax.scatter(emb[mask, 0], emb[mask, 1], s=10, color=color, alpha=0.8, label=name)
    unknown = labels < 0
    if unknown.any():
        which = f" ({', '.join(run.unknown_classes)})" if run.unknown_classes else ""
        ax.scatter(emb[unknown, 0], emb[unknown, 1], s=14, color="0.35", marker="x", linewidths=0.8,
                   label=f"unknown{which}")
    ax.set_xlabel("t-SNE dimension 1")
    ax.set_ylabel("t-SNE dimension 2")
    ax.legend(fontsize="x-small", markerscale=1.5, loc="best")
    sub = f"{len(idx)} of {n} test samples, perplexity {perplexity:.0f}, seed {seed}"
    ax.set_title(f"{title or 't-SNE of features: ' + _describe([run])}\n{sub}", fontsize="medium")
    return _save(fig, path)


# ----------------------------------------------------------------------------- benchmark set


def write_standard_figures(out_dir: str | Path, runs: Sequence[RunScores]) -> list[Path]:
    """The figures of a benchmark, three per (method, modalities), all levels and splits in each.

    Writes ``<out_dir>/figures/roc_<method>_<modalities>.png``, ``oscr_...png`` and
    ``confidence_hist_...png`` (names sanitised: characters other than letters, digits, ``.``,
    ``_`` and ``-`` become ``-``, so ``face_au+audio`` -> ``face_au-audio``). Runs of a
    cross-dataset benchmark get one set per test set, ``..._<train_set>-to-<test_set>.png``.

    Args:
        out_dir: the benchmark's output folder.
        runs: every scored run of the benchmark.

    Returns:
        The written paths, in order (an empty list for no runs).
    """
    figures = Path(out_dir) / "figures"
    by_pair: dict[tuple[str, str, str | None], list[RunScores]] = {}
    for r in runs:
        by_pair.setdefault((r.method, r.modality_label, r.transfer), []).append(r)
    written = []
    for (method, modalities, transfer), members in by_pair.items():
        where = members[0]
        stem = f"{_slug(method)}_{_slug(modalities)}"
        name = f"{method} · {modalities}"
        if where.train_set is not None and where.test_set is not None:  # a transfer run (both or neither are set)
            stem += f"_{_slug(where.train_set)}-to-{_slug(where.test_set)}"
            name += f" · {transfer}"
        written.append(plot_roc(members, figures / f"roc_{stem}.png", f"ROC on the test sets: {name}"))
        written.append(plot_oscr(members, figures / f"oscr_{stem}.png", f"OSCR curves on the test sets: {name}"))
        written.append(plot_confidence_hist(members, figures / f"confidence_hist_{stem}.png",
                                            f"Test confidence, known vs unknown: {name}"))
    return written


def write_shift_figures(out_dir: str | Path, runs: Sequence[RunScores]) -> list[Path]:
    """The distribution-shift figures of a cross-dataset benchmark (:func:`plot_confidence_shift`).

    One figure per (method, modalities, training set), columns = the in-corpus test set, then
    each other test set: ``<out_dir>/figures/shift_confidence_<method>_<modalities>_<train_set>.png``.
    Runs without ``train_set`` are ignored.

    Returns:
        The written paths (an empty list when no run has a ``train_set``).
    """
    figures = Path(out_dir) / "figures"
    by_source: dict[tuple[str, str, str], dict[str, list[RunScores]]] = {}
    for r in runs:
        if r.train_set is not None and r.test_set is not None:  # both or neither are set
            by_source.setdefault((r.method, r.modality_label, r.train_set), {}).setdefault(r.test_set, []).append(r)
    written = []
    for (method, modalities, train_set), by_test in by_source.items():
        order = sorted(by_test, key=lambda t: (t != train_set, t))
        columns = {f"{'in-corpus' if t == train_set else 'cross-corpus'}: {t}": by_test[t] for t in order}
        stem = f"{_slug(method)}_{_slug(modalities)}_{_slug(train_set)}"
        written.append(plot_confidence_shift(
            columns, figures / f"shift_confidence_{stem}.png",
            f"Trained on {train_set}: confidence of known vs unknown test samples, "
            f"in-corpus vs cross-corpus ({method} · {modalities})"))
    return written
