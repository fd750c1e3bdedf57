"""Torch datasets over precomputed feature vectors."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset


class FeatureDataset(Dataset):
    """Rows of a feature matrix as sample dicts ``{"features": (D,), "label": ()}``.

    Args:
        features: (N, D) float array.
        labels: (N,) int array, known-class index or -1 for unknown.
        present: optional (N, D) bool, False where a value was filled in for an absent modality
            (:func:`openmer.data.feature_blocks.fill_absent_blocks`); batches then carry it as
            ``"features_present"`` so that training statistics skip filled values.
    """

    def __init__(self, features: np.ndarray, labels: np.ndarray, present: np.ndarray | None = None):
        if len(features) != len(labels):
            raise ValueError(f"features ({len(features)}) and labels ({len(labels)}) differ in length")
        self.x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
        self.y = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
        self.present = None if present is None else torch.as_tensor(np.asarray(present), dtype=torch.bool)
        if self.present is not None and self.present.shape != self.x.shape:
            raise ValueError(
                f"present must have the shape of features {tuple(self.x.shape)}, got {tuple(self.present.shape)}")

    def _rows(self, idx: int | slice | Sequence[int] | torch.Tensor) -> dict[str, torch.Tensor]:
        out = {"features": self.x[idx], "label": self.y[idx]}
        if self.present is not None:
            out["features_present"] = self.present[idx]
        return out

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self._rows(i)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        """A whole batch by one indexing (the DataLoader calls this instead of per-row access)."""
        return self._rows(torch.as_tensor(indices, dtype=torch.int64))

    @staticmethod
    def collate_fn(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Identity: :meth:`__getitems__` already returns a batch."""
        return batch

    def batches(self, batch_size: int = 1024) -> list[dict[str, torch.Tensor]]:
        """The whole set in order, as a few large batches (for scoring)."""
        return [self._rows(slice(i, i + batch_size)) for i in range(0, len(self.y), batch_size)]
