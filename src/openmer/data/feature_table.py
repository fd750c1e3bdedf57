"""Pre-computed per-sample feature vectors, one matrix per modality (e.g. the shared RAVDESS AU/audio table)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from openmer.errors import ConfigError, DataError


@dataclass
class FeatureTable:
    """Pre-computed per-sample feature vectors, one matrix per modality.

    Attributes:
        ids: sample ids (N,).
        labels: class names (N,).
        groups: speaker/actor of each sample (N,).
        features: modality name -> (N, D_m) float32 matrix, in a fixed modality order.
        name: dataset name, for messages.
    """

    ids: list[str]
    labels: list[str]
    groups: list[str]
    features: dict[str, np.ndarray]
    name: str = "features"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.ids)
        if len(self.labels) != n or len(self.groups) != n:
            raise DataError(None, f"{self.name}: {n} ids, {len(self.labels)} labels, {len(self.groups)} groups")
        for m, x in self.features.items():
            if x.ndim != 2 or x.shape[0] != n:
                raise DataError(None, f"{self.name}: modality {m!r} has shape {x.shape}, expected ({n}, D)")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.features)

    @property
    def dims(self) -> dict[str, int]:
        """Modality -> feature dimension D_m."""
        return {m: int(x.shape[1]) for m, x in self.features.items()}

    @property
    def classes(self) -> list[str]:
        """Sorted distinct labels."""
        return sorted(set(self.labels))

    def select(self, modalities: str | Sequence[str] | None = None) -> np.ndarray:
        """Features of the given modalities, concatenated along D in the order given.

        Args:
            modalities: one name, a sequence of names, or ``None`` for all in table order.

        Returns:
            (N, sum of D_m) float32.

        Raises:
            ConfigError: an unknown modality name or an empty selection.
        """
        if modalities is None:
            modalities = self.modalities
        elif isinstance(modalities, str):
            modalities = (modalities,)
        if not modalities:
            raise ConfigError("select at least one modality")
        unknown = [m for m in modalities if m not in self.features]
        if unknown:
            raise ConfigError(f"unknown modality {unknown}; {self.name} has {list(self.modalities)}")
        return np.concatenate([self.features[m] for m in modalities], axis=1).astype(np.float32, copy=False)

    def subset(self, idx: Sequence[int] | np.ndarray) -> FeatureTable:
        """Rows by index array or boolean mask (a copy)."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise ValueError(f"boolean mask of shape {idx.shape} for {len(self)} rows")
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64, copy=False)
        return FeatureTable(
            ids=[self.ids[i] for i in idx],
            labels=[self.labels[i] for i in idx],
            groups=[self.groups[i] for i in idx],
            features={m: x[idx] for m, x in self.features.items()},
            name=self.name,
            meta=dict(self.meta),
        )
