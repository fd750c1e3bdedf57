"""Common base of the methods that work on precomputed feature vectors (``batch["features"]``).

Every feature method is a classifier head: :meth:`FeatureMethod.head` gives its class logits and
penultimate features, so any post-hoc score of :mod:`openmer.methods.posthoc` can replace the
method's own confidence (``score=`` in the config), on the same trained head.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Self, TypeVar

import torch
from pydantic import Field, field_validator, model_validator
from torch import Tensor, nn

from openmer.errors import MissingModalityError
from openmer.methods.base import (
    Batch,
    Consumes,
    MethodConfig,
    OpenSetMethod,
    OpenSetScores,
)
from openmer.methods.heads import BlockEmbedding, FeatureEmbedding
from openmer.methods.posthoc import POSTHOC_SCORES, HeadOutputs, get_score, head_outputs

#: the block layout of a feature vector that is not split into modalities
ONE_BLOCK = "features"


class FeatureMethodConfig(MethodConfig):
    """Shared options of the feature-level methods.

    Attributes:
        input_dim: D, the width of ``batch["features"]``.
        hidden_dim / embed_dim / dropout: the :class:`FeatureEmbedding` MLP.
        blocks: the modality layout of the concatenated feature vector, ordered ``(name, width)``
            pairs whose widths sum to ``input_dim`` (e.g. ``(("face_au", 35), ("audio", 259))``);
            ``None`` = one block. Methods with per-modality streams (LPL) split on it; the others
            only record it.
        score: a post-hoc score (:data:`~openmer.methods.posthoc.POSTHOC_SCORES`) that replaces the
            method's own confidence, computed on the same trained head; ``None`` = the method's own
            score (its paper's), named by the class's ``own_score``.
    """

    input_dim: int = Field(gt=0)
    hidden_dim: int = Field(default=256, ge=0)
    embed_dim: int = Field(default=128, gt=0)
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    blocks: tuple[tuple[str, int], ...] | None = None
    score: str | None = None

    @field_validator("score")
    @classmethod
    def _known_score(cls, v: str | None) -> str | None:
        if v is not None:
            get_score(v)  # ConfigError (a ValueError) listing the choices
        return v

    @model_validator(mode="after")
    def _blocks_fit(self) -> FeatureMethodConfig:
        if self.blocks is not None:
            names = [n for n, _ in self.blocks]
            if not self.blocks or len(set(names)) != len(names) or any(d <= 0 for _, d in self.blocks):
                raise ValueError(f"blocks must be distinct (name, width > 0) pairs, got {self.blocks}")
            if sum(d for _, d in self.blocks) != self.input_dim:
                raise ValueError(f"block widths {self.blocks} do not sum to input_dim={self.input_dim}")
        return self

    def block_layout(self) -> tuple[tuple[str, int], ...]:
        """``blocks``, or the single block ``(("features", input_dim),)``."""
        return self.blocks or ((ONE_BLOCK, self.input_dim),)


def feature_blocks(features: Mapping[str, Any], modalities: Sequence[str]) -> list[tuple[str, int]]:
    """The ``blocks`` value for ``modalities`` concatenated in that order: ``[(name, width), ...]``.

    Args:
        features: modality -> (N, D_m) array or tensor.
        modalities: the modalities, in concatenation order.
    """
    return [(m, int(features[m].shape[1])) for m in modalities]


#: the config class of a method on features
FeatureConfigT = TypeVar("FeatureConfigT", bound=FeatureMethodConfig)


class FeatureMethod(OpenSetMethod[FeatureConfigT]):
    """An :class:`OpenSetMethod` whose input is ``batch["features"]`` of shape (B, input_dim).

    Subclasses implement :meth:`loss`, :meth:`head` (logits + penultimate features) and
    :meth:`own_scores` (the paper's confidence); :meth:`score` uses the configured post-hoc score
    instead once it is fitted (:meth:`finalize` fits it on the training data after training).
    """

    consumes: ClassVar[Consumes] = "features"
    #: the name of the method's own (paper) confidence, reported with its results
    own_score: ClassVar[str]

    def __init__(self, config: FeatureConfigT, known_classes: Sequence[str]):
        super().__init__(config, known_classes)
        self.embedding = self.build_embedding(config)
        self.posthoc = get_score(config.score)() if config.score is not None else None

    def build_embedding(self, config: FeatureMethodConfig) -> nn.Module:
        """The learned embedding of the features (default: the :class:`FeatureEmbedding` MLP)."""
        return FeatureEmbedding(config.input_dim, config.hidden_dim, config.embed_dim, config.dropout)

    @classmethod
    def score_choices(cls) -> tuple[str, ...]:
        """The method's own scores (:attr:`scores`), then every registered post-hoc score."""
        return tuple(dict.fromkeys([*cls.scores, *POSTHOC_SCORES]))

    @classmethod
    def score_options(cls, score: str) -> dict[str, Any]:
        """One of the method's own scores (:attr:`scores`), else a post-hoc score on its head
        (``{"score": name}``).

        Raises:
            ConfigError: neither (the message lists the choices).
        """
        if score in cls.scores or score not in POSTHOC_SCORES:
            return super().score_options(score)
        return {"score": score}

    @property
    def score_name(self) -> str:
        """The confidence :meth:`score` reports: the configured post-hoc score, or the method's own."""
        return self.config.score or self.own_score

    def input_features(self, batch: Batch) -> Tensor:
        """(B, input_dim) the method's input: ``batch["features"]`` (the cached unprompted encoder
        features) as float32 on the module's device.

        Raises:
            MissingModalityError: no ``features`` key.
            ValueError: wrong feature dimension.
        """
        if "features" not in batch:
            raise MissingModalityError(
                f"{type(self).__name__} needs precomputed 'features' in the batch; got keys {sorted(batch)}")
        x = torch.as_tensor(batch["features"], dtype=torch.float32, device=self._fitted.device)
        if x.ndim != 2 or x.shape[1] != self.config.input_dim:
            raise ValueError(f"features must be (B, {self.config.input_dim}); got {tuple(x.shape)}")
        return x

    @torch.no_grad()
    def features(self, batch: Batch) -> Tensor:
        """(B, E) the learned representation the scores come from: the :meth:`head`'s penultimate
        features (the trained embedding of :meth:`input_features`, e.g. MSP's and ARPL's
        ``embedding`` output before the classifier), for t-SNE and discovery; not the input
        (:meth:`input_features`).

        Raises:
            MissingModalityError / ValueError: as :meth:`input_features`.
        """
        return self.head(batch).features

    def labels(self, batch: Batch) -> Tensor:
        """``batch["label"]`` as int64 on the module's device."""
        return torch.as_tensor(batch["label"], dtype=torch.int64, device=self._fitted.device)

    def setup(self, train: Iterable[Batch]) -> None:
        """Standardisation statistics of the training features (observed values only, where the
        batches carry ``"features_present"``); a post-hoc score fitted before is dropped (its
        statistics belong to the old weights; :meth:`finalize` fits it again)."""
        batches = list(train)
        x = torch.cat([self.input_features(b) for b in batches])
        present = None
        if all("features_present" in b for b in batches):
            present = torch.cat([torch.as_tensor(b["features_present"], dtype=torch.bool) for b in batches])
            present = present.to(x.device)
        self._standardising_embedding().fit_statistics(x, present)
        self.reset_posthoc()

    def reset_posthoc(self) -> None:
        """Drop a fitted post-hoc score's statistics (they belong to the old weights)."""
        if self.posthoc is not None and self.config.score is not None:  # (posthoc is set iff score is)
            self.posthoc = get_score(self.config.score)().to(self._fitted.device)

    # ---------------------------------------------------------------- scores
    @abstractmethod
    def head(self, batch: Batch) -> HeadOutputs:
        """(B, K) logits (argmax = prediction) and (B, E) penultimate features, for post-hoc scores."""

    def block_mean(self) -> Tensor:
        """(input_dim,) the training mean of each input feature over the clips that had its
        modality: what a clip's absent block is filled with when the fitted method is applied
        (:func:`openmer.data.feature_blocks.fill_absent_blocks`; the embedding's standardisation mean)."""
        return self._standardising_embedding().mean

    def _standardising_embedding(self) -> FeatureEmbedding | BlockEmbedding:
        """The embedding that holds the training statistics (a subclass with another embedding
        overrides :meth:`setup` and :meth:`block_mean`)."""
        if not isinstance(self.embedding, FeatureEmbedding | BlockEmbedding):
            raise TypeError(f"{type(self).__name__}'s embedding {type(self.embedding).__name__} keeps no "
                            "training statistics; override setup() and block_mean()")
        return self.embedding

    @abstractmethod
    def own_scores(self, batch: Batch) -> OpenSetScores:
        """The method's own (paper) scores of a batch."""

    @torch.no_grad()
    def score(self, batch: Batch) -> OpenSetScores:
        if self.posthoc is not None and self.posthoc.is_fitted:
            out = self.head(batch)
            return OpenSetScores(self.posthoc(out), out.logits.argmax(dim=1), torch.softmax(out.logits, dim=1))
        return self.own_scores(batch)

    @torch.no_grad()
    def finalize(self, train: Iterable[Batch]) -> None:
        """Fit the configured post-hoc score on the known training samples' head outputs."""
        if self.posthoc is not None and self.posthoc.needs_fit:
            self.posthoc.fit(*head_outputs(self, train), linear=self.linear_head())

    # ---------------------------------------------------------------- persistence
    def extra_state(self) -> dict[str, Any]:
        return {"posthoc_shapes": self.posthoc.state_shapes()} if self.posthoc is not None else {}

    @classmethod
    def build(cls, config: FeatureConfigT, known_classes: Sequence[str], *, extra: Mapping[str, Any] | None = None,
              **kwargs: Any) -> Self:
        """Construct, with room for a saved post-hoc score's statistics (``extra["posthoc_shapes"]``)."""
        method = cls(config, known_classes)
        if method.posthoc is not None and extra and extra.get("posthoc_shapes"):
            method.posthoc.allocate(extra["posthoc_shapes"])
        return method
