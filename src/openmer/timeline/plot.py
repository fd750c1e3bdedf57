"""``timeline.png``: class-probability lanes over time, unknown segments shaded, the confidence with
the run's threshold, and a speech band; readable for a recording of hours (times in h:mm or m:ss,
one lane per known class, long recordings drawn as filled areas)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _clock(seconds: float, _pos: object = None) -> str:
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def plot_timeline(path: str | Path, t0: np.ndarray, t1: np.ndarray, conf: np.ndarray, probs: np.ndarray,
                  scored: np.ndarray, unknown: Sequence[tuple[float, float]], speech: Sequence[tuple[float, float]],
                  classes: Sequence[str], threshold: float, *, title: str = "",
                  errors: Sequence[tuple[float, float]] = ()) -> Path:
    """Draw the timeline of K windows (tiles ``t0``/``t1`` (K,), smoothed ``conf`` (K,) and
    ``probs`` (K, C), ``scored`` (K,) bool), the ``unknown`` stretches to review and the VAD's
    ``speech`` intervals (seconds) to ``path`` (PNG, 150 dpi)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    n_lanes = len(classes)
    fig, axes = plt.subplots(n_lanes + 2, 1, figsize=(16, 1.0 * n_lanes + 3.2), sharex=True,
                             gridspec_kw={"height_ratios": [1.0] * n_lanes + [1.4, 0.35]})
    x = np.repeat(np.stack([t0, t1], 1), 1, axis=0).reshape(-1)  # step drawing on tiles
    colours = plt.get_cmap("tab10")
    for c, ax in enumerate(axes[:n_lanes]):
        y = np.where(scored, probs[:, c], np.nan)
        ax.fill_between(x, np.repeat(y, 2), step=None, color=colours(c % 10), alpha=0.75, linewidth=0)
        ax.set_ylim(0, 1)
        ax.set_yticks([])
        ax.set_ylabel(classes[c], rotation=0, ha="right", va="center", fontsize=9)
        for a, b in unknown:
            ax.axvspan(a, b, color="0.2", alpha=0.15, linewidth=0)
    ax = axes[n_lanes]
    ax.plot(x, np.repeat(np.where(scored, conf, np.nan), 2), color="black", linewidth=0.8)
    ax.axhline(threshold, color="crimson", linestyle="--", linewidth=1.0, label=f"threshold {threshold:.3g}")
    for a, b in unknown:
        ax.axvspan(a, b, color="crimson", alpha=0.18, linewidth=0)
    ax.set_ylabel("confidence", rotation=0, ha="right", va="center", fontsize=9)
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    band = axes[-1]
    band.broken_barh([(a, b - a) for a, b in speech], (0, 1), color="seagreen")
    if errors:
        band.broken_barh([(a, b - a) for a, b in errors], (0, 1), color="orange")
    band.set_yticks([])
    band.set_ylabel("speech", rotation=0, ha="right", va="center", fontsize=9)
    band.xaxis.set_major_formatter(FuncFormatter(_clock))
    band.set_xlim(float(t0[0]) if len(t0) else 0.0, float(t1[-1]) if len(t1) else 1.0)
    band.set_xlabel("time (shaded: unknown stretches to review; green: speech found; orange: could not be decoded)")
    total_unknown = sum(b - a for a, b in unknown)
    fig.suptitle(f"{title}\n{len(unknown)} unknown stretch(es) to review, {_clock(total_unknown)} in all", fontsize=11)
    fig.tight_layout()
    path = Path(path)
    from openmer.files import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=150, format="png")
    plt.close(fig)
    return path
