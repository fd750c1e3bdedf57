"""CMU-MOSEI (Zadeh et al., ACL 2018) read from the CMU-MultimodalSDK files, as a manifest.

Expected layout (``root``; see ``docs/datasets.md``)::

    root/
      CMU_MOSEI_Labels.csd                         HDF5: "All Labels"/data/<video_id>/{features,intervals}
      Raw/Videos/Full/Combined/<video_id>.mp4      full videos
      Raw/Transcript/Segmented/Combined/<video_id>.txt
                                                   lines "<video_id>___<seg>___<start>___<end>___<text>"
      cmu_mosei_std_folds.py                       (optional) the SDK's standard folds

Confirmed from the CMU-MultimodalSDK (``standard_datasets/CMU_MOSEI``): the label sequence is
"All Labels" with, per segment, ``[sentiment, happy, sad, anger, surprise, disgust, fear]``
(sentiment in [-3, 3], emotions in [0, 3]; "emotion > 0" means present), and the folds
``standard_train_fold`` / ``standard_valid_fold`` / ``standard_test_fold`` are lists of video ids.
The ``Raw/...`` paths and the ``___``-separated transcript lines are confirmed by third-party code
that reads the official ``CMU_MOSEI.zip``. Every file name is a keyword argument.

Label rule (``rule="argmax"``): a segment's class is the emotion with the largest intensity among
the six. Segments whose six intensities are all zero are dropped (``drop_emotion_free``; kept
with an empty label otherwise); segments whose largest intensity is below ``min_intensity`` are
dropped; a tie for the largest intensity drops the segment (``drop_ties``) or takes the first tied
emotion in :data:`MOSEI_EMOTIONS` order.
"""

from __future__ import annotations

import ast
import importlib
import json
import logging
from pathlib import Path
from typing import Literal

import numpy as np

from openmer.data.manifest import Manifest, Sample
from openmer.datasets.registry import ADAPTERS
from openmer.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

#: the six emotions, in the column order of the SDK's "All Labels" features (columns 1..6)
MOSEI_EMOTIONS = ("happiness", "sadness", "anger", "surprise", "disgust", "fear")
MOSEI_SPLITS = ("train", "valid", "test", "all")
MOSEI_RULES = ("argmax",)
#: name of the label computational sequence inside CMU_MOSEI_Labels.csd
LABELS_GROUP = "All Labels"
#: variable names of the standard folds in the SDK's cmu_mosei_std_folds.py
FOLD_NAMES = {"train": "standard_train_fold", "valid": "standard_valid_fold", "test": "standard_test_fold"}
_FOLDS_MODULE = "mmsdk.mmdatasdk.dataset.standard_datasets.CMU_MOSEI.cmu_mosei_std_folds"
#: seconds by which a transcript line's start/end may differ from the label interval
TIME_TOLERANCE = 0.05


@ADAPTERS.register("cmu-mosei")
def load_mosei(
    root: str | Path,
    *,
    split: str = "train",
    rule: str = "argmax",
    min_intensity: float = 0.0,
    drop_ties: bool = True,
    drop_emotion_free: bool = True,
    labels_file: str = "CMU_MOSEI_Labels.csd",
    videos_dir: str = "Raw/Videos/Full/Combined",
    transcripts_dir: str | None = "Raw/Transcript/Segmented/Combined",
    folds_file: str | Path | None = None,
    missing_video: str = "error",
) -> Manifest:
    """CMU-MOSEI labelled segments as a manifest (one row per segment of a full video).

    Args:
        root: folder holding the label ``.csd`` and the ``Raw/`` tree.
        split: ``"train"``, ``"valid"``, ``"test"`` (the SDK's standard folds) or ``"all"``.
        rule: how the six intensities become one class; only ``"argmax"`` (module docstring).
        min_intensity: drop segments whose largest intensity is below this (intensities in [0, 3]).
        drop_ties: drop segments with a tie for the largest intensity; else the first tied emotion
            in :data:`MOSEI_EMOTIONS` order wins.
        drop_emotion_free: drop segments whose six intensities are all zero; else keep them with
            an empty label.
        labels_file: label file relative to ``root``.
        videos_dir: full-video folder relative to ``root``.
        transcripts_dir: segmented-transcript folder relative to ``root``; ``None`` for no text.
        folds_file: the standard folds, as the SDK's ``cmu_mosei_std_folds.py`` (read without
            executing it) or a JSON ``{"train": [...], "valid": [...], "test": [...]}``. Default:
            ``<root>/cmu_mosei_std_folds.py``, ``<root>/cmu_mosei_std_folds.json``, then the
            installed ``mmsdk`` package.
        missing_video: ``"error"`` or ``"drop"`` for segments whose full video is absent.

    Returns:
        Rows ordered by video id then start time: ``id`` = ``f"{video_id}_{k}"`` (``k`` = row of
        the segment in the ``.csd`` intervals), ``video`` = ``<videos_dir>/<video_id>.mp4``,
        ``start``/``end`` = the segment interval in seconds, ``text`` = the matching transcript
        line (``None`` if no line matches within :data:`TIME_TOLERANCE`), ``label`` in
        :data:`MOSEI_EMOTIONS`, ``group`` = video id (a speaker proxy: one speaker per video).
        Segments with ``end <= start`` are skipped with a logged warning.

    Raises:
        ConfigError: a bad ``split``, ``rule`` or ``missing_video``.
        DataError: ``root``, the label file, the video or transcript folder, the folds (for a
            split other than ``"all"``) or a video (``missing_video="error"``) is missing, or the
            label file lacks the SDK's structure.
    """
    if split not in MOSEI_SPLITS:
        raise ConfigError(f"unknown CMU-MOSEI split {split!r}; choose from {list(MOSEI_SPLITS)}")
    if rule not in MOSEI_RULES:
        raise ConfigError(f"unknown CMU-MOSEI label rule {rule!r}; choose from {list(MOSEI_RULES)}")
    if missing_video not in ("error", "drop"):
        raise ConfigError(f"missing_video must be 'error' or 'drop', got {missing_video!r}")
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "CMU-MOSEI root folder not found")
    labels_path = root / labels_file
    if not labels_path.is_file():
        raise DataError(labels_path, "CMU-MOSEI label file (the SDK's CMU_MOSEI_Labels.csd) not found")
    if not (root / videos_dir).is_dir():
        raise DataError(root / videos_dir, "CMU-MOSEI full-video folder not found")
    if transcripts_dir is not None and not (root / transcripts_dir).is_dir():
        raise DataError(root / transcripts_dir, "CMU-MOSEI segmented-transcript folder not found")

    labels = read_mosei_labels(labels_path)
    videos = sorted(labels) if split == "all" else sorted(set(labels) & set(read_mosei_folds(root, folds_file)[split]))
    samples: list[Sample] = []
    skipped: list[str] = []
    for vid in videos:
        video = f"{videos_dir}/{vid}.mp4"
        if not (root / video).is_file():
            if missing_video == "drop":
                continue
            raise DataError(root / video, f"CMU-MOSEI video of {vid!r} not found")
        features, intervals = labels[vid]
        lines = _transcript(root / transcripts_dir / f"{vid}.txt") if transcripts_dir is not None else []
        for k in np.argsort(intervals[:, 0], kind="stable"):
            label = mosei_label(
                features[k, 1:7], min_intensity=min_intensity, drop_ties=drop_ties, drop_emotion_free=drop_emotion_free
            )
            if label is False:
                continue
            start, end = float(intervals[k, 0]), float(intervals[k, 1])
            if end <= start:  # a few SDK intervals are degenerate; a manifest row needs end > start
                skipped.append(f"{vid}_{k}")
                continue
            samples.append(
                Sample(
                    id=f"{vid}_{k}", label=label, group=vid, video=video,
                    text=_match_text(lines, start, end), start=start, end=end,
                )
            )
    if skipped:
        logger.warning("CMU-MOSEI: skipped %d segment(s) with end <= start, e.g. %s", len(skipped), skipped[:3])
    manifest = Manifest(samples, root=root, name=f"cmu-mosei-{split}", source=labels_path)
    return manifest.validate(check_files=False)


def mosei_label(
    intensities: np.ndarray, *, min_intensity: float = 0.0, drop_ties: bool = True, drop_emotion_free: bool = True
) -> str | Literal[False] | None:
    """One class from six emotion intensities (argmax rule of the module docstring).

    Args:
        intensities: (6,) intensities in :data:`MOSEI_EMOTIONS` order, each in [0, 3].

    Returns:
        The class name; ``None`` for an emotion-free segment that is kept; ``False`` when the
        segment is dropped (emotion-free, below ``min_intensity`` or tied).
    """
    e = np.asarray(intensities, dtype=np.float64)
    if e.shape != (len(MOSEI_EMOTIONS),):
        raise DataError(None, f"expected {len(MOSEI_EMOTIONS)} emotion intensities, got shape {e.shape}")
    top = float(e.max())
    if top <= 0.0:
        return False if drop_emotion_free else None
    if top < min_intensity:
        return False
    tied = np.flatnonzero(np.isclose(e, top))
    if len(tied) > 1 and drop_ties:
        return False
    return MOSEI_EMOTIONS[int(tied[0])]


def read_mosei_labels(path: str | Path, group: str | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Video id -> (features (n, 7), intervals (n, 2)) from an SDK label ``.csd`` (HDF5).

    Args:
        path: the ``.csd`` file.
        group: the computational sequence inside it; default :data:`LABELS_GROUP`, or the file's
            only top-level group.

    Raises:
        DataError: not HDF5, no such group, no ``data`` group, or a video with bad shapes.
    """
    import h5py

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(path, f"not an HDF5 computational sequence ({exc})") from None
    with f:
        names = list(f.keys())
        name = group or (LABELS_GROUP if LABELS_GROUP in f else (names[0] if len(names) == 1 else None))
        if name is None or name not in f or "data" not in f[name]:
            expected = group or LABELS_GROUP
            raise DataError(path, f"expected a computational sequence {expected!r} with a 'data' group; found {names}")
        out = {}
        for vid, g in f[name]["data"].items():
            if "features" not in g or "intervals" not in g:
                raise DataError(path, f"video {vid!r} lacks 'features' or 'intervals'")
            feats = np.asarray(g["features"][()], dtype=np.float64)
            ivals = np.asarray(g["intervals"][()], dtype=np.float64)
            if feats.ndim != 2 or feats.shape[1] < 7 or ivals.shape != (feats.shape[0], 2):
                raise DataError(
                    path, f"video {vid!r}: features {feats.shape} / intervals {ivals.shape}, expected (n, 7) / (n, 2)"
                )
            out[vid] = (feats, ivals)
    return out


def read_mosei_folds(root: str | Path, folds_file: str | Path | None = None) -> dict[str, list[str]]:
    """The SDK's standard folds: ``{"train": [...], "valid": [...], "test": [...]}`` video ids.

    Raises:
        DataError: no folds found (the message says where it looked), or a malformed file.
    """
    root = Path(root)
    candidates = [Path(folds_file)] if folds_file is not None else [
        root / "cmu_mosei_std_folds.py", root / "cmu_mosei_std_folds.json"
    ]
    for path in candidates:
        if path.is_file():
            return _parse_folds(path)
    if folds_file is not None:
        raise DataError(folds_file, "CMU-MOSEI folds file not found")
    try:
        module = importlib.import_module(_FOLDS_MODULE)
        return {k: list(getattr(module, v)) for k, v in FOLD_NAMES.items()}
    except (ImportError, AttributeError):
        raise DataError(
            candidates[0],
            "CMU-MOSEI standard folds not found: copy the SDK's cmu_mosei_std_folds.py here, pass folds_file=, "
            "install mmsdk, or use split='all'",
        ) from None


def _parse_folds(path: Path) -> dict[str, list[str]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(path, f"not JSON: {exc}") from None
        keys = {k: k for k in FOLD_NAMES}
    else:
        try:
            tree = ast.parse(text)
        except SyntaxError as exc:
            raise DataError(path, f"not a Python file of fold lists: {exc}") from None
        data = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                try:
                    data[node.targets[0].id] = ast.literal_eval(node.value)
                except ValueError:
                    continue
        keys = FOLD_NAMES
    missing = [v for v in keys.values() if not isinstance(data.get(v), list)]
    if missing:
        raise DataError(path, f"missing fold list(s) {missing}")
    return {k: [str(x) for x in data[v]] for k, v in keys.items()}


def _transcript(path: Path) -> list[tuple[float, float, str]]:
    if not path.is_file():
        return []
    lines = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("___", 4)
        if len(parts) != 5:
            raise DataError(path, f"line {n}: expected '<video>___<seg>___<start>___<end>___<text>'")
        try:
            lines.append((float(parts[2]), float(parts[3]), parts[4].strip()))
        except ValueError:
            raise DataError(path, f"line {n}: start/end are not numbers") from None
    return lines


def _match_text(lines: list[tuple[float, float, str]], start: float, end: float) -> str | None:
    best, best_err = None, TIME_TOLERANCE
    for s, e, text in lines:
        err = max(abs(s - start), abs(e - end))
        if err <= best_err:
            best, best_err = text, err
    return best or None
