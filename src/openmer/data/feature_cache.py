"""Unprompted encoder features cached on disk, so a clip is encoded once per encoder.

Cache key of one feature vector: sha256 of the clip's content for that modality (the bytes of
the media file plus the segment bounds, or the transcript's text) + the encoder's kind and
weights (``name_or_path``) + the preprocessing (frames per video, audio limit). One ``.npz`` file
per encoder and preprocessing under ``cache_dir`` maps content hashes to vectors. A second run,
or another baseline on the same encoders, reads them instead of re-encoding.

The cache only saves time, so its faults never stop the work: a cache file that cannot be read
(truncated, not an ``.npz``, holding an object array or a vector of the wrong shape) is an
:class:`~openmer.errors.OpenmerWarning`, and its clips are encoded again and the file rewritten;
a cache folder that cannot be written (read-only, a file in the way, a full disk) is a warning
before any encoding, and the features are computed without storing them.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from openmer.backbones.base import Encoder
from openmer.data.clips import ClipDataset, modality_present
from openmer.errors import OpenmerWarning, OutputError
from openmer.files import atomic_path, check_writable

logger = logging.getLogger(__name__)

_file_hashes: dict[tuple[str, float], str] = {}


def _file_sha(path: Path) -> str:
    key = (str(path), path.stat().st_mtime)
    if key not in _file_hashes:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _file_hashes[key] = h.hexdigest()
    return _file_hashes[key]


def content_key(dataset: ClipDataset, i: int, modality: str) -> str | None:
    """Hash of what sample ``i`` feeds to ``modality``'s encoder (``None`` when absent)."""
    man = dataset.manifest
    s = man[i]
    if modality == "text":
        text = man.text_of(s)
        return None if not text else hashlib.sha256(("text:" + text).encode()).hexdigest()
    path = man.path(s, "audio") if modality == "audio" else None
    path = path or man.path(s, "video")
    if path is None:
        return None
    return hashlib.sha256(f"{modality}:{_file_sha(path)}:{s.start}:{s.end}".encode()).hexdigest()


def encoder_key(encoder: Encoder, dataset: ClipDataset) -> str:
    """Identity of encoder + preprocessing, as a short file-name-safe hash."""
    ident = f"{encoder.kind}|{encoder.name_or_path}|frames={dataset.num_frames}|max_s={dataset.max_audio_seconds}"
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


#: what reading a damaged ``.npz`` raises (truncated zip, not a zip, an object array, bad compression...)
_UNREADABLE = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)


def _warn(message: str) -> None:
    warnings.warn(OpenmerWarning(message), stacklevel=3)


def writable_cache(cache_dir: str | Path | None) -> bool:
    """Whether features can be stored in ``cache_dir`` (created if missing); a warning when not.

    Checked once, before any encoding: a read-only cache folder slows the work down, it never stops it.
    """
    if cache_dir is None:
        return False
    try:
        check_writable(cache_dir)
    except OutputError as exc:
        _warn(f"{exc}: the feature cache cannot be written there; features are computed without storing them "
              "(set OPENMER_CACHE, or pass another cache folder, to keep them)")
        return False
    return True


def read_cache(path: Path, dim: int) -> tuple[dict[str, np.ndarray], bool]:
    """The vectors of a cache file that can be used, and whether anything in it could not.

    Args:
        path: a cache ``.npz`` (content hash -> vector); a missing file is an empty cache.
        dim: the encoder's output width; an entry of another shape, not float or not finite is unusable.

    Returns:
        ``(store, damaged)``: content hash -> (dim,) float32; ``damaged`` when the file or some
        entries could not be used (each case is one warning naming the file; those clips are
        encoded again).
    """
    if not path.is_file():
        return {}, False
    store: dict[str, np.ndarray] = {}
    bad = 0
    try:
        with np.load(path, allow_pickle=False) as z:
            names = list(z.files)
            for k in names:
                try:
                    v = z[k]
                except _UNREADABLE:
                    bad += 1
                    continue
                if v.shape != (dim,) or v.dtype.kind != "f" or not np.isfinite(v).all():
                    bad += 1
                    continue
                store[k] = v.astype(np.float32, copy=False)
    except _UNREADABLE as exc:
        _warn(f"{path}: feature cache cannot be read ({type(exc).__name__}: {exc}); its clips are encoded again "
              "and the file rewritten")
        return {}, True
    if bad:
        _warn(f"{path}: {bad} of {len(names)} cached feature vector(s) cannot be used (unreadable, or not "
              f"{dim} finite floats); their clips are encoded again and the file rewritten")
    return store, bad > 0


@torch.no_grad()
def encode_features(
    dataset: ClipDataset,
    encoders: dict[str, Encoder],
    *,
    cache_dir: str | Path | None = None,
    batch_size: int = 16,
    progress: Callable[[int, int, str], None] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Unprompted features of every clip, per modality, through the cache.

    Args:
        dataset: the clips (its ``modalities`` decide which encoders run).
        encoders: modality -> frozen encoder.
        cache_dir: folder of the on-disk cache (``None`` = no cache). A damaged cache file or a
            folder that cannot be written is a warning, never an error (module docstring).
        batch_size: clips per encoder call.
        progress: ``progress(done, total, message)``.

    Returns:
        ``(features, present)``: modality -> (N, D) float32, and modality -> (N,) bool (False
        where the clip lacks the modality; its row is then zeros, to be filled by
        :func:`openmer.data.feature_blocks.fill_absent_blocks` before a feature head sees it).
    """
    n = len(dataset)
    feats: dict[str, np.ndarray] = {}
    present: dict[str, np.ndarray] = {}
    store_new = writable_cache(cache_dir)  # before any encoding
    for m in dataset.modalities:
        enc = encoders[m]
        dim = int(enc.embed_dim)
        keys = [content_key(dataset, i, m) for i in range(n)]
        store: dict[str, np.ndarray] = {}
        path, damaged = None, False
        if cache_dir is not None:
            path = Path(cache_dir) / f"{m}-{encoder_key(enc, dataset)}.npz"
            store, damaged = read_cache(path, dim)
        todo = [i for i, k in enumerate(keys) if k is not None and k not in store]
        logger.info("%s: %d of %d clips cached, encoding %d", m, n - len(todo), n, len(todo))
        for start in range(0, len(todo), batch_size):
            idx = todo[start : start + batch_size]
            batch = dataset.collate_fn([dataset[i] for i in idx])
            sel = modality_present(batch, m, len(idx)).nonzero().squeeze(1)
            if len(sel) == 0:
                continue
            out = enc.encode_batch(batch, sel)
            for j, row in zip(sel.tolist(), out.float().cpu().numpy(), strict=True):
                store[keys[idx[j]]] = row
            if progress:
                progress(min(start + batch_size, len(todo)), len(todo), f"encoding {m}")
        if path is not None and store_new and (todo or damaged):
            try:
                with atomic_path(path) as tmp, tmp.open("wb") as fh:
                    np.savez(fh, **store)  # type: ignore[arg-type]  # numpy stub: a key could be allow_pickle
            except OutputError as exc:
                _warn(f"{exc}: the {m} features were not stored in the cache; the work goes on")
        present[m] = np.array([k is not None and k in store for k in keys])
        feats[m] = np.stack([store[k] if (k is not None and k in store) else np.zeros(dim, np.float32)
                             for k in keys]).astype(np.float32)
    return feats, present


@torch.no_grad()
def encode_items(items: list[dict[str, Any]], encoders: dict[str, Encoder], modalities: Sequence[str],
                 batch_size: int = 16) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Unprompted features of clip items that are not a manifest's clips (corrupted, augmented), as
    :func:`encode_features` computes them, without any cache (their content is not the file's).

    Args:
        items: :class:`~openmer.data.clips.ClipDataset` items.
        encoders: modality -> frozen encoder; ``modalities``: those to encode.

    Returns:
        ``(features, present)``: modality -> (n, D) float32 (zeros where absent) and (n,) bool.
    """
    feats = {m: np.zeros((len(items), int(encoders[m].embed_dim)), np.float32) for m in modalities}
    present = {m: np.zeros(len(items), bool) for m in modalities}
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        batch = ClipDataset.collate_fn(chunk)
        for m in modalities:
            sel = modality_present(batch, m, len(chunk)).nonzero().squeeze(1)
            if len(sel) == 0:
                continue
            out = encoders[m].encode_batch(batch, sel).float().cpu().numpy()
            feats[m][start + sel.numpy()] = out
            present[m][start + sel.numpy()] = True
    return feats, present
