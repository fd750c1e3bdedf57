"""DPOL: Dual-stream Prompt-driven Open-set Learning (HCEP Sec. 3.5, Eq. 5-9, Algorithm 1).

Features are handled as *blocks*, one per modality (F_M = [F_T, F_V, F_A]); a block can be
absent for some samples (a clip without audio track or face), and is then left out of the
distance for that sample, with the sum rescaled to the number of blocks (see
``docs/interpretation.md``, "Missing modalities").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from openmer.methods.distance import composite_distance


def blockwise_composite_distance(blocks: list[Tensor], points: list[Tensor], present: Tensor | None = None,
                                 weights: Tensor | None = None) -> Tensor:
    """Composite distance of F_M to K prompt features, summed over modality blocks (Eq. 7-8).

    With every block present, this equals ``composite_distance(cat(blocks), cat(points))`` up to
    the per-block normalisation of the Euclidean term (``||.||^2 / D_b`` per block, as ARPL
    normalises by the feature dimension).

    Args:
        blocks: per modality, (N, D_b) sample features.
        points: per modality, (K, D_b) prompt features (F_M+ or F_M-).
        present: (N, n_blocks) bool; ``None`` = all present.
        weights: (n_blocks,) weight of each block's distance; ``None`` = 1 each (Eq. 7-8's sum).

    Returns:
        (N, K) distances.

    Raises:
        ValueError: a sample with no block present.
    """
    dists = torch.stack([composite_distance(f, p) for f, p in zip(blocks, points, strict=True)], dim=-1)  # (N, K, B)
    if weights is not None:
        dists = dists * weights.to(dists.dtype)
    if present is None:
        return dists.sum(-1)
    present = present.to(dists.dtype)
    n_present = present.sum(1)
    if bool((n_present == 0).any()):
        raise ValueError("a sample has no modality present")
    scale = present.shape[1] / n_present  # (N,)
    return (dists * present[:, None, :]).sum(-1) * scale[:, None]


def osr_logits(d_neg: Tensor, d_pos: Tensor | None) -> Tensor:
    """``D_neg - D_pos`` (N, K): far from the class's negative prompt and close to its positive one.

    ``d_pos=None`` is the negative-only ablation (HCEP Table 6, ``dpol_streams="negative_only"``):
    the logits are ``D_neg`` alone.
    """
    if d_pos is None:
        return d_neg
    if d_neg.shape != d_pos.shape:
        raise ValueError(f"d_neg {tuple(d_neg.shape)} and d_pos {tuple(d_pos.shape)} differ")
    return d_neg - d_pos


def dpol_probabilities(d_neg: Tensor, d_pos: Tensor | None) -> Tensor:
    """Class probabilities from negative/positive prompt distances (HCEP Algorithm 1).

    Args:
        d_neg: (N, K) composite distance of each sample to each class's negative prompt feature.
        d_pos: (N, K) same, to the positive prompt feature; ``None`` = negative only
            (ablation): softmax(d_neg).

    Returns:
        (N, K) softmax(d_neg - d_pos); its max over K is the sample's confidence.

    Raises:
        ValueError: if the shapes differ or contain NaN.

    Source: Liu et al., HCEP (Information Fusion 2026), Eq. 5-9 and Algorithm 1; composite
    distance as in iCGY96/ARPL loss/Dist.py (L2 / D minus dot product).
    """
    logits = osr_logits(d_neg, d_pos)
    if torch.isnan(logits).any():
        raise ValueError("NaN in the DPOL distances")
    return torch.softmax(logits, dim=1)


def loss_osr(d_neg: Tensor, d_pos: Tensor | None, labels: Tensor) -> Tensor:
    """L_osr = CE(softmax(D_neg - D_pos), y) (HCEP Eq. 8-9); CE(softmax(D_neg), y) when ``d_pos`` is None."""
    return F.cross_entropy(osr_logits(d_neg, d_pos), labels)


def emotion_logits(f_query: Tensor, f_text_pos: Tensor, scale: float) -> Tensor:
    """``scale * cos(f_query, F_T+)`` (N, K) (HCEP Eq. 5-6).

    Args:
        f_query: (N, D_T) the multimodal feature brought to the text dimension (see
            ``HCEPConfig.emo_match``).
        f_text_pos: (K, D_T) features of the positive class sentences.
        scale: logit scale (inverse temperature).
    """
    return scale * F.normalize(f_query, dim=-1) @ F.normalize(f_text_pos, dim=-1).t()


def blockwise_cosine(blocks: list[Tensor], points: list[Tensor], present: Tensor | None = None) -> Tensor:
    """Cosine of the concatenated F_M with each class's concatenated F_M+ over the blocks present.

    Used by the ablation ``dpol_features="multimodal_only"`` (HCEP Table 7), where L_emo compares
    F_M with F_M+ instead of F_T+. With every block present this equals
    ``cos(cat(blocks), cat(points))``; a sample's absent block is left out of both vectors.

    Args:
        blocks: per modality, (N, D_b) sample features.
        points: per modality, (K, D_b) class features.
        present: (N, n_blocks) bool; ``None`` = all present.

    Returns:
        (N, K) cosines in [-1, 1].
    """
    dots = torch.stack([f @ p.t() for f, p in zip(blocks, points, strict=True)], dim=-1)  # (N, K, B)
    f_sq = torch.stack([(f * f).sum(-1) for f in blocks], dim=-1)  # (N, B)
    p_sq = torch.stack([(p * p).sum(-1) for p in points], dim=-1)  # (K, B)
    w = torch.ones_like(f_sq) if present is None else present.to(f_sq.dtype)
    num = (dots * w[:, None, :]).sum(-1)
    f_norm = (f_sq * w).sum(-1).clamp_min(1e-12).sqrt()  # (N,)
    p_norm = (w @ p_sq.t()).clamp_min(1e-12).sqrt()  # (N, K)
    return num / (f_norm[:, None] * p_norm)


def loss_emo(f_query: Tensor, f_text_pos: Tensor, labels: Tensor, scale: float) -> Tensor:
    """L_emo = CE(softmax(cos(F_M, F_T+)), y) (HCEP Eq. 5-6)."""
    return F.cross_entropy(emotion_logits(f_query, f_text_pos, scale), labels)
