"""Tiny separable feature problems for the feature-level methods (seeded, seconds to train)."""

from __future__ import annotations

import numpy as np


def blobs(seed: int = 0, k: int = 3, n: int = 60, d: int = 8, *, sample_seed: int | None = None,
          unknown: str = "blob") -> tuple[np.ndarray, np.ndarray]:
    """K Gaussian blobs of known classes plus one blob of an unknown class (label -1).

    Args:
        seed: fixes the centres (and the samples, unless ``sample_seed`` is given).
        sample_seed: draw other samples of the same blobs (held-out data).
        unknown: ``"blob"``: the unknown class is one more random blob (often far from all known
            ones); ``"centre"``: it sits at the mean of the known centres, between the classes.

    Returns:
        ``(x (n (K + 1), d) float32, labels (n (K + 1),) int64)``; centres ~ N(0, 4^2), spread 1.
    """
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 4, (k + 1, d))
    if unknown == "centre":
        centers[k] = centers[:k].mean(axis=0)
    draw = rng if sample_seed is None else np.random.default_rng(sample_seed)
    x = np.concatenate([draw.normal(c, 1.0, (n, d)) for c in centers]).astype(np.float32)
    y = np.repeat(np.arange(k + 1), n)
    return x, np.where(y < k, y, -1)


def sphere_blobs(seed: int = 0, k: int = 3, n: int = 60, d: int = 8, *, spread: float = 0.3,
                 sample_seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Clusters around K random unit directions (CLIP-like features: the class is the direction),
    plus an unknown class around the normalised mean of those directions (between the classes).

    Returns:
        ``(x (n (K + 1), d) float32, labels (n (K + 1),) int64)``, unknown = -1.
    """
    rng = np.random.default_rng(seed)
    dirs = rng.normal(size=(k, d))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    centre = dirs.mean(axis=0)
    dirs = np.concatenate([dirs, (centre / np.linalg.norm(centre))[None]])
    draw = rng if sample_seed is None else np.random.default_rng(sample_seed)
    x = np.concatenate([draw.normal(c, spread, (n, d)) for c in dirs]).astype(np.float32)
    y = np.repeat(np.arange(k + 1), n)
    return x, np.where(y < k, y, -1)
