"""Decoded clips of a manifest as sample dicts for the encoders, and their batching.

A sample dict has ``"id"``, ``"label"`` (int, -1 = unknown) and, per modality in use:
``"text"`` (str or ``None``), ``"audio"`` ((T,) float32 at 16 kHz or ``None``), ``"video"``
((N, C, S, S) float32 as the vision encoder expects it, or ``None``). ``None`` = this clip
lacks the modality (a video without audio track, an empty transcript). Decoding happens once
per clip; the decoded inputs are kept in memory (``cache=True``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from openmer.data.manifest import Manifest

#: ``preprocess(frames uint8 (N, H, W, 3), path) -> (N, C, S, S) float tensor``
VisionPreprocess = Callable[[np.ndarray, Path | None], torch.Tensor]


class ClipDataset(Dataset):
    """The clips of ``manifest`` decoded for the given modalities.

    Args:
        manifest: rows with video/audio paths and transcripts.
        labels: (N,) int class indices aligned with the manifest (-1 = unknown or unlabelled).
        modalities: which of ``"text"``, ``"video"``, ``"audio"`` to decode.
        vision_preprocess: turns sampled frames into the vision encoder's input (required when
            ``"video"`` is used; e.g. face crops for the FER encoder, CLIP normalisation).
        num_frames: frames sampled uniformly per video (default 8).
        max_audio_seconds: keep at most this many seconds of audio (``None`` = all).
        cache: keep decoded inputs in memory.

    Raises (on access):
        MediaError: naming the file, for unreadable, empty or silent media.
    """

    def __init__(self, manifest: Manifest, labels: Sequence[int] | np.ndarray, modalities: Sequence[str], *,
                 vision_preprocess: VisionPreprocess | None = None, num_frames: int = 8,
                 max_audio_seconds: float | None = None, cache: bool = True):
        if len(labels) != len(manifest):
            raise ValueError(f"{len(labels)} labels for {len(manifest)} manifest rows")
        if "video" in modalities and vision_preprocess is None:
            raise ValueError("decoding video needs the vision encoder's preprocess function")
        self.manifest = manifest
        self.labels = np.asarray(labels, dtype=np.int64)
        self.modalities = tuple(modalities)
        self.vision_preprocess = vision_preprocess
        self.num_frames = num_frames
        self.max_audio_seconds = max_audio_seconds
        self._cache: dict[int, dict[str, Any]] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.manifest)

    def subset(self, indices: Sequence[int], labels: Sequence[int] | None = None) -> ClipDataset:
        """The rows at ``indices`` (sharing this dataset's decoded-clip cache), optionally relabelled."""
        idx = [int(i) for i in indices]
        new_labels = self.labels[idx] if labels is None else np.asarray(labels, dtype=np.int64)
        sub = ClipDataset(self.manifest.subset(idx), new_labels, self.modalities,
                          vision_preprocess=self.vision_preprocess, num_frames=self.num_frames,
                          max_audio_seconds=self.max_audio_seconds, cache=False)
        sub._parent = (self, idx)  # type: ignore[attr-defined]
        return sub

    def __getitem__(self, i: int) -> dict[str, Any]:
        parent = getattr(self, "_parent", None)
        if parent is not None:
            item = dict(parent[0][parent[1][i]])
            item["label"] = int(self.labels[i])
            return item
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        item = self._decode(i)
        if self._cache is not None:
            self._cache[i] = item
        return item

    def _decode(self, i: int) -> dict[str, Any]:
        from openmer.media import load_audio, load_frames, probe

        s = self.manifest[i]
        item: dict[str, Any] = {"id": s.id, "label": int(self.labels[i])}
        if "text" in self.modalities:
            item["text"] = self.manifest.text_of(s) or None
        video_path = self.manifest.path(s, "video")
        if "audio" in self.modalities:
            path = self.manifest.path(s, "audio") or video_path
            wave = None
            if path is not None and (self.manifest.path(s, "audio") is not None or probe(path).has_audio):
                end = s.end
                if self.max_audio_seconds is not None:
                    limit = (s.start or 0.0) + self.max_audio_seconds
                    end = limit if end is None else min(end, limit)
                wave = torch.from_numpy(load_audio(path, start=s.start, end=end))
            item["audio"] = wave
        if "video" in self.modalities:
            frames = None
            if video_path is not None:
                raw = load_frames(video_path, num_frames=self.num_frames, start=s.start, end=s.end)
                frames = self.vision_preprocess(raw, video_path)  # type: ignore[misc]
            item["video"] = frames
        return item

    @staticmethod
    def collate_fn(items: list[dict[str, Any]]) -> dict[str, Any]:
        """Batch sample dicts: pad audio (B, T_max) with ``audio_lengths``; stack video; ``<m>_present`` masks."""
        batch: dict[str, Any] = {"id": [it["id"] for it in items],
                                 "label": torch.tensor([it["label"] for it in items], dtype=torch.int64)}
        if "text" in items[0]:
            batch["text"] = [it["text"] or "" for it in items]
            batch["text_present"] = torch.tensor([bool(it["text"]) for it in items])
        if "audio" in items[0]:
            waves = [it["audio"] for it in items]
            present = torch.tensor([w is not None for w in waves])
            lengths = torch.tensor([0 if w is None else len(w) for w in waves], dtype=torch.int64)
            out = torch.zeros(len(items), max(int(lengths.max()), 1))
            for j, w in enumerate(waves):
                if w is not None:
                    out[j, : len(w)] = w
            batch.update(audio=out, audio_lengths=lengths, audio_present=present)
        if "video" in items[0]:
            frames = [it["video"] for it in items]
            present = torch.tensor([f is not None for f in frames])
            shape = next((f.shape for f in frames if f is not None), None)
            if shape is not None:
                batch["video"] = torch.stack([f if f is not None else torch.zeros(shape) for f in frames])
                batch["video_present"] = present
        return batch

    def batches(self, batch_size: int = 16) -> list[dict[str, Any]]:
        """The whole dataset in order, batched (for scoring and feature extraction)."""
        return [self.collate_fn([self[j] for j in range(i, min(i + batch_size, len(self)))])
                for i in range(0, len(self), batch_size)]


def vision_preprocess(encoders: dict[str, Any]) -> VisionPreprocess | None:
    """The vision encoder's ``preprocess(frames, path)`` (what :class:`ClipDataset` needs), or ``None`` without one."""
    enc = encoders.get("video")
    return None if enc is None else enc.preprocess


def modality_present(batch: Mapping[str, Any], modality: str, n: int | None = None) -> torch.Tensor:
    """(B,) bool: which samples of a :meth:`ClipDataset.collate_fn` batch have ``modality``.

    The one presence rule of openmer: a modality whose key is missing (or ``None``) is absent for
    every sample; otherwise the batch's ``<modality>_present`` mask decides; without a mask, a
    transcript is present when it is not empty, and audio/video are present.

    Args:
        n: the batch size, needed only when the batch may lack the modality's key entirely.
    """
    if batch.get(modality) is None:
        size = n if n is not None else len(batch["label"])
        return torch.zeros(size, dtype=torch.bool)
    key = f"{modality}_present"
    if key in batch:
        return torch.as_tensor(batch[key], dtype=torch.bool)
    if modality == "text":
        return torch.tensor([bool(t) for t in batch["text"]], dtype=torch.bool)
    return torch.ones(len(batch[modality]), dtype=torch.bool)
