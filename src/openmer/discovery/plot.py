"""The 2-D map of a discovery: t-SNE (scikit-learn) of every clip's features, accepted clips by
their known class, rejected clips by cluster with the cluster's names, unclustered ones as crosses."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib import colormaps

from openmer.discovery.cluster import prepare_features
from openmer.reporting.figures import FIGSIZE, _new_figure, _save

if TYPE_CHECKING:
    from openmer.discovery.core import Discovery

__all__ = ["plot_cluster_map"]


def plot_cluster_map(result: Discovery, path: str | Path, *, title: str | None = None, seed: int = 0) -> Path:
    """Write the map (PNG) of ``result`` to ``path``: t-SNE (``init="pca"``, perplexity
    ``min(30, (N - 1) / 3)``, ``random_state=seed``) of the prepared features
    (:func:`~openmer.discovery.cluster.prepare_features`) of all N >= 4 clips.

    Raises:
        ValueError: fewer than 4 clips.
    """
    from sklearn.manifold import TSNE

    n = len(result.features)
    if n < 4:
        raise ValueError(f"a t-SNE map needs at least 4 clips, got {n}")
    perplexity = float(min(30.0, (n - 1) / 3.0))
    emb = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
               random_state=seed).fit_transform(prepare_features(result.features))
    cluster = result.cluster_of
    pred = result.scores.prediction.numpy()
    fig = _new_figure((FIGSIZE[0] * 1.25, FIGSIZE[1] * 1.15))
    ax = fig.add_subplot()
    greys = colormaps["Greys"]
    k = len(result.known_classes)
    for c, name in enumerate(result.known_classes):
        m = (cluster == -2) & (pred == c)
        if m.any():
            ax.scatter(emb[m, 0], emb[m, 1], s=9, color=greys(0.3 + 0.5 * c / max(k - 1, 1)), marker="o",
                       alpha=0.6, label=f"known: {name}")
    colours = colormaps["tab10" if result.clustering.n_clusters <= 10 else "tab20"]
    for info in result.clusters:
        c = info["cluster"]
        m = cluster == c
        words = ", ".join(n["word"] for n in info["names"]) or "unnamed"
        colour = colours(c % colours.N)
        ax.scatter(emb[m, 0], emb[m, 1], s=22, color=colour, marker="^", label=f"cluster {c} ({info['size']}): {words}")
        cx, cy = emb[m].mean(axis=0)
        ax.annotate(f"{c}: {words}", (cx, cy), fontsize="x-small", ha="center", weight="bold", color=colour,
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.7, "lw": 0})
    m = cluster == -1
    if m.any():
        ax.scatter(emb[m, 0], emb[m, 1], s=18, color="0.2", marker="x", linewidths=0.8,
                   label=f"unknown, no cluster ({int(m.sum())})")
    ax.set_xlabel("t-SNE dimension 1")
    ax.set_ylabel("t-SNE dimension 2")
    ax.legend(fontsize="xx-small", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    sub = (f"{n} clips, {int(result.rejected.sum())} rejected at threshold {result.threshold:.3g}; "
           f"perplexity {perplexity:.0f}, seed {seed}")
    ax.set_title(f"{title or 'Rejected clips by cluster'}\n{sub}", fontsize="medium")
    return _save(fig, path)
