"""Learnable heads shared by the feature-level methods (MSP, ARPL): one piece, used by both."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class FeatureEmbedding(nn.Module):
    """Standardise precomputed features with training statistics, then embed them.

    ``z = (x - mean) / std`` (statistics from the training set, stored as buffers), then
    ``Linear(input_dim, hidden_dim) -> ReLU -> Dropout -> Linear(hidden_dim, embed_dim)``,
    or a single ``Linear(input_dim, embed_dim)`` when ``hidden_dim == 0``.

    Args:
        input_dim: D of the input features.
        hidden_dim: width of the hidden layer (0 = linear embedding).
        embed_dim: E of the output embedding.
        dropout: dropout probability after the hidden layer.

    Shapes: (N, D) -> (N, E).
    """

    def __init__(self, input_dim: int, hidden_dim: int, embed_dim: int, dropout: float = 0.0):
        super().__init__()
        self.register_buffer("mean", torch.zeros(input_dim))
        self.register_buffer("std", torch.ones(input_dim))
        if hidden_dim > 0:
            self.net: nn.Module = nn.Sequential(
                nn.Linear(input_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden_dim, embed_dim)
            )
        else:
            self.net = nn.Linear(input_dim, embed_dim)

    @torch.no_grad()
    def fit_statistics(self, x: Tensor, present: Tensor | None = None) -> None:
        """Set mean/std from training features (N, D); constant dimensions get std 1.

        ``present`` (N, D) bool restricts each dimension's statistics to the observed values
        (values filled in for an absent modality are left out, see
        :func:`openmer.data.feature_blocks.fill_absent_blocks`); a dimension never observed
        gets mean 0 and std 1.
        """
        if present is None:
            mean, std = x.mean(dim=0), x.std(dim=0, unbiased=False)
        else:
            w = present.to(x.dtype)
            n = w.sum(dim=0).clamp(min=1.0)
            mean = (x * w).sum(dim=0) / n
            std = (((x - mean) ** 2 * w).sum(dim=0) / n).sqrt()
        self.mean.copy_(mean)
        self.std.copy_(torch.where(std > 1e-8, std, torch.ones_like(std)))

    def forward(self, x: Tensor) -> Tensor:
        return self.net((x - self.mean) / self.std)
