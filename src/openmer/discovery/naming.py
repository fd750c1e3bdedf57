"""Name a cluster from an open vocabulary: its members' features, brought into the text encoder's
space, compared with the features of one prompt sentence per word.

Two alignments bring a clip's features into text space (``docs/discover.md``, "Names"):

- the run's own (:meth:`OpenSetMethod.text_query <openmer.methods.base.OpenSetMethod.text_query>`):
  HCEP's L_emo query, the projection of F_M that training aligned with the class sentences F_T+
  (Eq. 5-6);
- :class:`RidgeAlignment` for a run without one (the feature methods, and the unprompted baseline):
  a ridge regression from the training clips' features to the text features of their class's
  sentence, i.e. the same supervision L_emo gets (the known classes' sentences), fitted after the fact.

A cluster's query is the mean of its members' L2-normalised text-space features; each word's
score is the cosine of that query with the word's sentence feature (Eq. 5's similarity).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from openmer.discovery.words import Vocabulary
from openmer.errors import ConfigError

__all__ = ["RidgeAlignment", "TextAlignment", "cluster_queries", "encode_sentences", "name_clusters"]

#: (N, E) features -> (N, D_T) text-space features
TextAlignment = Callable[[np.ndarray], np.ndarray]
#: sentences encoded per call of the text encoder
TEXT_BATCH = 64


@torch.no_grad()
def encode_sentences(text_encoder: Any, sentences: Sequence[str]) -> np.ndarray:
    """(S, D_T) features of ``sentences`` through the frozen ``text_encoder`` (no prompts), in float64."""
    was = getattr(text_encoder, "training", False)
    if hasattr(text_encoder, "eval"):
        text_encoder.eval()
    parts = [text_encoder(list(sentences[i:i + TEXT_BATCH])).detach().cpu().double().numpy()
             for i in range(0, len(sentences), TEXT_BATCH)]
    if was:
        text_encoder.train(True)
    return np.concatenate(parts) if parts else np.zeros((0, 0))


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


class RidgeAlignment:
    """A linear map from a run's features to the text space, fitted on its training clips.

    ``q(x) = (x - mean) W + b`` with ``W, b`` the ridge regression (scikit-learn ``Ridge``,
    ``alpha``) of each training clip's L2-normalised class-sentence feature on its features.

    Args:
        features: (N, E) training clips' features.
        labels: (N,) their known-class index.
        class_text: (K, D_T) the text features of the K known classes' sentences.
        alpha: ridge penalty.

    Raises:
        ConfigError: mismatched shapes, or fewer than 2 classes among the labels.
    """

    def __init__(self, features: np.ndarray, labels: np.ndarray, class_text: np.ndarray, *, alpha: float = 1.0):
        from sklearn.linear_model import Ridge

        x = np.asarray(features, dtype=np.float64)
        y = np.asarray(labels, dtype=np.int64)
        t = _unit(np.asarray(class_text, dtype=np.float64))
        if x.ndim != 2 or len(x) != len(y) or (y < 0).any() or (y >= len(t)).any():
            raise ConfigError(f"a text alignment needs (N, E) features with N known-class labels < {len(t)}; "
                              f"got features {x.shape}, labels {y.shape}")
        if len(np.unique(y)) < 2:
            raise ConfigError("a text alignment needs training clips of at least 2 classes")
        self.mean = x.mean(axis=0)
        self.model = Ridge(alpha=alpha).fit(x - self.mean, t[y])

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(np.asarray(features, dtype=np.float64) - self.mean))


def cluster_queries(text_features: np.ndarray, labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """(C, D_T): per cluster c, the L2-normalised mean of its members' L2-normalised text-space features.

    Args:
        text_features: (N, D_T) every clip's text-space features.
        labels: (N,) cluster of each clip (-1: none).
        n_clusters: C.
    """
    q = _unit(np.asarray(text_features, dtype=np.float64))
    return _unit(np.stack([q[labels == c].mean(axis=0) for c in range(n_clusters)])) if n_clusters else \
        np.zeros((0, q.shape[1]))


def name_clusters(queries: np.ndarray, word_features: np.ndarray, vocabulary: Vocabulary,
                  top: int = 3) -> list[list[tuple[str, float]]]:
    """The ``top`` words of each cluster by cosine of its query with the words' sentence features.

    Args:
        queries: (C, D_T) cluster queries (:func:`cluster_queries`).
        word_features: (W, D_T) the features of ``vocabulary.sentences()``.
        vocabulary: the W words.
        top: names per cluster.

    Returns:
        Per cluster, ``[(word, cosine), ...]`` best first.

    Raises:
        ConfigError: the widths differ, or W does not match the vocabulary.
    """
    w = _unit(np.asarray(word_features, dtype=np.float64))
    if len(w) != len(vocabulary.words) or (len(queries) and queries.shape[1] != w.shape[1]):
        raise ConfigError(f"cluster queries {queries.shape} and word features {w.shape} do not match "
                          f"({len(vocabulary.words)} words)")
    sims = _unit(np.asarray(queries, dtype=np.float64)) @ w.T
    out = []
    for row in sims:
        order = np.argsort(-row, kind="stable")[:top]
        out.append([(vocabulary.words[i], float(row[i])) for i in order])
    return out
