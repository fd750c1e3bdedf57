"""Group rejected clips: k-means with the number of clusters chosen by silhouette (the documented rule).

The rule (``docs/discover.md``, "How many clusters"):

1. the features are centred on the clips' mean and L2-normalised (cosine geometry, as HCEP's
   blocks; pooled encoder features are anisotropic, ``docs/interpretation.md`` reading 19);
2. every k from 2 to ``min(k_max, N // min_size)`` is tried with k-means (scikit-learn,
   ``n_init=10``, ``random_state=seed``); the k with the highest mean silhouette (scikit-learn,
   Euclidean on the normalised features) is kept; fewer than ``2 * min_size`` clips make one cluster;
3. a cluster of fewer than ``min_size`` clips is dissolved: its clips stay ``unknown`` (-1);
   the others are numbered 0, 1, ... by decreasing size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from openmer.errors import ConfigError

__all__ = ["Clustering", "cluster_rejected", "prepare_features"]

#: the label of a clip that fits no cluster
UNCLUSTERED = -1


@dataclass
class Clustering:
    """What :func:`cluster_rejected` found.

    Attributes:
        labels: (N,) int cluster of each clip, -1 = fits no cluster (``unknown``).
        k: clusters k-means was run with (before small clusters were dissolved).
        silhouette: k -> mean silhouette of every k tried.
        centres: (C, E) mean prepared feature of each kept cluster's members.
    """

    labels: np.ndarray
    k: int
    silhouette: dict[int, float] = field(default_factory=dict)
    centres: np.ndarray | None = None

    @property
    def n_clusters(self) -> int:
        return int(self.labels.max()) + 1 if self.labels.size and self.labels.max() >= 0 else 0


def prepare_features(x: np.ndarray) -> np.ndarray:
    """(N, E) -> (N, E) centred on the rows' mean, each row L2-normalised (a zero row stays zero)."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def cluster_rejected(features: np.ndarray, *, min_size: int = 3, k_max: int = 8, seed: int = 0) -> Clustering:
    """Cluster N clips' features with the module's rule.

    Args:
        features: (N, E) features of the rejected clips (the run's own, :meth:`OpenSetMethod.features`).
        min_size: the smallest cluster kept (and the fewest clips per cluster k may assume).
        k_max: the most clusters tried.
        seed: k-means' ``random_state``.

    Returns:
        The :class:`Clustering`.

    Raises:
        ConfigError: ``min_size < 2`` or ``k_max < 2``, or features that are not (N, E) finite numbers.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    if min_size < 2 or k_max < 2:
        raise ConfigError(f"min_size and k_max must be at least 2, got {min_size} and {k_max}")
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or not np.isfinite(x).all():
        raise ConfigError(f"features must be a finite (N, E) array, got shape {x.shape}")
    n = len(x)
    if n < min_size:
        return Clustering(np.full(n, UNCLUSTERED, dtype=np.int64), 0)
    z = prepare_features(x)
    top = min(k_max, n // min_size)
    scores: dict[int, float] = {}
    best: tuple[float, int, np.ndarray] | None = None
    for k in range(2, top + 1):
        assign = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(z)
        if len(np.unique(assign)) < 2:
            continue
        s = float(silhouette_score(z, assign))
        scores[k] = s
        if best is None or s > best[0]:
            best = (s, k, assign)
    k, assign = (1, np.zeros(n, dtype=np.int64)) if best is None else (best[1], best[2])
    sizes = np.bincount(assign, minlength=k)
    kept = [c for c in np.argsort(-sizes, kind="stable") if sizes[c] >= min_size]
    labels = np.full(n, UNCLUSTERED, dtype=np.int64)
    for new, old in enumerate(kept):
        labels[assign == old] = new
    centres = np.stack([z[labels == c].mean(axis=0) for c in range(len(kept))]) if kept else None
    return Clustering(labels, k, scores, centres)
