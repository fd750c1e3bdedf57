"""The one rule for a clip that lacks a modality, for methods on concatenated features.

A feature head (MSP, the ARPL baseline) sees one vector per clip: the modalities' unprompted
features concatenated in a fixed order. It cannot leave a block out the way HCEP does, so a
clip's absent block is *filled with the training mean of that block*, computed over the training
clips that have the modality, and the head's standardisation statistics are computed over the
present values only (:meth:`openmer.methods.heads.FeatureEmbedding.fit_statistics` with the
returned mask). After standardisation the filled block is therefore exactly zero. The same rule
is used by ``openmer benchmark``, ``openmer train``, ``openmer evaluate`` and ``openmer predict``
(``docs/interpretation.md``, "Missing modalities").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from openmer.errors import MissingModalityError

__all__ = ["fill_absent_blocks"]


def fill_absent_blocks(
    features: Mapping[str, np.ndarray],
    present: Mapping[str, np.ndarray] | None,
    modalities: Sequence[str],
    *,
    train_rows: Sequence[int] | np.ndarray | None = None,
    block_mean: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate per-modality features; absent blocks get the training mean of present rows.

    Args:
        features: modality -> (N, D_m) float features (the values of absent rows are ignored).
        present: modality -> (N,) bool, False where the clip lacks the modality
            (:func:`openmer.data.feature_cache.encode_features` returns it); ``None``, or a
            modality missing from it, means every clip has it.
        modalities: the blocks, in concatenation order.
        train_rows: indices of the training clips whose present rows give each block's mean
            (default: every row). Ignored when ``block_mean`` is given.
        block_mean: (sum D_m,) the means to fill with instead, e.g. a fitted head's
            standardisation mean at inference (which is the training mean of present rows).

    Returns:
        ``(x, mask)``: (N, sum D_m) float32 features with every absent block replaced by its
        mean, and (N, sum D_m) bool, True where the value was observed. Training statistics are
        to be computed where ``mask`` is True only.

    Raises:
        MissingModalityError: a block has no present training row (a feature head cannot learn
            a modality it never saw: leave it out of the modalities).
        ValueError: feature tables of different lengths, or ``block_mean`` of the wrong size.
    """
    if not modalities:
        raise ValueError("no modality to concatenate")
    n = len(features[modalities[0]])
    blocks, masks = [], []
    offset = 0
    for m in modalities:
        f = np.asarray(features[m], dtype=np.float32)
        if f.ndim != 2 or len(f) != n:
            raise ValueError(f"features[{m!r}] must be (N={n}, D); got {f.shape}")
        has = np.ones(n, dtype=bool) if present is None or m not in present else np.asarray(present[m], dtype=bool)
        if has.shape != (n,):
            raise ValueError(f"present[{m!r}] must be ({n},); got {has.shape}")
        d = f.shape[1]
        if block_mean is not None:
            mean = np.asarray(block_mean, dtype=np.float32)[offset: offset + d]
            if mean.shape != (d,):
                raise ValueError(f"block_mean has {np.size(block_mean)} values, fewer than the blocks' dimensions")
        else:
            rows = np.arange(n) if train_rows is None else np.asarray(train_rows, dtype=np.int64)
            rows = rows[has[rows]]
            if len(rows) == 0:
                raise MissingModalityError(f"no training clip has {m}; a feature head cannot use it "
                                           "(leave it out of the modalities)")
            mean = f[rows].mean(axis=0)
        if not has.all():
            f = f.copy()
            f[~has] = mean
        blocks.append(f)
        masks.append(np.repeat(has[:, None], d, axis=1))
        offset += d
    if block_mean is not None and np.size(block_mean) != offset:
        raise ValueError(f"block_mean has {np.size(block_mean)} values; the blocks have {offset}")
    return np.concatenate(blocks, axis=1), np.concatenate(masks, axis=1)
