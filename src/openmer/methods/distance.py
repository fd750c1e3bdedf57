"""Distances shared by the reciprocal-point and prototype methods (ARPL, HESP, HCEP, CPN).

Source: Chen et al., "Adversarial Reciprocal Points Learning for Open Set Recognition",
TPAMI 2021; reference code iCGY96/ARPL ``loss/Dist.py`` and ``loss/ARPLoss.py``.
"""

from __future__ import annotations

from torch import Tensor


def squared_euclidean(features: Tensor, points: Tensor) -> Tensor:
    """Squared Euclidean distance ``||f - p||^2``, expanded as ``f^2 - 2 f.p + p^2`` (as ARPL's
    ``Dist`` and CPN's ``disatance``).

    Args:
        features: (N, D).
        points: (K, D).

    Returns:
        (N, K).
    """
    f2 = features.pow(2).sum(dim=1, keepdim=True)
    p2 = points.pow(2).sum(dim=1, keepdim=True)
    return f2 - 2.0 * features @ points.t() + p2.t()


def squared_l2_distance(features: Tensor, points: Tensor) -> Tensor:
    """Mean squared Euclidean distance, ``||f - p||^2 / D``, as ARPL's ``Dist(metric='l2')``.

    Args:
        features: (N, D).
        points: (K, D).

    Returns:
        (N, K).
    """
    return squared_euclidean(features, points) / float(features.shape[1])


def composite_distance(features: Tensor, points: Tensor) -> Tensor:
    """ARPL's composite distance: Euclidean term minus dot product.

    ``d(f, p) = ||f - p||^2 / D - f . p`` (ARPL Eq. 6; reference ``ARPLoss.forward``:
    ``logits = dist_l2_p - dist_dot_p``). HCEP uses the same distance for D_pos / D_neg (Eq. 7-8).

    Args:
        features: (N, D) sample features.
        points: (K, D) one point (reciprocal point or prompt feature) per known class.

    Returns:
        (N, K) distances.

    Raises:
        ValueError: if the feature dimensions differ.
    """
    if features.ndim != 2 or points.ndim != 2 or features.shape[1] != points.shape[1]:
        raise ValueError(f"composite_distance needs (N, D) and (K, D) with the same D; "
                         f"got {tuple(features.shape)} and {tuple(points.shape)}")
    return squared_l2_distance(features, points) - features @ points.t()

