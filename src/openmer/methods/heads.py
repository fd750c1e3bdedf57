"""Learnable heads shared by the feature-level methods (MSP, ARPL, CSSR, CPN, LPL): one piece, used by all."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class FeatureEmbedding(nn.Module):
    """Standardise precomputed features with training statistics, then embed them.

    ``z = (x - mean) / std`` (statistics from the training set, stored as buffers), then
    ``Linear(input_dim, hidden_dim) -> ReLU -> Dropout -> Linear(hidden_dim, embed_dim)``,
    or a single ``Linear(input_dim, embed_dim)`` when ``hidden_dim == 0``, or nothing
    (``learned=False``: the standardised features themselves, as CSSR's frozen-backbone
    features).

    Args:
        input_dim: D of the input features.
        hidden_dim: width of the hidden layer (0 = linear embedding).
        embed_dim: E of the output embedding (ignored when ``learned=False``: E = D).
        dropout: dropout probability after the hidden layer.
        learned: ``False`` keeps the standardisation only.

    Shapes: (N, D) -> (N, E).
    """

    def __init__(self, input_dim: int, hidden_dim: int = 0, embed_dim: int = 0, dropout: float = 0.0,
                 *, learned: bool = True):
        super().__init__()
        self.register_buffer("mean", torch.zeros(input_dim))
        self.register_buffer("std", torch.ones(input_dim))
        #: E, the width of the output
        self.output_dim = embed_dim if learned else input_dim
        if not learned:
            self.net: nn.Module = nn.Identity()
        elif hidden_dim > 0:
            self.net = nn.Sequential(
                nn.Linear(input_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden_dim, embed_dim)
            )
        else:
            self.net = nn.Linear(input_dim, embed_dim)

    @torch.no_grad()
    def fit_statistics(self, x: Tensor) -> None:
        """Set mean/std from training features (N, D); constant dimensions get std 1."""
        self.mean.copy_(x.mean(dim=0))
        std = x.std(dim=0, unbiased=False)
        self.std.copy_(torch.where(std > 1e-8, std, torch.ones_like(std)))

    def forward(self, x: Tensor) -> Tensor:
        return self.net((x - self.mean) / self.std)
