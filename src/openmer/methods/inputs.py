"""The one input pipeline per :attr:`OpenSetMethod.consumes <openmer.methods.base.OpenSetMethod.consumes>` value.

What a method reads for a set of clips, built in one place for every caller (``openmer train``,
the benchmarks, ``openmer evaluate`` / ``predict``, and what applies a run next):

- ``"clips"`` (:class:`ClipInputs`): the clips themselves; the method runs them through the
  encoders it holds;
- ``"features"`` (:class:`FeatureInputs`): each clip's unprompted encoder features, encoded once
  through the feature cache (:func:`openmer.data.feature_cache.encode_features`), concatenated in
  the run's modality order, a clip's absent block filled with its training mean
  (:func:`openmer.data.feature_blocks.fill_absent_blocks`: computed on the training rows while
  training, the fitted method's stored mean when applying it).

Callers ask the method's declaration (:func:`method_inputs` takes ``consumes``), never its class.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np

from openmer.data.clips import ClipDataset
from openmer.data.feature_blocks import fill_absent_blocks
from openmer.data.feature_cache import encode_features
from openmer.data.tensors import FeatureDataset
from openmer.errors import ConfigError, OpenmerWarning
from openmer.methods.base import Consumes, OpenSetMethod

__all__ = ["INPUTS", "ClipInputs", "FeatureInputs", "MethodInputs", "method_inputs"]

Rows = Sequence[int] | np.ndarray


class MethodInputs(ABC):
    """What a method with ``consumes`` reads for N clips, built once.

    Attributes:
        consumes: the :attr:`~openmer.methods.base.OpenSetMethod.consumes` value it serves.
        scoring_batch_size: rows per scoring batch of :meth:`batches` by default.
    """

    consumes: ClassVar[Consumes]
    scoring_batch_size: ClassVar[int]

    @classmethod
    @abstractmethod
    def from_clips(cls, clips: ClipDataset, encoders: Mapping[str, Any], *, cache_dir: str | Path | None = None,
                   progress: Callable[[int, int, str], None] | None = None) -> MethodInputs:
        """The inputs of ``clips`` (``encoders``: modality -> frozen encoder, for the feature pipeline)."""

    @abstractmethod
    def parts(self, rows: Mapping[str, Rows], *, labels: np.ndarray | None = None,
              fit: str = "train") -> dict[str, Any]:
        """Training-time datasets, one per part (e.g. ``{"train": rows, "val": rows, "test": rows}``);
        whatever is estimated from data (an absent block's fill) comes from part ``fit`` only.

        Args:
            rows: part -> row indices into the N clips.
            labels: (N,) int labels replacing the clips' own (a benchmark's open-set relabelling).
            fit: the part statistics come from (the training rows; never test rows).
        """

    @abstractmethod
    def for_method(self, method: OpenSetMethod) -> Any:
        """All N clips as the fitted ``method`` reads them (a dataset with ``batches()``)."""

    def batches(self, method: OpenSetMethod, batch_size: int | None = None) -> list[dict[str, Any]]:
        """:meth:`for_method`'s batches, in clip order (what ``method.score_all`` takes);
        ``batch_size`` ``None``: :attr:`scoring_batch_size`."""
        return list(self.for_method(method).batches(batch_size or self.scoring_batch_size))

    def _check(self, method: OpenSetMethod) -> None:
        if method.consumes != self.consumes:
            raise ConfigError(f"{type(method).__name__} reads {method.consumes}; these inputs are {self.consumes}")


class ClipInputs(MethodInputs):
    """The clips themselves, for a method that runs them through its own encoders."""

    consumes = "clips"
    scoring_batch_size = 16  # clips decoded and encoded per call

    def __init__(self, clips: ClipDataset):
        self.clips = clips

    @classmethod
    def from_clips(cls, clips: ClipDataset, encoders: Mapping[str, Any], *, cache_dir: str | Path | None = None,
                   progress: Callable[[int, int, str], None] | None = None) -> ClipInputs:
        return cls(clips)

    def parts(self, rows: Mapping[str, Rows], *, labels: np.ndarray | None = None,
              fit: str = "train") -> dict[str, ClipDataset]:
        def relabelled(r: Rows) -> list[int] | None:
            return None if labels is None else [int(v) for v in labels[np.asarray(r, dtype=np.int64)]]

        return {p: self.clips.subset([int(i) for i in r], relabelled(r)) for p, r in rows.items()}

    def for_method(self, method: OpenSetMethod) -> ClipDataset:
        self._check(method)
        return self.clips


class FeatureInputs(MethodInputs):
    """Unprompted encoder features per modality, concatenated in ``modalities`` order.

    Args:
        features: modality -> (N, D_m) float features.
        present: modality -> (N,) bool, False where the clip lacks the modality (``None``: all present).
        modalities: the blocks, in concatenation order (the run's modalities).
        labels: (N,) int labels (known-class index, -1 = unknown).
    """

    consumes = "features"
    scoring_batch_size = 1024  # feature rows: a few large batches

    def __init__(self, features: Mapping[str, np.ndarray], present: Mapping[str, np.ndarray] | None,
                 modalities: Sequence[str], labels: np.ndarray):
        self.features = dict(features)
        self.present = None if present is None else dict(present)
        self.modalities = list(modalities)
        self.labels = np.asarray(labels, dtype=np.int64)

    @classmethod
    def from_clips(cls, clips: ClipDataset, encoders: Mapping[str, Any], *, cache_dir: str | Path | None = None,
                   progress: Callable[[int, int, str], None] | None = None) -> FeatureInputs:
        """Encode ``clips`` once through the feature cache (``cache_dir``; ``None`` = no cache)."""
        feats, present = encode_features(clips, dict(encoders), cache_dir=cache_dir, progress=progress)
        return cls(feats, present, list(clips.modalities), clips.labels)

    @property
    def blocks(self) -> list[tuple[str, int]]:
        """The block layout ``[(modality, width), ...]`` (a feature method's ``blocks`` config)."""
        return [(m, int(self.features[m].shape[1])) for m in self.modalities]

    @property
    def input_dim(self) -> int:
        """D = sum of the block widths (a feature method's ``input_dim``)."""
        return sum(d for _, d in self.blocks)

    def parts(self, rows: Mapping[str, Rows], *, labels: np.ndarray | None = None,
              fit: str = "train") -> dict[str, FeatureDataset]:
        """One :class:`~openmer.data.tensors.FeatureDataset` per part; an absent block is filled with
        the mean of the ``fit`` part's present rows, and the datasets carry the presence mask (so
        training statistics skip filled values)."""
        y = self.labels if labels is None else np.asarray(labels, dtype=np.int64)
        x, mask = fill_absent_blocks(self.features, self.present, self.modalities, train_rows=rows[fit])
        return {p: FeatureDataset(x[np.asarray(r, dtype=np.int64)], y[np.asarray(r, dtype=np.int64)],
                                  mask[np.asarray(r, dtype=np.int64)]) for p, r in rows.items()}

    def for_method(self, method: OpenSetMethod) -> FeatureDataset:
        """Every clip for a fitted feature method: an absent block is filled with the method's
        training mean (:meth:`~openmer.methods.feature_method.FeatureMethod.block_mean`), with a warning."""
        from openmer.methods.feature_method import FeatureMethod

        self._check(method)
        fm = cast(FeatureMethod, method)
        if self.present is not None:
            for m in self.modalities:
                if m in self.present and not self.present[m].all():
                    warnings.warn(OpenmerWarning(f"{int((~self.present[m]).sum())} clip(s) lack {m}; {method.name} "
                                                 "uses the training mean for it"), stacklevel=3)
        x, _ = fill_absent_blocks(self.features, self.present, self.modalities,
                                  block_mean=fm.block_mean().detach().cpu().numpy())
        return FeatureDataset(x, self.labels)


#: ``consumes`` value -> its input pipeline
INPUTS: dict[str, type[MethodInputs]] = {c.consumes: c for c in (ClipInputs, FeatureInputs)}


def method_inputs(consumes: Consumes, clips: ClipDataset, encoders: Mapping[str, Any], *,
                  cache_dir: str | Path | None = None,
                  progress: Callable[[int, int, str], None] | None = None) -> MethodInputs:
    """The inputs a method that declares ``consumes`` reads for ``clips``.

    Args:
        consumes: the method's :attr:`~openmer.methods.base.OpenSetMethod.consumes`.
        clips: the clips (built with the encoders' ``vision_preprocess``).
        encoders: modality -> frozen encoder (the run's profile encoders for ``"features"``).
        cache_dir: the feature cache (``"features"`` only; ``None`` = no cache).

    Raises:
        ConfigError: an unknown ``consumes`` value.
    """
    if consumes not in INPUTS:
        raise ConfigError(f"no input pipeline for consumes={consumes!r}; known: {sorted(INPUTS)}")
    return INPUTS[consumes].from_clips(clips, encoders, cache_dir=cache_dir, progress=progress)
