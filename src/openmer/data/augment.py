"""Corruptions applied to *training* clips only (``--augment``): what makes a model hold up in noisy rooms.

One scheme for every caller (``openmer train --augment``, ``openmer benchmark robustness --augment``),
built on :class:`openmer.media.corruptions.Augmentation` (with probability ``p`` a clip gets one of
the named corruptions, uniform, at a severity uniform in ``1..max_severity``; else it stays clean):

- the methods on clips (HCEP, HESP) read :class:`AugmentedClips`: the training part's clips
  corrupted **on the fly**, a new draw every epoch, seeded per (seed, clip id, epoch)
  (:func:`clip_rng`; the training loop sets the epoch, :meth:`AugmentedClips.start_epoch`);
- the methods on features train on cached encoder features, so a new corruption every epoch would
  mean encoding every epoch: :func:`augmented_features` encodes the epoch-0 draw of every training
  clip once (one augmented copy per clip, K = 1) and replaces those clips' features with it.

Nothing else is touched: validation and test clips are never augmented (the deployable threshold
is chosen on clean known-class clips), a run folder records the augmentation (``run.json``) and
loading or applying a run never applies it. Babble is made of training clips
(:func:`babble_pool`: never a test speaker's), substitutes of the training transcripts' words.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from openmer.data.clips import ClipDataset
from openmer.data.feature_cache import encode_items
from openmer.errors import DataError
from openmer.media.corruptions import Augmentation, CorruptionPool, Sample

__all__ = ["AugmentedClips", "augmented_features", "babble_pool", "clip_rng", "corrupt_item", "neighbour_texts",
           "training_material"]

#: training clips babble is drawn from, per run
BABBLE_CLIPS = 24


def neighbour_texts(clips: ClipDataset, groups: Sequence[str]) -> dict[int, str]:
    """Row -> the transcript of the next clip of the same speaker (manifest order, wrapping) whose
    transcript differs; rows without one are absent (the ``neighbour_text`` corruption)."""
    man = clips.manifest
    by_group: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    out: dict[int, str] = {}
    for rows in by_group.values():
        texts = [man.text_of(man[i]) or "" for i in rows]
        for k, i in enumerate(rows):
            for step in range(1, len(rows)):
                other = texts[(k + step) % len(rows)]
                if other and other != texts[k]:
                    out[i] = other
                    break
    return out


def babble_pool(clips: ClipDataset, groups: Sequence[str], train_rows: Sequence[int] | np.ndarray,
                test_rows: Sequence[int] | np.ndarray,
                n: int, seed: int) -> CorruptionPool:
    """Babble from up to ``n`` seeded clips of the training rows, and the training transcripts'
    words (substitutes).

    Raises:
        DataError: a training clip's speaker is also a test speaker (the protocol's groups overlap).
    """
    test_groups = {groups[i] for i in test_rows}
    train = [int(i) for i in train_rows]
    rng = np.random.default_rng(seed)
    pick: list[int] = rng.choice(len(train), size=min(n, len(train)), replace=False).tolist() if train else []
    waves, owners = [], []
    for j in pick:
        i = train[int(j)]
        if groups[i] in test_groups:
            raise DataError(clips.manifest.root, f"babble clip {i} is from test speaker {groups[i]!r}")
        item = clips[i]
        if item.get("audio") is not None:
            waves.append(np.asarray(item["audio"], dtype=np.float32))
            owners.append(groups[i])
    man = clips.manifest
    vocab = sorted({w for i in train for w in (man.text_of(man[i]) or "").split()})
    return CorruptionPool(babble=tuple(waves), babble_groups=tuple(owners), vocabulary=tuple(vocab))


def training_material(clips: ClipDataset, groups: Sequence[str], train_rows: Sequence[int] | np.ndarray, *, seed: int,
                      n: int = BABBLE_CLIPS) -> tuple[CorruptionPool, dict[str, str]]:
    """What the augmentation of the training rows draws on: :func:`babble_pool` of ``n`` seeded
    training clips, and clip id -> neighbouring transcript of its speaker (:func:`neighbour_texts`)."""
    pool = babble_pool(clips, groups, train_rows, [], n, seed)
    man = clips.manifest
    return pool, {man[i].id: t for i, t in neighbour_texts(clips, groups).items()}


def corrupt_item(item: Mapping[str, Any], transform: Callable[[Sample], Sample],
                 neighbour_text: str | None = None) -> dict[str, Any] | None:
    """A :class:`~openmer.data.clips.ClipDataset` item with ``transform`` applied to its audio and
    transcript (a corruption), or ``None`` when ``transform`` left it as it was (returned the same
    :class:`~openmer.media.corruptions.Sample`). The item itself is not modified."""
    audio = item.get("audio")
    s = Sample(audio=None if audio is None else np.asarray(audio, dtype=np.float32), text=item.get("text"),
               neighbour_text=neighbour_text)
    out = transform(s)
    if out is s:
        return None
    new = dict(item)
    if "audio" in new:
        new["audio"] = None if out.audio is None else torch.from_numpy(np.ascontiguousarray(out.audio))
    if "text" in new:
        new["text"] = out.text or None
    return new


def clip_rng(seed: int, clip_id: str, epoch: int) -> np.random.Generator:
    """The generator of clip ``clip_id``'s augmentation at ``epoch``: ``default_rng([seed, crc32(id), epoch])``
    (the same clip gets the same draw in any subset, order or process)."""
    return np.random.default_rng([seed, zlib.crc32(clip_id.encode()), epoch])


class AugmentedClips(Dataset):
    """Training clips with ``augmentation`` applied on the fly, a new seeded draw per clip and epoch.

    Items are ``clips``' items (:class:`~openmer.data.clips.ClipDataset`), the audio and transcript
    corrupted as :meth:`openmer.media.corruptions.Augmentation.__call__` draws it from
    :func:`clip_rng` ``(seed, item id, epoch)``. :func:`openmer.training.fit` calls
    :meth:`start_epoch` before each epoch, so a resumed run draws
    the same corruptions. Wrap the training part only.

    Args:
        clips: the training clips (a :class:`ClipDataset` or one of its subsets).
        augmentation: what to apply (names, probability, severity range).
        seed: the run's (or trial's) seed.
        pool: babble clips and substitute words, from training clips only (:func:`babble_pool`).
        neighbours: clip id -> the transcript of a neighbouring clip of its speaker (``neighbour_text``).
    """

    def __init__(self, clips: ClipDataset, augmentation: Augmentation, *, seed: int,
                 pool: CorruptionPool | None = None, neighbours: Mapping[str, str] | None = None):
        self.clips = clips
        self.augmentation = augmentation
        self.seed = int(seed)
        self.pool = pool or CorruptionPool()
        self.neighbours = dict(neighbours or {})
        self.epoch = 0

    collate_fn = staticmethod(ClipDataset.collate_fn)

    def start_epoch(self, epoch: int) -> None:
        """The epoch the next items are drawn for."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.clips)

    def augmented(self, i: int) -> dict[str, Any] | None:
        """Clip ``i`` augmented at the current epoch, or ``None`` when its draw leaves it clean."""
        item = self.clips[i]
        cid = str(item["id"])
        rng = clip_rng(self.seed, cid, self.epoch)
        return corrupt_item(item, lambda s: self.augmentation(s, rng, self.pool), self.neighbours.get(cid))

    def __getitem__(self, i: int) -> dict[str, Any]:
        out = self.augmented(i)
        return dict(self.clips[i]) if out is None else out

    def batches(self, batch_size: int = 16) -> list[dict[str, Any]]:
        """The clips in order at the current epoch, batched."""
        return [self.collate_fn([self[j] for j in range(i, min(i + batch_size, len(self)))])
                for i in range(0, len(self), batch_size)]


def augmented_features(clips: AugmentedClips, rows: Sequence[int] | np.ndarray, features: Mapping[str, np.ndarray],
                       present: Mapping[str, np.ndarray] | None, encoders: Mapping[str, Any],
                       ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``features`` with the rows of the clips that ``clips``' epoch-0 draw corrupts replaced by
    those clips' features (encoded once through ``encoders``, never cached on disk).

    Args:
        clips: the training clips, augmented (its :attr:`AugmentedClips.clips` is ``rows`` of the
            clips ``features`` was encoded from, in that order).
        rows: (n,) the row of each of ``clips`` in ``features``.
        features: modality -> (N, D_m) clean features; ``present``: modality -> (N,) bool (``None``: all).
        encoders: modality -> frozen encoder.

    Returns:
        New ``(features, present)`` arrays (the inputs are not modified); rows outside ``rows``,
        and the rows whose draw leaves them clean (a share ``1 - p``), are the clean ones.
    """
    feats = {m: np.array(v, copy=True) for m, v in features.items()}
    pres = {m: (np.ones(len(v), bool) if present is None else np.array(present[m], copy=True))
            for m, v in feats.items()}
    clips.start_epoch(0)
    chosen, items = [], []
    for k, row in enumerate(rows):
        item = clips.augmented(k)
        if item is not None:
            chosen.append(int(row))
            items.append(item)
    if items:
        enc, enc_present = encode_items(items, dict(encoders), list(feats))
        for m in feats:
            feats[m][chosen] = enc[m]
            pres[m][chosen] = enc_present[m]
    return feats, pres


def augmented_training(clips: ClipDataset, groups: Sequence[str], rows: Sequence[int] | np.ndarray,
                       augmentation: Augmentation, *, seed: int, features: Mapping[str, np.ndarray] | None = None,
                       present: Mapping[str, np.ndarray] | None = None, encoders: Mapping[str, Any] | None = None,
                       ) -> tuple[AugmentedClips, dict[str, np.ndarray] | None, dict[str, np.ndarray] | None]:
    """The training rows of ``clips`` augmented, as every caller of ``--augment`` needs them.

    Args:
        clips: every clip (training rows and the others).
        groups: (N,) each clip's speaker (babble and neighbouring transcripts stay within the
            training rows, :func:`training_material`).
        rows: (n,) the training rows.
        augmentation: what to apply; ``seed``: the run's (or plan's) seed.
        features, present, encoders: for a method on features, ``clips``' clean features
            (modality -> (N, D_m)) and the encoders to encode the augmented copies with.

    Returns:
        ``(train, features, present)``: :class:`AugmentedClips` over ``rows`` (its ``pool`` and
        ``neighbours`` serve other subsets of the same training speakers), and the features with
        the epoch-0 draw's augmented copies (:func:`augmented_features`; ``None`` without ``features``).
    """
    pool, neighbours = training_material(clips, groups, rows, seed=seed)
    train = AugmentedClips(clips.subset([int(i) for i in rows]), augmentation, seed=seed, pool=pool,
                           neighbours=neighbours)
    if features is None:
        return train, None, None
    feats, pres = augmented_features(train, rows, features, present, encoders or {})
    return train, feats, pres
