"""Common base of the methods that work on precomputed feature vectors (``batch["features"]``)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from pydantic import Field
from torch import Tensor

from openmer.errors import MissingModalityError
from openmer.methods.base import Batch, MethodConfig, OpenSetMethod
from openmer.methods.heads import FeatureEmbedding


class FeatureMethodConfig(MethodConfig):
    """Shared options of the feature-level methods."""

    input_dim: int = Field(gt=0)
    hidden_dim: int = Field(default=256, ge=0)
    embed_dim: int = Field(default=128, gt=0)
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)


class FeatureMethod(OpenSetMethod):
    """An :class:`OpenSetMethod` whose input is ``batch["features"]`` of shape (B, input_dim)."""

    config: FeatureMethodConfig

    def __init__(self, config: FeatureMethodConfig, known_classes):
        super().__init__(config, known_classes)
        self.embedding = FeatureEmbedding(config.input_dim, config.hidden_dim, config.embed_dim, config.dropout)

    def features(self, batch: Batch) -> Tensor:
        """``batch["features"]`` as float32 on the module's device.

        Raises:
            MissingModalityError: no ``features`` key.
            ValueError: wrong feature dimension.
        """
        if "features" not in batch:
            raise MissingModalityError(f"{type(self).__name__} needs precomputed 'features' in the batch; got keys {sorted(batch)}")
        x = torch.as_tensor(batch["features"], dtype=torch.float32, device=self.embedding.mean.device)
        if x.ndim != 2 or x.shape[1] != self.config.input_dim:
            raise ValueError(f"features must be (B, {self.config.input_dim}); got {tuple(x.shape)}")
        return x

    def setup(self, train: Iterable[Batch]) -> None:
        """Standardisation statistics of the training features (observed values only, where the
        batches carry ``"features_present"``)."""
        batches = list(train)
        x = torch.cat([self.features(b) for b in batches])
        present = None
        if all("features_present" in b for b in batches):
            present = torch.cat([torch.as_tensor(b["features_present"], dtype=torch.bool) for b in batches]).to(x.device)
        self.embedding.fit_statistics(x, present)
