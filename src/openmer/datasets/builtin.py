"""The built-in datasets: loaders of the copies in ``shared/data`` (see ``shared/README.md``),
registered in :data:`openmer.datasets.DATASETS` under their protocol's name.

* :func:`load_emodb` - EmoDB speech (wav) + the spoken German sentence, 535 samples, group = speaker.
* :func:`load_meld` - MELD transcripts (text only), group = MELD's own split name.
* :func:`load_ravdess_features` - RAVDESS per-clip OpenFace AU + audio feature vectors, group = actor.
* :func:`load_ravdess_speech` - RAVDESS speech audio (16 kHz FLAC) + the spoken statement, 1440
  clips, group = actor; ids join :func:`load_ravdess_features`.

Each loader's ``root`` defaults to the folder inside ``shared/``; a missing folder raises
:class:`~openmer.errors.SharedDataMissing` (default root) or :class:`~openmer.errors.DataError`
(explicit root). The matching open-set protocols are ``openmer.protocol.load_protocol(name)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from openmer.data.feature_table import FeatureTable
from openmer.data.manifest import Manifest, Sample, read_csv
from openmer.datasets.registry import DATASETS
from openmer.errors import ConfigError, DataError
from openmer.paths import require_shared

#: class order used by the protocols (EmoDB: alphabetical English names)
EMODB_CLASSES = ("anger", "boredom", "disgust", "fear", "happiness", "neutral", "sadness")
#: EmoDB speaker -> gender, per the EmoDB documentation (shared/README.md)
EMODB_SPEAKER_GENDER = {
    "03": "male", "10": "male", "11": "male", "12": "male", "15": "male",
    "08": "female", "09": "female", "13": "female", "14": "female", "16": "female",
}
#: MELD's emotions, alphabetical
MELD_CLASSES = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
MELD_SPLITS = ("train", "dev", "test")
#: RAVDESS emotion codes 01..08 in order (class index = code - 1 in the source repository)
RAVDESS_CLASSES = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
#: RAVDESS feature layout (shared/data/ravdess-au-mfcc/FORMAT.md): modality -> column slice
RAVDESS_MODALITIES = {"face_au": slice(0, 35), "audio": slice(35, 294)}


def _root(root: str | Path | None, relative: str, what: str) -> Path:
    if root is None:
        return require_shared(relative, what)
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, f"{what} folder not found")
    return root


def _check_labels(path: Path, labels: Iterable[str], classes: Sequence[str]) -> None:
    bad = sorted(set(labels) - set(classes))
    if bad:
        raise DataError(path, f"unexpected label(s) {bad}; expected one of {list(classes)}")


@DATASETS.register("emodb")
def load_emodb(root: str | Path | None = None) -> Manifest:
    """EmoDB as a manifest: ``audio`` = ``wav/<file>``, ``text`` = the sentence, ``group`` = speaker.

    Args:
        root: the folder with ``labels.csv`` and ``wav/``; default ``<shared>/data/emodb``.

    Returns:
        535 samples in ``labels.csv`` order; ``id`` = file stem (``03a01Fa``), ``label`` in
        :data:`EMODB_CLASSES`, ``group`` = 2-digit speaker code. The audio is 22.05 kHz, 2.0 s
        (see shared/README.md); the text is the full sentence, not necessarily all audible.

    Raises:
        SharedDataMissing: no ``root`` given and the shared copy is absent.
        DataError: ``root`` or ``labels.csv`` missing, a column missing, an unknown emotion.
    """
    root = _root(root, "data/emodb", "the EmoDB recordings")
    path = root / "labels.csv"
    rows = read_csv(path, ("file", "speaker", "text", "emotion"))
    _check_labels(path, (r["emotion"] for r in rows), EMODB_CLASSES)
    samples = [
        Sample(
            id=Path(r["file"]).stem, label=r["emotion"], group=r["speaker"], audio=f"wav/{r['file']}", text=r["text"]
        )
        for r in rows
    ]
    return Manifest(samples, root=root, name="emodb", source=path)


@DATASETS.register("ravdess-speech")
def load_ravdess_speech(root: str | Path | None = None) -> Manifest:
    """The RAVDESS speech clips as a manifest: ``audio`` = ``Actor_XX/03-01-....flac``, ``text`` =
    the spoken statement, ``group`` = actor.

    Args:
        root: the folder with ``labels.csv`` and ``Actor_01/`` ... ``Actor_24/``; default
            ``<shared>/data/ravdess-speech``.

    Returns:
        1440 samples in ``labels.csv`` order (24 actors x 60). ``id`` = the clip's ``av_clip_id``
        (the audio-visual clip's RAVDESS name, e.g. ``01-01-01-01-01-01-01``), which is also the id
        of :func:`load_ravdess_features`, so the AU/MFCC features and the audio join on ``id``.
        ``label`` in :data:`RAVDESS_CLASSES` (neutral 96 clips, every other emotion 192), ``group``
        = 2-digit actor (odd male, even female). The audio is 16 kHz mono, 2.94-5.27 s; the text
        is one of the two statements, spoken in every emotion (it carries no emotion).

    Raises:
        SharedDataMissing: no ``root`` given and the shared copy is absent.
        DataError: ``root`` or ``labels.csv`` missing, a column missing, an unknown emotion.
    """
    root = _root(root, "data/ravdess-speech", "the RAVDESS speech recordings")
    path = root / "labels.csv"
    rows = read_csv(path, ("file", "av_clip_id", "actor", "emotion", "text"))
    _check_labels(path, (r["emotion"] for r in rows), RAVDESS_CLASSES)
    samples = [Sample(id=r["av_clip_id"], label=r["emotion"], group=r["actor"], audio=r["file"], text=r["text"])
               for r in rows]
    return Manifest(samples, root=root, name="ravdess-speech", source=path)


@DATASETS.register("meld")
def load_meld(root: str | Path | None = None, split: str = "all") -> Manifest:
    """MELD transcripts as a text-only manifest.

    Args:
        root: folder with ``{train,dev,test}_sent_emo.csv``; default ``<shared>/data/meld``.
        split: ``"train"`` (9,989), ``"dev"`` (1,109), ``"test"`` (2,610) or ``"all"`` (the three
            in that order; the default: the corpus the ``meld`` protocol partitions).

    Returns:
        ``id`` = ``f"{split}_dia{Dialogue_ID}_utt{Utterance_ID}"``, ``text`` = ``Utterance``
        (unchanged), ``label`` = ``Emotion`` (in :data:`MELD_CLASSES`), ``group`` = the MELD split
        name (``"train"``/``"dev"``/``"test"``), so the ``meld`` protocol's partition (MELD's own
        files) applies. The ``Speaker`` column is not kept (a manifest has no speaker field).

    Raises:
        ConfigError: an unknown ``split``.
        SharedDataMissing / DataError: as :func:`load_emodb`.
    """
    if split not in (*MELD_SPLITS, "all"):
        raise ConfigError(f"unknown MELD split {split!r}; choose from {[*MELD_SPLITS, 'all']}")
    root = _root(root, "data/meld", "the MELD transcripts")
    samples: list[Sample] = []
    for name in MELD_SPLITS if split == "all" else (split,):
        path = root / f"{name}_sent_emo.csv"
        rows = read_csv(path, ("Utterance", "Emotion", "Dialogue_ID", "Utterance_ID"))
        _check_labels(path, (r["Emotion"] for r in rows), MELD_CLASSES)
        samples += [
            Sample(
                id=f"{name}_dia{r['Dialogue_ID']}_utt{r['Utterance_ID']}",
                label=r["Emotion"],
                group=name,
                text=r["Utterance"],
            )
            for r in rows
        ]
    return Manifest(samples, root=root, name="meld" if split == "all" else f"meld-{split}", source=None)


@DATASETS.register("ravdess")
def load_ravdess_features(root: str | Path | None = None) -> FeatureTable:
    """RAVDESS per-clip feature vectors (1440 clips, 24 actors).

    Args:
        root: folder with ``au_mfcc.npz`` and ``labels.csv``; default ``<shared>/data/ravdess-au-mfcc``.

    Returns:
        A :class:`FeatureTable` with modalities ``"face_au"`` (dims 0-34: 17 OpenFace AU intensities
        + 18 AU presences, clip means) and ``"audio"`` (dims 35-293: a 259-step zero-padded
        MFCC-derived energy contour, not 259 coefficients; see FORMAT.md), float32; ``labels`` in
        :data:`RAVDESS_CLASSES`; ``groups`` = 2-digit actor (odd male, even female).

    Raises:
        SharedDataMissing: no ``root`` given and the shared copy is absent.
        DataError: a file missing or malformed, or the npz ids not in ``labels.csv`` order.
    """
    root = _root(root, "data/ravdess-au-mfcc", "the RAVDESS AU/audio feature vectors")
    npz = root / "au_mfcc.npz"
    if not npz.is_file():
        raise DataError(npz, "file not found")
    try:
        with np.load(npz, allow_pickle=False) as z:
            ids = [str(i) for i in z["clip_id"]]
            x = np.asarray(z["features"])
    except (KeyError, ValueError, OSError) as exc:
        raise DataError(npz, f"cannot read 'clip_id' and 'features': {exc}") from exc
    if x.ndim != 2 or x.shape != (len(ids), 294):
        raise DataError(npz, f"features have shape {x.shape}, expected ({len(ids)}, 294)")
    path = root / "labels.csv"
    rows = read_csv(path, ("clip_id", "actor", "emotion"))
    if [r["clip_id"] for r in rows] != ids:
        raise DataError(path, "clip ids are not the same, in the same order, as in au_mfcc.npz")
    _check_labels(path, (r["emotion"] for r in rows), RAVDESS_CLASSES)
    x = x.astype(np.float32)
    return FeatureTable(
        ids=ids,
        labels=[r["emotion"] for r in rows],
        groups=[r["actor"] for r in rows],
        features={m: np.ascontiguousarray(x[:, s]) for m, s in RAVDESS_MODALITIES.items()},
        name="ravdess",
        meta={"source": str(npz)},
    )
