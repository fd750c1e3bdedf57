"""Learnable heads shared by the feature-level methods (MSP, ARPL, CSSR, CPN, LPL): one piece, used by all."""

from __future__ import annotations

import torch
from torch import Tensor, nn

#: a dimension whose training standard deviation is at most this fraction of the root mean square
#: of the whole input (every observed value of every dimension) counts as constant and gets std 1:
#: an encoder's float32 rounding differs between batches by about 1e-7 to 1e-5 of its output's
#: size, and dividing by such a std would turn a new value of a constant input into z of 1e5 to 1e7
CONSTANT_RTOL = 1e-4


@torch.no_grad()
def feature_statistics(x: Tensor, present: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Per-dimension mean and standard deviation (population) of training features, for z-scoring.

    Computed in float64 (the mean of N equal float32 values is then that value exactly, so a
    constant block centres to exactly 0), returned in ``x``'s dtype.

    Args:
        x: (N, D) features.
        present: (N, D) bool, restricts each dimension's statistics to the observed values
            (values filled in for an absent modality are left out, see
            :func:`openmer.data.feature_blocks.fill_absent_blocks`); ``None`` = all observed.

    Returns:
        (D,) mean and (D,) std. A constant dimension gets std 1: one whose std is at most
        :data:`CONSTANT_RTOL` times the root mean square of all observed values of ``x`` (rounding
        noise, e.g. every training video the same still image); a dimension never observed gets
        mean 0 and std 1.
    """
    x64 = x.double()
    w = torch.ones_like(x64) if present is None else present.to(x64.dtype)
    n = w.sum(dim=0)
    mean = (x64 * w).sum(dim=0) / n.clamp(min=1.0)
    std = (((x64 - mean) ** 2 * w).sum(dim=0) / n.clamp(min=1.0)).sqrt()
    scale = ((x64**2 * w).sum() / w.sum().clamp(min=1.0)).sqrt()
    constant = (std <= CONSTANT_RTOL * scale) | (n == 0)
    return mean.to(x.dtype), torch.where(constant, torch.ones_like(std), std).to(x.dtype)


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

    Raises:
        ValueError: ``learned`` with ``embed_dim < 1``.
    """

    mean: Tensor
    std: Tensor

    def __init__(self, input_dim: int, hidden_dim: int = 0, embed_dim: int = 0, dropout: float = 0.0,
                 *, learned: bool = True):
        super().__init__()
        self.register_buffer("mean", torch.zeros(input_dim))
        self.register_buffer("std", torch.ones(input_dim))
        if learned and embed_dim < 1:
            raise ValueError(f"a learned embedding needs embed_dim >= 1, got {embed_dim}")
        if not learned:
            self.net: nn.Module = nn.Identity()
        elif hidden_dim > 0:
            self.net = nn.Sequential(
                nn.Linear(input_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden_dim, embed_dim)
            )
        else:
            self.net = nn.Linear(input_dim, embed_dim)

    @torch.no_grad()
    def fit_statistics(self, x: Tensor, present: Tensor | None = None) -> None:
        """Set mean/std from training features (N, D) (:func:`feature_statistics`)."""
        mean, std = feature_statistics(x, present)
        self.mean.copy_(mean)
        self.std.copy_(std)

    def forward(self, x: Tensor) -> Tensor:
        return self.net((x - self.mean) / self.std)


class BlockEmbedding(nn.Module):
    """One :class:`FeatureEmbedding` per block of a concatenated feature vector (per-modality streams).

    Args:
        widths: the blocks' widths D_1..D_M, in concatenation order (they sum to D).
        hidden_dim, embed_dim, dropout: as :class:`FeatureEmbedding`, for every block.

    Shapes: (N, D) -> (M, N, E). ``mean`` / ``std`` are the (D,) statistics of the whole vector.
    """

    def __init__(self, widths: list[int], hidden_dim: int, embed_dim: int, dropout: float = 0.0):
        super().__init__()
        self.widths = list(widths)
        self.blocks = nn.ModuleList(FeatureEmbedding(d, hidden_dim, embed_dim, dropout) for d in self.widths)

    def _embeddings(self) -> list[FeatureEmbedding]:
        return [b for b in self.blocks if isinstance(b, FeatureEmbedding)]

    @property
    def mean(self) -> Tensor:
        return torch.cat([b.mean for b in self._embeddings()])

    @property
    def std(self) -> Tensor:
        return torch.cat([b.std for b in self._embeddings()])

    def fit_statistics(self, x: Tensor, present: Tensor | None = None) -> None:
        """Per-block mean/std from training features (N, D); ``present`` (N, D) bool as
        :meth:`FeatureEmbedding.fit_statistics` (observed values only)."""
        parts = torch.split(x, self.widths, dim=1)
        masks = [None] * len(parts) if present is None else torch.split(present, self.widths, dim=1)
        for block, part, mask in zip(self._embeddings(), parts, masks, strict=True):
            block.fit_statistics(part, mask)

    def forward(self, x: Tensor) -> Tensor:
        parts = torch.split(x, self.widths, dim=1)
        return torch.stack([b(part) for b, part in zip(self._embeddings(), parts, strict=True)])
