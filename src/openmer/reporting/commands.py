"""The HCEP paper's figures, redrawn from a finished ``openmer benchmark`` folder (``openmer figures``).

:func:`paper_figures` reads the saved scores (``<run_dir>/scores/*.npz|json``, see
:func:`~openmer.reporting.scores.load_runs`) and writes PNGs, by default under
``<run_dir>/figures/paper/``:

==============  ==========================================================  =====================================
kind            what                                                        files
==============  ==========================================================  =====================================
distributions   known vs unknown confidence, one panel per level (Fig. 7)   ``fig7_distributions_<method>_<mods>``
curves          ROC and OSCR, one figure per level, all methods (Fig. 9)    ``fig9_roc_<level>``, ``fig9_oscr_...``
threshold       TPR/FPR/CCR against the known-acceptance rate (Fig. 10)     ``fig10_threshold_<run>``
confusion       closed-set and open-set confusion matrices (Fig. 11)        ``fig11_confusion_{closed,open}_<run>``
tsne            t-SNE of F_M, knowns and unknowns (Figs. 6, 8)              ``fig6-8_tsne_<run>``
==============  ==========================================================  =====================================

The per-run kinds (threshold, confusion, tsne) draw one split per (method, modalities, level):
``split`` if given, else the first saved split. Every title starts with the benchmark folder's
name, then method, modalities and level.

Thresholds (HCEP Sec. 4.4.6): test labels never choose one. A benchmark saves, per trial, the
deployable threshold and the known-class validation (or training) confidences it was chosen from
(:attr:`RunScores.threshold_confidence`). The threshold sweep sets its thresholds from those
confidences and draws the test-set TPR/FPR/CCR against them, with the deployed threshold marked;
the open-set confusion uses the deployed threshold, or, with ``acceptance``, the threshold that
accepts that fraction of the same training/validation confidences. A run saved without them
(an older benchmark folder) gets neither figure, and a note says why.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from openmer.errors import ConfigError, DataError
from openmer.reporting.scores import RunScores, load_runs

__all__ = ["FIGURE_KINDS", "FigureReport", "open_set_threshold", "paper_figures"]

#: the figure kinds of :func:`paper_figures`, in the order they are drawn
FIGURE_KINDS = ("distributions", "curves", "threshold", "confusion", "tsne")

GroupKey = tuple[str, str, str, str]  # (method, modalities, level, "<train_set> -> <test_set>" or "")


@dataclass
class FigureReport:
    """What :func:`paper_figures` did.

    Attributes:
        out_dir: where the PNGs went.
        written: the PNG paths, in the order drawn.
        notes: one line per figure that was skipped, and why.
    """

    out_dir: Path
    written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def open_set_threshold(run: RunScores, acceptance: float | None = None) -> tuple[float, str]:
    """The threshold of a run's open-set confusion (Fig. 11), chosen without test labels.

    Args:
        run: saved scores of one trial.
        acceptance: ``None``: the run's deployed threshold; a fraction in (0, 1]: the threshold
            that accepts it of the run's known-class training/validation confidences
            (:func:`openmer.methods.threshold.choose_threshold`, e.g. the paper's 0.60-0.66).

    Returns:
        ``(threshold, description)`` for the figure's title.

    Raises:
        ValueError: the run saved no threshold (or no training/validation confidences when
            ``acceptance`` is given), or ``acceptance`` is outside (0, 1].
    """
    from openmer.methods.threshold import SOURCE_WORDS, choose_threshold

    source = SOURCE_WORDS[run.threshold_source] if run.threshold_source else "training/validation"
    if acceptance is None:
        if run.threshold is None:
            raise ValueError(f"run {run.name} saved no deployable threshold")
        return run.threshold, f"the run's deployed threshold (from {source} knowns)"
    if run.threshold_confidence is None:
        raise ValueError(f"run {run.name} saved no training/validation confidences to choose a threshold from")
    return (choose_threshold(run.threshold_confidence, acceptance),
            f"{acceptance:.2f} known-acceptance of the {source} knowns")


def _kinds(kinds: str | Iterable[str]) -> list[str]:
    wanted = [kinds] if isinstance(kinds, str) else list(kinds)
    if "all" in wanted:
        return list(FIGURE_KINDS)
    bad = [k for k in wanted if k not in FIGURE_KINDS]
    if bad or not wanted:
        raise ConfigError(f"unknown figure kind(s) {bad or wanted}; choose from all, {', '.join(FIGURE_KINDS)}")
    return [k for k in FIGURE_KINDS if k in wanted]


def _select(runs: list[RunScores], method: str | None, level: str | None, split: int | None) -> list[RunScores]:
    def pick(rs: list[RunScores], attr: str, value: object) -> list[RunScores]:
        if value is None:
            return rs
        out = [r for r in rs if getattr(r, attr) == value]
        if not out:
            have = sorted({str(getattr(r, attr)) for r in rs})
            raise ConfigError(f"no saved run has {attr} {value!r}; this folder has {', '.join(have)}")
        return out

    return pick(pick(pick(runs, "method", method), "level", level), "split", split)


def _level_slug(level: str) -> str:
    """``"O(6:2)"`` -> ``"O6-2"`` (as :attr:`RunScores.file_stem`)."""
    return level.replace("(", "").replace(")", "").replace(":", "-")


def _groups(runs: Sequence[RunScores]) -> dict[GroupKey, list[RunScores]]:
    """Runs by (method, modalities, level, train -> test set); levels in openness order within a method."""
    out: dict[GroupKey, list[RunScores]] = {}
    for r in runs:
        out.setdefault((r.method, r.modality_label, r.level, r.transfer or ""), []).append(r)
    order = {k[:2]: i for i, k in reversed(list(enumerate(out)))}
    return dict(sorted(out.items(), key=lambda kv: (order[kv[0][:2]], kv[1][0].openness, kv[0][2])))


def paper_figures(
    run_dir: str | Path,
    *,
    kinds: str | Iterable[str] = "all",
    method: str | None = None,
    level: str | None = None,
    split: int | None = None,
    out: str | Path | None = None,
    acceptance: float | None = None,
    tsne_points: int = 2000,
    threads: int = 1,
) -> FigureReport:
    """Draw the HCEP paper's figures (Figs. 6-11) for a finished benchmark folder.

    Args:
        run_dir: the ``openmer benchmark`` output folder (it holds ``scores/``).
        kinds: ``"all"`` or some of :data:`FIGURE_KINDS`.
        method: only runs of this method (e.g. ``"hcep"``).
        level: only this openness level, as saved (e.g. ``"O(6:2)"``).
        split: the split drawn by the per-run figures (default: the first saved split of each
            method/modalities/level); also restricts the distributions and curves to it.
        out: output folder (default ``<run_dir>/figures/paper``).
        acceptance: known-acceptance rate of the open-set confusion threshold on the runs'
            training/validation knowns (default: each run's deployed threshold; module doc).
        tsne_points: at most this many samples per t-SNE map.
        threads: BLAS/OpenMP threads for t-SNE (``threadpoolctl``), to stay fast and polite.

    Returns:
        A :class:`FigureReport` (written PNGs, and notes on skipped figures: a run without
        saved features gets no t-SNE, one without a threshold from training/validation knowns
        no threshold sweep and no open-set confusion).

    Raises:
        DataError: ``run_dir`` has no saved scores.
        ConfigError: an unknown kind, or ``method``/``level``/``split`` matches no saved run.
    """
    from openmer.reporting import figures as F

    run_dir = Path(run_dir)
    wanted = _kinds(kinds)
    try:
        runs = load_runs(run_dir)
    except FileNotFoundError as exc:
        raise DataError(run_dir, str(exc)) from None
    runs = _select(runs, method, level, split)
    folder = run_dir.resolve().name
    report = FigureReport(Path(out) if out is not None else run_dir / "figures" / "paper")
    dest = report.out_dir
    groups = _groups(runs)
    # one run per group for the per-run figures: the first saved split (or the one asked for)
    chosen = {key: min(members, key=lambda r: r.split) for key, members in groups.items()}

    def stem(key: GroupKey, r: RunScores) -> str:
        where = f"_{r.train_set}-to-{r.test_set}" if r.train_set is not None else ""
        return F._slug(f"{key[0]}_{key[1]}_{_level_slug(key[2])}{where}_split{r.split}")

    def head(key: GroupKey, r: RunScores, n_splits: int) -> str:
        more = f" (of {n_splits})" if n_splits > 1 else ""
        where = f" · {key[3]}" if key[3] else ""
        return f"{folder} · {key[0]} · {key[1]} · {key[2]}{where} · split {r.split}{more}"

    if "distributions" in wanted:
        by_method: dict[tuple[str, str], list[RunScores]] = {}
        for (m, mods, _, _), members in groups.items():
            by_method.setdefault((m, mods), []).extend(members)
        for (m, mods), members in by_method.items():
            levels = sorted({r.level for r in members},
                            key=lambda lv: next(r.openness for r in members if r.level == lv))
            title = (f"{folder} · {m} · {mods} · {', '.join(levels)}\n"
                     "test confidence of known vs unknown samples (HCEP Fig. 7)")
            path = dest / f"fig7_distributions_{F._slug(m)}_{F._slug(mods)}.png"
            report.written.append(F.plot_confidence_hist(members, path, title))

    if "curves" in wanted:
        by_level: dict[str, list[RunScores]] = {}
        for r in sorted(runs, key=lambda r: r.openness):
            by_level.setdefault(r.level, []).append(r)
        for lv, members in by_level.items():
            methods = ", ".join(dict.fromkeys(r.method for r in members))
            for kind, plot, name in (("roc", F.plot_roc, "ROC"), ("oscr", F.plot_oscr, "OSCR")):
                title = f"{folder} · {lv} · {methods}\n{name} on the test set (HCEP Fig. 9)"
                report.written.append(plot(members, dest / f"fig9_{kind}_{F._slug(_level_slug(lv))}.png", title))

    def no_threshold(key: GroupKey, r: RunScores, figure: str) -> None:
        report.notes.append(f"{figure} skipped for {key[0]} · {key[1]} · {key[2]} split {r.split}: the run saved no "
                            "threshold chosen on training/validation knowns (rerun the benchmark with this openmer)")

    if "threshold" in wanted:
        for key, r in chosen.items():
            if r.threshold_confidence is None:
                no_threshold(key, r, "threshold sweep (Fig. 10)")
                continue
            title = f"{head(key, r, len(groups[key]))}\nthreshold sweep (HCEP Fig. 10)"
            report.written.append(F.plot_threshold_sweep(r, dest / f"fig10_threshold_{stem(key, r)}.png", title))

    if "confusion" in wanted:
        for key, r in chosen.items():
            base = head(key, r, len(groups[key]))
            report.written.append(F.plot_confusion(
                r, dest / f"fig11_confusion_closed_{stem(key, r)}.png", f"{base} (HCEP Fig. 11)", open_set=False))
            try:
                thr, source = open_set_threshold(r, acceptance)
            except ValueError:
                no_threshold(key, r, "open-set confusion (Fig. 11)")
                continue
            per_class = r.class_names is not None and 0 < len(r.unknown_classes) <= 6
            report.written.append(F.plot_confusion(
                r, dest / f"fig11_confusion_open_{stem(key, r)}.png", f"{base} (HCEP Fig. 11)\nthreshold: {source}",
                open_set=True, threshold=thr, group_unknowns=not per_class))

    if "tsne" in wanted:
        from threadpoolctl import threadpool_limits

        for key, best in chosen.items():
            with_features = [x for x in groups[key] if x.features is not None]
            if not with_features:
                report.notes.append(f"t-SNE skipped for {' · '.join(k for k in key if k)}: no features saved "
                                    "(only HCEP runs carry F_M)")
                continue
            r = best if best.features is not None else min(with_features, key=lambda x: x.split)
            title = f"{head(key, r, len(groups[key]))}\nt-SNE of F_M, known vs unknown (HCEP Figs. 6, 8)"
            with threadpool_limits(limits=threads):
                report.written.append(F.plot_tsne(r, dest / f"fig6-8_tsne_{stem(key, r)}.png", title,
                                                  max_points=tsne_points))
    return report
