"""LPL*: logit prototype learning with entropy-weighted multimodal fusion and calibrated distances.

HCEP's LPL* row [35]: Fu, Liu, Wang, "Logit prototype learning with active multimodal
representation for robust open-set recognition", Science China Information Sciences 2024;
reference code fuyimin96/LPL (``LPLModelbuilder.py``: ``Network.forward``, ``cos_classifier``,
``distance_classifier``; ``LPL.py``: ``JointLoss``, ``train``, ``test``, ``find_anchor_means``,
``find_radius``). Not PROSER ("learning placeholders").

Each modality block m of the concatenated feature vector (``FeatureMethodConfig.blocks``) has its
own stream: a :class:`FeatureEmbedding` (standing in for the reference's per-modality backbone)
and a ``Linear(E, K)`` giving K-dimensional logits ``l_m``. The fused logits are
``l = sum_m w_m l_m`` with entropy weights ``w_m``. Classes are logit prototypes (anchors): fixed at
``alpha e_k`` while training, then the class means of the training logits; the distance to the
nearest anchor is calibrated by the blocks' reliabilities at inference.

The reference drops the test samples whose block reliabilities disagree (variance >= 0.4) from
its metrics; openmer scores every sample and, by default, gives those samples confidence 0
(``unreliable="reject"``), below any softmax maximum.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from openmer.methods.base import Batch, OpenSetScores
from openmer.methods.feature_method import FeatureMethod, FeatureMethodConfig
from openmer.methods.heads import BlockEmbedding
from openmer.methods.posthoc import HeadOutputs
from openmer.methods.registry import register


class LPLConfig(FeatureMethodConfig):
    """LPL* options (reference defaults of ``LPL.py``).

    Attributes:
        anchor_scale: alpha, the magnitude of the initial anchors ``alpha e_k`` (reference 5).
        weight_anchor: lambda, the weight of the per-block anchor terms (reference 0.1).
        unreliable: what happens to a sample whose block reliabilities disagree: ``"reject"``
            (confidence 0) or ``"keep"`` (scored as any other).
        variance_fraction: a sample is unreliable when the variance of its L1-normalised block
            reliabilities is at least ``variance_fraction / M`` (the variance is at most 1/M), with
            M the number of blocks present; 0.8 gives the reference's 0.4 at M = 2.
    """

    method: str = "lpl"
    anchor_scale: float = Field(default=5.0, gt=0)
    weight_anchor: float = Field(default=0.1, ge=0)
    unreliable: Literal["reject", "keep"] = "reject"
    variance_fraction: float = Field(default=0.8, gt=0, le=1)


def l2_distance(logits: Tensor, anchors: Tensor) -> Tensor:
    """``D2(l, a_k) = ||l - a_k||_2`` (reference ``distance_classifier``).

    Args:
        logits: (B, K).
        anchors: (K, K), one anchor (logit prototype) per class.

    Returns:
        (B, K).
    """
    return torch.cdist(logits, anchors)


def dc_distance(logits: Tensor, anchors: Tensor) -> Tensor:
    """``Dc(l, a_k) = ||l - a_k||_2 + 1 - cos(l, a_k)`` (reference ``cos_classifier``).

    Args:
        logits: (B, K).
        anchors: (K, K).

    Returns:
        (B, K).
    """
    cos = F.normalize(logits, dim=1) @ F.normalize(anchors, dim=1).t()
    return l2_distance(logits, anchors) + 1.0 - cos


def entropy_weights(block_logits: Tensor, block_anchors: Tensor, present: Tensor | None = None) -> Tensor:
    """Fusion weights ``w_m = e^{-H_m} / sum_j e^{-H_j}``, ``H_m = entropy(L1normalize(1 / D2(l_m, a^m)))``.

    A block whose logits are equally far from every anchor has the highest entropy (log K) and
    the smallest weight. Absent blocks get weight 0. The weights carry no gradient (the
    reference computes them in numpy).

    Args:
        block_logits: (M, B, K) per-block logits.
        block_anchors: (M, K, K) per-block anchors.
        present: (B, M) bool, which blocks each sample has (``None`` = all).

    Returns:
        (B, M), rows sum to 1 over the present blocks.

    Source: reference ``Network.forward`` (``entropy1``, ``entropy_weight1``), natural log as
    ``scipy.stats.entropy``.
    """
    with torch.no_grad():
        inv = 1.0 / torch.stack([l2_distance(lg, a) for lg, a in zip(block_logits, block_anchors, strict=True)])
        q = F.normalize(inv.clamp_max(1e12), p=1, dim=2)  # (M, B, K)
        h = -(q * torch.log(q.clamp_min(1e-30))).sum(dim=2).t()  # (B, M)
        if present is not None:
            h = h.masked_fill(~present, float("inf"))
        return torch.softmax(-h, dim=1)


def fuse_logits(block_logits: Tensor, weights: Tensor) -> Tensor:
    """``l = sum_m w_m l_m``.

    Args:
        block_logits: (M, B, K).
        weights: (B, M) :func:`entropy_weights`.

    Returns:
        (B, K).
    """
    return torch.einsum("mbk,bm->bk", block_logits, weights)


def lpl_loss(fused_distance: Tensor, block_distances: Tensor, labels: Tensor, *, weight_anchor: float,
             present: Tensor | None = None) -> Tensor:
    """``mean_i log(1 + sum_{j != y} e^{d_y - d_j}) + lambda sum_m mean_i d^m_{i, y_i}`` (reference ``JointLoss``).

    The tuplet term is on the fused distances ``d = Dc(l, a)``; the anchor terms on the blocks'
    ``Dc(l_m, a^m)``, each averaged over the samples that have the block. The reference adds no
    anchor term for the fused logits.

    Args:
        fused_distance: (B, K).
        block_distances: (M, B, K).
        labels: (B,).
        weight_anchor: lambda.
        present: (B, M) bool (``None`` = all present).
    """
    true = fused_distance.gather(1, labels[:, None])  # (B, 1)
    others = fused_distance.masked_fill(F.one_hot(labels, fused_distance.shape[1]).bool(), float("inf"))
    tuplet = torch.log1p(torch.exp(true - others).sum(dim=1)).mean()
    to_own = block_distances.gather(2, labels[None, :, None].expand(len(block_distances), -1, 1))[..., 0]  # (M, B)
    mask = torch.ones_like(to_own) if present is None else present.t().to(to_own.dtype)
    anchor = ((to_own * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1)).sum()
    return tuplet + weight_anchor * anchor


def calibrated_scores(fused: Tensor, anchors: Tensor, block_logits: Tensor, block_anchors: Tensor, radii: Tensor,
                      present: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """LPL inference: calibrated probabilities, prediction and the reliability variance.

    ``d = D2(l, a)``, ``k* = argmin d``; reliability of block m ``rho_m = r^m_{k*} / D2(l_m, a^m_{k*})``;
    ``rho = prod_m rho_m``; ``p = softmax(-rho d)``; ``v = var_unbiased(L1normalize(rho_1..M))``.

    Args:
        fused: (B, K) fused logits.
        anchors: (K, K) fused anchors.
        block_logits: (M, B, K).
        block_anchors: (M, K, K).
        radii: (M, K) per-block class radii (mean training ``Dc`` to the class anchor).
        present: (B, M) bool (``None`` = all); an absent block is left out of rho and v.

    Returns:
        ``(probabilities (B, K), prediction (B,), variance (B,))``; ``variance`` is 0 for a sample
        with fewer than 2 blocks present.

    Source: reference ``Network.forward(train=False)`` (``relia_img``, ``relia_var``,
    ``outDistance_calibrate``) and ``LPL.test`` (``softmax(-outDistance)``).
    """
    m, b, _ = block_logits.shape
    present = torch.ones(b, m, dtype=torch.bool, device=fused.device) if present is None else present
    d = l2_distance(fused, anchors)
    pred = d.argmin(dim=1)
    d_own = torch.stack([l2_distance(lg, a).gather(1, pred[:, None])[:, 0]
                         for lg, a in zip(block_logits, block_anchors, strict=True)], dim=1)  # (B, M)
    rho_m = radii.t()[pred] / d_own.clamp_min(1e-12)  # (B, M)
    rho = torch.where(present, rho_m, torch.ones_like(rho_m)).prod(dim=1)
    probs = torch.softmax(-rho[:, None] * d, dim=1)
    share = F.normalize(rho_m * present, p=1, dim=1)
    n = present.sum(dim=1)
    mean = share.sum(dim=1) / n.clamp_min(1)
    var = (((share - mean[:, None]) ** 2) * present).sum(dim=1) / (n - 1).clamp_min(1)
    return probs, pred, torch.where(n >= 2, var, torch.zeros_like(var))


@register("lpl")
class LPL(FeatureMethod[LPLConfig]):
    """Per-block logits, entropy-weighted fusion, logit prototypes, calibrated distances (LPL*).

    Input: ``batch["features"]`` (B, D) split by ``config.blocks``; optional ``batch["block_present"]``
    (B, M) bool marks absent blocks. Training: :func:`lpl_loss` with the anchors fixed at
    ``alpha e_k``. :meth:`finalize` (after training, on the training data): anchors <- class means of
    the training logits (per block and fused), radii <- mean training ``Dc`` to the new anchors.
    Inference: :func:`calibrated_scores`; confidence = max p, 0 for unreliable samples (``"reject"``).
    """

    config_class = LPLConfig
    config: LPLConfig
    own_score = "calibrated"
    block_anchors: Tensor
    anchors: Tensor
    radii: Tensor

    def __init__(self, config: LPLConfig, known_classes: Sequence[str]):
        super().__init__(config, known_classes)
        k, m = self.num_classes, len(config.block_layout())
        self.classifiers = nn.ModuleList(nn.Linear(config.embed_dim, k) for _ in range(m))
        eye = config.anchor_scale * torch.eye(k)
        self.register_buffer("block_anchors", eye.repeat(m, 1, 1))  # (M, K, K)
        self.register_buffer("anchors", eye.clone())  # (K, K)
        # radii 1 until finalize (the reference sets them before its only scoring)
        self.register_buffer("radii", torch.ones(m, k))  # (M, K)

    def build_embedding(self, config: FeatureMethodConfig) -> nn.Module:
        widths = [d for _, d in config.block_layout()]
        return BlockEmbedding(widths, config.hidden_dim, config.embed_dim, config.dropout)

    def _present(self, batch: Batch, n: int) -> Tensor | None:
        if "block_present" not in batch:
            return None
        present = torch.as_tensor(batch["block_present"], dtype=torch.bool, device=self._fitted.device)
        if present.shape != (n, len(self.classifiers)):
            raise ValueError(f"block_present must be (B, {len(self.classifiers)}); got {tuple(present.shape)}")
        return present

    def streams(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """``(embeddings (M, B, E), block logits (M, B, K), fused logits (B, K), present (B, M) | None)``."""
        x = self.input_features(batch)
        z = self.embedding(x)
        logits = torch.stack([cls(e) for cls, e in zip(self.classifiers, z, strict=True)])
        present = self._present(batch, len(x))
        fused = fuse_logits(logits, entropy_weights(logits, self.block_anchors, present))
        return z, logits, fused, present

    def loss(self, batch: Batch) -> Tensor:
        _, logits, fused, present = self.streams(batch)
        blocks = torch.stack([dc_distance(lg, a) for lg, a in zip(logits, self.block_anchors, strict=True)])
        return lpl_loss(dc_distance(fused, self.anchors), blocks, self.labels(batch),
                        weight_anchor=self.config.weight_anchor, present=present)

    def head(self, batch: Batch) -> HeadOutputs:
        """Logits ``-D2(l, a)`` (argmax = the nearest logit prototype); features = the blocks' embeddings,
        concatenated."""
        z, _, fused, _ = self.streams(batch)
        return HeadOutputs(-l2_distance(fused, self.anchors), torch.cat(list(z), dim=1))

    @torch.no_grad()
    def own_scores(self, batch: Batch) -> OpenSetScores:
        _, logits, fused, present = self.streams(batch)
        probs, pred, var = calibrated_scores(fused, self.anchors, logits, self.block_anchors, self.radii, present)
        conf = probs.max(dim=1).values
        if self.config.unreliable == "reject":
            n = float(len(self.classifiers)) if present is None else present.sum(dim=1).float()
            conf = torch.where(var >= self.config.variance_fraction / n, torch.zeros_like(conf), conf)
        return OpenSetScores(conf, pred, probs)

    @torch.no_grad()
    def finalize(self, train: Iterable[Batch]) -> None:
        """Logit prototypes and radii from the training data (reference ``find_anchor_means``, ``find_radius``)."""
        batches = list(train)
        parts = [self.streams(b) for b in batches]
        y = torch.cat([self.labels(b) for b in batches])
        logits = torch.cat([p[1] for p in parts], dim=1)  # (M, N, K)
        fused = torch.cat([p[2] for p in parts])  # weights from the training anchors, as the reference
        for c in range(self.num_classes):
            mine = y == c
            if mine.any():
                self.block_anchors[:, c] = logits[:, mine].mean(dim=1)
                self.anchors[c] = fused[mine].mean(dim=0)
        for m, lg in enumerate(logits):
            dist = dc_distance(lg, self.block_anchors[m]).gather(1, y[:, None])[:, 0]
            for c in range(self.num_classes):
                if (y == c).any():
                    self.radii[m, c] = dist[y == c].mean()
        super().finalize(batches)
