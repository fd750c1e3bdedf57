"""The raw scores of one evaluated run, kept so that figures and metrics can be redone later.

A :class:`RunScores` is one method, on one modality set, at one openness level and split,
scored once on its test part (known and unknown classes). It is saved as two files side by
side, ``<name>.npz`` (numeric arrays, read back with ``allow_pickle=False``) and
``<name>.json`` (everything else, human-readable).

Conventions (as in the rest of openmer): ``labels < 0`` marks an unknown-class sample,
``0..K-1`` a known class in the order of ``known_classes``; ``confidence`` is *higher = more
likely a known class*; ``prediction`` is the known class each sample is assigned to.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from openmer import __version__
from openmer.methods.threshold import SOURCE_WORDS, ThresholdSource, threshold_source

__all__ = ["SCHEMA_VERSION", "RunScores"]

#: version of the ``.npz`` + ``.json`` layout written by :meth:`RunScores.save`
SCHEMA_VERSION = 1

_ARRAYS = ("confidence", "prediction", "labels")


def _str_list(value: Any, name: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence | np.ndarray):
        raise ValueError(f"{name} must be a sequence of strings, got {type(value).__name__}")
    out = [str(v) for v in value]
    return out


@dataclass(eq=False)
class RunScores:
    """One evaluated run (method x modalities x openness level x split) on one test set.

    Attributes:
        method: registered method name, e.g. ``"arpl"``.
        modalities: modality names, in the order the features were combined, e.g. ``("face_au", "audio")``.
        level: openness label ``"O(K:U)"``, e.g. ``"O(6:2)"``.
        openness: ``1 - sqrt(K / (K + U))`` of that level (a fraction).
        split: index of the known/unknown split within the level.
        known_classes: the K known class names; label ``k`` is ``known_classes[k]``.
        unknown_classes: the U unknown class names.
        confidence: (N,) float64, higher = more likely known.
        prediction: (N,) int64 known-class indices in ``0..K-1``.
        labels: (N,) int64, ``0..K-1`` for knowns, ``< 0`` for unknowns.
        class_names: (N,) original label string of each sample (tells the unknown classes apart),
            or ``None``.
        features: (N, D) float array of the samples' features (for t-SNE), or ``None``.
        threshold: a deployed acceptance threshold (accept = ``confidence >= threshold``), set
            from training/validation data, or ``None``.
        threshold_confidence: (M,) float64 confidences of the known-class *validation* (or
            training) samples the threshold was chosen from (HCEP Sec. 4.4.6), never test
            samples; the threshold sweep (Fig. 10) sets its thresholds from them. ``None`` when
            not saved.
        threshold_source: ``"val"`` or ``"train"`` (:data:`~openmer.methods.threshold.ThresholdSource`):
            where ``threshold_confidence`` came from; files with the older words ``"validation"`` /
            ``"training"`` are read as these.
        train_set: the dataset trained on, when a benchmark trains on one and tests on several
            (cross-corpus: ``"emodb"``), else ``None``.
        test_set: the dataset this test set comes from in such a benchmark (``"ravdess-speech"``),
            else ``None``. Set both or neither; ``train_set == test_set`` is the in-corpus test.

    Raises:
        ValueError: on construction, if arrays are not 1-D / 2-D as documented, their lengths
            differ, a prediction or label is outside ``0..K-1``, or a field has the wrong type.
    """

    method: str
    modalities: tuple[str, ...]
    level: str
    openness: float
    split: int
    known_classes: list[str]
    unknown_classes: list[str]
    confidence: np.ndarray
    prediction: np.ndarray
    labels: np.ndarray
    class_names: list[str] | None = None
    features: np.ndarray | None = None
    threshold: float | None = None
    threshold_confidence: np.ndarray | None = None
    threshold_source: ThresholdSource | None = None
    train_set: str | None = None
    test_set: str | None = None

    def __post_init__(self) -> None:
        self.method = str(self.method)
        self.level = str(self.level)
        if isinstance(self.modalities, str):
            raise ValueError(f"modalities must be a tuple of names, got the string {self.modalities!r}")
        self.modalities = tuple(str(m) for m in self.modalities)
        self.openness = float(self.openness)
        if isinstance(self.split, bool) or int(self.split) != self.split:
            raise ValueError(f"split must be an int, got {self.split!r}")
        self.split = int(self.split)
        self.known_classes = _str_list(self.known_classes, "known_classes")
        self.unknown_classes = _str_list(self.unknown_classes, "unknown_classes")
        if not self.known_classes:
            raise ValueError("known_classes is empty: need at least one known class")

        conf = np.asarray(self.confidence)
        if conf.ndim != 1 or not (np.issubdtype(conf.dtype, np.number) or conf.dtype == bool):
            raise ValueError(f"confidence must be a 1-D numeric array (N,), got shape {conf.shape} dtype {conf.dtype}")
        self.confidence = conf.astype(np.float64)
        if not np.all(np.isfinite(self.confidence)):
            raise ValueError("confidence must be finite (no NaN/inf)")
        n = conf.shape[0]
        for name in ("prediction", "labels"):
            arr = np.asarray(getattr(self, name))
            if arr.ndim != 1 or arr.shape[0] != n:
                raise ValueError(f"{name} must have shape ({n},) like confidence, got {arr.shape}")
            if not np.issubdtype(arr.dtype, np.integer) and (
                not np.issubdtype(arr.dtype, np.floating) or not np.all(arr == np.round(arr))
            ):
                raise ValueError(f"{name} must be integers, got dtype {arr.dtype}")
            setattr(self, name, arr.astype(np.int64))
        k = len(self.known_classes)
        bad = (self.prediction < 0) | (self.prediction >= k)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"prediction must be in [0, {k - 1}] (K={k}), got {int(self.prediction[i])} at index {i}")
        if (self.labels >= k).any():
            i = int(np.argmax(self.labels >= k))
            raise ValueError(f"labels must be < K={k} (negative = unknown), got {int(self.labels[i])} at index {i}")

        if self.class_names is not None:
            self.class_names = _str_list(self.class_names, "class_names")
            if len(self.class_names) != n:
                raise ValueError(f"class_names must have one name per sample ({n}), got {len(self.class_names)}")
        if self.features is not None:
            feats = np.asarray(self.features)
            if feats.ndim != 2 or feats.shape[0] != n:
                raise ValueError(f"features must have shape ({n}, D), got {feats.shape}")
            self.features = feats
        if self.threshold is not None:
            self.threshold = float(self.threshold)
            if math.isnan(self.threshold):
                raise ValueError("threshold must not be NaN (use None for no threshold)")
        if self.threshold_confidence is not None:
            ref = np.asarray(self.threshold_confidence, dtype=np.float64)
            if ref.ndim != 1 or ref.size == 0 or not np.all(np.isfinite(ref)):
                raise ValueError("threshold_confidence must be a non-empty 1-D array of finite confidences")
            self.threshold_confidence = ref
        self.threshold_source = threshold_source(self.threshold_source)
        if self.threshold_source is not None and self.threshold_source not in SOURCE_WORDS:
            raise ValueError(f"threshold_source must be 'val' or 'train', got {self.threshold_source!r}")
        if (self.train_set is None) != (self.test_set is None):
            raise ValueError(f"set both train_set and test_set or neither, got {self.train_set!r} / {self.test_set!r}")
        if self.train_set is not None:
            self.train_set, self.test_set = str(self.train_set), str(self.test_set)

    # ------------------------------------------------------------------ derived
    @property
    def n_known(self) -> int:
        """K, the number of known classes."""
        return len(self.known_classes)

    @property
    def is_known(self) -> np.ndarray:
        """(N,) bool, ``labels >= 0``."""
        return self.labels >= 0

    @property
    def modality_label(self) -> str:
        """The modalities joined by ``"+"`` (the form used in result records)."""
        return "+".join(self.modalities)

    @property
    def transfer(self) -> str | None:
        """``"<train_set> -> <test_set>"``, or ``None`` for a single-dataset run."""
        return None if self.train_set is None else f"{self.train_set} -> {self.test_set}"

    @property
    def name(self) -> str:
        """Short human-readable name, e.g. ``"arpl · face_au+audio · O(6:2) · split 0"``
        (with ``"· emodb -> ravdess-speech"`` before the split for a cross-dataset run)."""
        where = f" · {self.transfer}" if self.transfer else ""
        return f"{self.method} · {self.modality_label} · {self.level}{where} · split {self.split}"

    @property
    def file_stem(self) -> str:
        """File-name-safe stem, e.g. ``"arpl_face_au-audio_O6-2_split0"``
        (``"..._O5-1_emodb-to-ravdess-speech_split0"`` for a cross-dataset run)."""
        import re

        level = self.level.replace("(", "").replace(")", "").replace(":", "-")
        where = f"_{self.train_set}-to-{self.test_set}" if self.train_set is not None else ""
        raw = f"{self.method}_{self.modality_label.replace('+', '-')}_{level}{where}_split{self.split}"
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", raw)

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | Path) -> Path:
        """Write ``<path>.npz`` (arrays) and ``<path>.json`` (the other fields) side by side.

        Args:
            path: target file; a missing or different suffix is replaced by ``.npz``.

        Returns:
            The ``.npz`` path. Each file is written under a temporary name and then renamed.
        """
        npz = Path(path).with_suffix(".npz")
        sidecar = npz.with_suffix(".json")
        npz.parent.mkdir(parents=True, exist_ok=True)
        arrays = {name: getattr(self, name) for name in _ARRAYS}
        if self.features is not None:
            arrays["features"] = self.features
        if self.threshold_confidence is not None:
            arrays["threshold_confidence"] = self.threshold_confidence
        meta = {
            "schema_version": SCHEMA_VERSION,
            "openmer_version": __version__,
            "method": self.method,
            "modalities": list(self.modalities),
            "level": self.level,
            "openness": self.openness,
            "split": self.split,
            "known_classes": self.known_classes,
            "unknown_classes": self.unknown_classes,
            "class_names": self.class_names,
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "train_set": self.train_set,
            "test_set": self.test_set,
            "n_samples": int(self.confidence.shape[0]),
            "arrays": sorted(arrays),
        }
        from openmer.files import atomic_path, atomic_write_json

        with atomic_path(npz) as tmp, tmp.open("wb") as fh:
            np.savez(fh, **arrays)
        atomic_write_json(sidecar, meta, sort_keys=True, allow_nan=False)
        return npz

    @classmethod
    def load(cls, path: str | Path) -> RunScores:
        """Read a run written by :meth:`save`.

        Args:
            path: the ``.npz`` or the ``.json`` file, or their common stem.

        Raises:
            FileNotFoundError: if either file is missing.
            ValueError: if the files disagree (sample count, schema version) or are malformed.
        """
        npz = Path(path).with_suffix(".npz")
        sidecar = npz.with_suffix(".json")
        for p in (npz, sidecar):
            if not p.is_file():
                raise FileNotFoundError(f"{p}: missing (RunScores.save writes both {npz.name} and {sidecar.name})")
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"{sidecar}: schema_version {meta.get('schema_version')!r}, expected {SCHEMA_VERSION}")
        with np.load(npz, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        missing = [a for a in _ARRAYS if a not in arrays]
        if missing:
            raise ValueError(f"{npz}: missing array(s) {missing}")
        if arrays["confidence"].shape[0] != meta["n_samples"]:
            raise ValueError(
                f"{npz}: {arrays['confidence'].shape[0]} samples, but {sidecar.name} says {meta['n_samples']}"
            )
        return cls(
            method=meta["method"],
            modalities=tuple(meta["modalities"]),
            level=meta["level"],
            openness=meta["openness"],
            split=meta["split"],
            known_classes=meta["known_classes"],
            unknown_classes=meta["unknown_classes"],
            confidence=arrays["confidence"],
            prediction=arrays["prediction"],
            labels=arrays["labels"],
            class_names=meta["class_names"],
            features=arrays.get("features"),
            threshold=meta["threshold"],
            threshold_confidence=arrays.get("threshold_confidence"),
            threshold_source=meta.get("threshold_source"),
            train_set=meta.get("train_set"),
            test_set=meta.get("test_set"),
        )


def save_runs(out_dir: str | Path, runs: list[RunScores]) -> Path:
    """Save every trial's scores under ``out_dir/scores/`` (for figures drawn later)."""
    folder = Path(out_dir) / "scores"
    folder.mkdir(parents=True, exist_ok=True)
    for r in runs:
        r.save(folder / r.file_stem)
    return folder


def load_runs(out_dir: str | Path) -> list[RunScores]:
    """Every trial saved by :func:`save_runs` in a benchmark folder, in file order.

    Raises:
        FileNotFoundError: no ``scores/`` folder with saved runs.
    """
    folder = Path(out_dir) / "scores"
    files = sorted(folder.glob("*.npz")) if folder.is_dir() else []
    if not files:
        raise FileNotFoundError(f"{folder}: no saved scores; is {out_dir} a finished `openmer benchmark` folder?")
    return [RunScores.load(f) for f in files]
