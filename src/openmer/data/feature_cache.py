"""Unprompted encoder features cached on disk, so a clip is encoded once per encoder.

Cache key of one feature vector: sha256 of the clip's content for that modality (the bytes of
the media file plus the segment bounds, or the transcript's text) + the encoder's kind and
weights (``name_or_path``) + the preprocessing (frames per video, audio limit). One ``.npz`` file
per encoder and preprocessing under ``cache_dir`` maps content hashes to vectors. A second run,
or another baseline on the same encoders, reads them instead of re-encoding.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from openmer.backbones.base import Encoder
from openmer.data.clips import ClipDataset, modality_present
from openmer.files import atomic_path

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
        cache_dir: folder of the on-disk cache (``None`` = no cache).
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
    for m in dataset.modalities:
        enc = encoders[m]
        keys = [content_key(dataset, i, m) for i in range(n)]
        store: dict[str, np.ndarray] = {}
        path = None
        if cache_dir is not None:
            path = Path(cache_dir) / f"{m}-{encoder_key(enc, dataset)}.npz"
            if path.is_file():
                with np.load(path, allow_pickle=False) as z:
                    store = {k: z[k] for k in z.files}
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
        if path is not None and todo:
            with atomic_path(path) as tmp, tmp.open("wb") as fh:
                np.savez(fh, **store)
        dim = int(enc.embed_dim)
        present[m] = np.array([k is not None and k in store for k in keys])
        feats[m] = np.stack([store[k] if (k is not None and k in store) else np.zeros(dim, np.float32) for k in keys]).astype(np.float32)
    return feats, present
