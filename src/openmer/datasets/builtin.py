"""The built-in datasets, registered with their declarations in :data:`openmer.datasets.DATASETS`
under their protocol's name. Each loader reads a user's copy in the layout its authors distribute
(``root=PATH``; ``--data NAME=PATH``) or the copy in ``shared/data`` (``root=None``, see
``shared/README.md``):

* :func:`load_emodb` - EmoDB speech + the spoken German sentence, group = speaker; labels, speaker
  and sentence parsed from the official file names (``wav/03a01Fa.wav``).
* :func:`load_meld` - MELD transcripts (text only) from its ``{train,dev,test}_sent_emo.csv``,
  group = MELD's own split name.
* :func:`load_ravdess_features` - RAVDESS per-clip OpenFace AU + audio feature vectors, group =
  actor (the shared copy only: precomputed features).
* :func:`load_ravdess_speech` - RAVDESS speech audio + the spoken statement, group = actor, every
  field parsed from the official names (``Actor_01/03-01-01-01-01-01-01.wav``; the audio-visual
  ``01-01-...mp4`` / ``02-01-...mp4`` where present); ids join :func:`load_ravdess_features`.

A ``labels.csv`` beside the files (the shared copies have one) is read where present; without it
the official file names are parsed. A missing folder raises
:class:`~openmer.errors.SharedDataMissing` (default root) or :class:`~openmer.errors.DataError`
(explicit root). The matching open-set protocols are ``openmer.protocol.load_protocol(name)``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from openmer.data.feature_table import FeatureTable
from openmer.data.manifest import Manifest, Sample, read_csv
from openmer.datasets.registry import register_dataset
from openmer.errors import ConfigError, DataError
from openmer.paths import require_shared

logger = logging.getLogger(__name__)

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
#: EmoDB's emotion letter (6th character of a file name, the German word's initial) -> class (EmoDB documentation)
EMODB_EMOTION_CODES = {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear", "F": "happiness",
                       "T": "sadness", "N": "neutral"}
#: EmoDB's sentence code (characters 3-5 of a file name) -> the fixed German sentence spoken (EmoDB documentation)
EMODB_SENTENCES = {
    "a01": "Der Lappen liegt auf dem Eisschrank.",
    "a02": "Das will sie am Mittwoch abgeben.",
    "a04": "Heute abend könnte ich es ihm sagen.",
    "a05": "Das schwarze Blatt Papier befindet sich da oben neben dem Holzstück.",
    "a07": "In sieben Stunden wird es soweit sein.",
    "b01": "Was sind denn das für Tüten, die da unter dem Tisch stehen?",
    "b02": "Sie haben es gerade hochgetragen und jetzt gehen sie wieder runter.",
    "b03": "An den Wochenenden bin ich jetzt immer nach Hause gefahren und habe Agnes besucht.",
    "b09": "Ich will das eben wegbringen und dann mit Karl was trinken gehen.",
    "b10": "Die wird auf dem Platz sein, wo wir sie immer hinlegen.",
}
#: RAVDESS statement code (5th field of a file name) -> the sentence spoken (RAVDESS documentation)
RAVDESS_STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
#: RAVDESS intensity code (4th field) -> intensity; neutral has only "normal"
RAVDESS_INTENSITIES = {"01": "normal", "02": "strong"}
#: the audio suffixes read as recordings (the official EmoDB and RAVDESS files are .wav; a .flac copy is accepted)
AUDIO_SUFFIXES = (".wav", ".flac")
#: RAVDESS class -> its name in the shared label vocabulary (:mod:`openmer.datasets.vocabulary`)
RAVDESS_SHARED_NAMES = {"happy": "happiness", "sad": "sadness", "angry": "anger", "fearful": "fear",
                        "surprised": "surprise"}
#: RAVDESS feature layout (shared/data/ravdess-au-mfcc/FORMAT.md): modality -> column slice
RAVDESS_MODALITIES = {"face_au": slice(0, 35), "audio": slice(35, 294)}
#: the reference RAVDESS's authors ask for (the speech clips and the features derived from them)
RAVDESS_CITATION = ("S. R. Livingstone, F. A. Russo (2018), \"The Ryerson Audio-Visual Database of Emotional "
                    "Speech and Song (RAVDESS)\", PLoS ONE 13(5): e0196391")


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


_EMODB_NAME = re.compile(r"^(?P<speaker>\d{2})(?P<sentence>[ab]\d{2})(?P<emotion>[A-Z])(?P<version>[a-z])$")


@dataclass(frozen=True)
class EmodbName:
    """The fields of an EmoDB file name (``03a01Fa``: speaker ``03``, sentence ``a01``, emotion
    letter ``F``, version ``a``), per the EmoDB documentation."""

    speaker: str
    sentence: str
    emotion: str
    version: str

    @property
    def label(self) -> str:
        """The emotion class (:data:`EMODB_EMOTION_CODES`)."""
        return EMODB_EMOTION_CODES[self.emotion]

    @property
    def text(self) -> str:
        """The German sentence spoken (:data:`EMODB_SENTENCES`)."""
        return EMODB_SENTENCES[self.sentence]


def parse_emodb_name(path: str | Path) -> EmodbName:
    """The fields of an official EmoDB file name (``wav/03a01Fa.wav``).

    Raises:
        DataError: naming the file, when the name does not follow EmoDB's scheme (2-digit speaker,
            sentence code of :data:`EMODB_SENTENCES`, emotion letter of :data:`EMODB_EMOTION_CODES`,
            version letter).
    """
    path = Path(path)
    m = _EMODB_NAME.match(path.stem)
    if m is None:
        raise DataError(path, "not an EmoDB file name (speaker, sentence code, emotion letter, version: "
                              "e.g. 03a01Fa.wav)")
    name = EmodbName(**m.groupdict())
    if name.emotion not in EMODB_EMOTION_CODES:
        raise DataError(path, f"unknown EmoDB emotion letter {name.emotion!r}; "
                              f"expected one of {list(EMODB_EMOTION_CODES)}")
    if name.sentence not in EMODB_SENTENCES:
        raise DataError(path, f"unknown EmoDB sentence code {name.sentence!r}; expected one of {list(EMODB_SENTENCES)}")
    return name


def _recordings(folder: Path, suffixes: Sequence[str] = AUDIO_SUFFIXES) -> list[Path]:
    """The files of ``folder`` with one of ``suffixes`` (case-insensitive), sorted by name."""
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes), key=lambda p: p.name)


def _unique_ids(samples: Sequence[Sample], where: Path) -> None:
    seen: dict[str, str] = {}
    for s in samples:
        path = s.audio or s.video or s.id
        if s.id in seen:
            raise DataError(where, f"two files for clip {s.id!r}: {seen[s.id]} and {path} (keep one)")
        seen[s.id] = path


@register_dataset("emodb", holds="media", classes=EMODB_CLASSES, modalities=("audio", "text"), group="speaker",
                  shared="data/emodb", layout="the official EmoDB folder: wav/03a01Fa.wav ... (labels in the names)",
                  license="other", license_note="made freely available by its authors (TU Berlin); check the terms of "
                  "the EmoDB distribution before any commercial use",
                  citation="F. Burkhardt, A. Paeschke, M. Rolfes, W. Sendlmeier, B. Weiss, \"A Database of German "
                  "Emotional Speech\", Proc. Interspeech 2005, pp. 1517-1520")
def load_emodb(root: str | Path | None = None) -> Manifest:
    """EmoDB as a manifest: ``audio`` = ``wav/<file>``, ``text`` = the sentence, ``group`` = speaker.

    Args:
        root: the EmoDB folder as distributed (``wav/`` with the official names, e.g.
            ``wav/03a01Fa.wav``; ``.wav`` or ``.flac``); default ``<shared>/data/emodb``. A
            ``labels.csv`` (columns ``file, speaker, text, emotion``) in ``root`` is read instead
            of the names where present.

    Returns:
        One sample per recording in file-name order (``labels.csv`` order where present: the
        shared copy's 535, sorted by name); ``id`` = file stem (``03a01Fa``), ``label`` in
        :data:`EMODB_CLASSES` (the emotion letter, :data:`EMODB_EMOTION_CODES`), ``group`` =
        2-digit speaker code, ``text`` = the sentence of the sentence code
        (:data:`EMODB_SENTENCES`; the full sentence, not necessarily all audible).

    Raises:
        SharedDataMissing: no ``root`` given and the shared copy is absent.
        DataError: ``root``, its ``wav/`` folder (without ``labels.csv``) or every recording
            missing; a file name outside EmoDB's scheme; two files of one recording;
            ``labels.csv`` with a column missing or an unknown emotion.
    """
    root = _root(root, "data/emodb", "the EmoDB recordings")
    path = root / "labels.csv"
    if path.is_file():
        rows = read_csv(path, ("file", "speaker", "text", "emotion"))
        _check_labels(path, (r["emotion"] for r in rows), EMODB_CLASSES)
        samples = [
            Sample(id=Path(r["file"]).stem, label=r["emotion"], group=r["speaker"], audio=f"wav/{r['file']}",
                   text=r["text"])
            for r in rows
        ]
        return Manifest(samples, root=root, name="emodb", source=path)
    wav = root / "wav"
    if not wav.is_dir():
        raise DataError(wav, "EmoDB's wav/ folder not found (and no labels.csv in its parent)")
    samples = []
    for file in _recordings(wav):
        name = parse_emodb_name(file)
        samples.append(Sample(id=file.stem, label=name.label, group=name.speaker, audio=f"wav/{file.name}",
                              text=name.text))
    if not samples:
        raise DataError(wav, f"no recordings ({', '.join(AUDIO_SUFFIXES)}) found")
    _unique_ids(samples, wav)
    return Manifest(samples, root=root, name="emodb", source=None)


_RAVDESS_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
_ACTOR_FOLDER = re.compile(r"^Actor_(\d{2})$")


@dataclass(frozen=True)
class RavdessName:
    """The seven fields of a RAVDESS file name (``03-01-06-01-02-01-12``), per the RAVDESS
    documentation: modality (01 audio-visual, 02 video-only, 03 audio-only), vocal channel
    (01 speech, 02 song), emotion (01-08, :data:`RAVDESS_CLASSES`), intensity (01 normal,
    02 strong), statement (01, 02: :data:`RAVDESS_STATEMENTS`), repetition (01, 02), actor
    (01-24; odd male, even female)."""

    modality: str
    vocal_channel: str
    emotion: str
    intensity: str
    statement: str
    repetition: str
    actor: str

    @property
    def clip_id(self) -> str:
        """The audio-visual clip's name (modality ``01``), the id shared by every file of one take."""
        return "-".join(("01", self.vocal_channel, self.emotion, self.intensity, self.statement, self.repetition,
                         self.actor))

    @property
    def label(self) -> str:
        """The emotion class (:data:`RAVDESS_CLASSES`)."""
        return RAVDESS_CLASSES[int(self.emotion) - 1]

    @property
    def text(self) -> str:
        """The statement spoken (:data:`RAVDESS_STATEMENTS`)."""
        return RAVDESS_STATEMENTS[self.statement]


def parse_ravdess_name(path: str | Path) -> RavdessName:
    """The fields of an official RAVDESS file name (``Actor_12/03-01-06-01-02-01-12.wav``).

    Raises:
        DataError: naming the file, when the name is not seven 2-digit fields or a field holds a
            code the RAVDESS documentation does not define (neutral has no strong intensity).
    """
    path = Path(path)
    m = _RAVDESS_NAME.match(path.stem)
    if m is None:
        raise DataError(path, "not a RAVDESS file name (seven 2-digit fields, e.g. 03-01-06-01-02-01-12.wav)")
    name = RavdessName(*m.groups())
    checks = {"modality": ("01", "02", "03"), "vocal_channel": ("01", "02"),
              "emotion": tuple(f"{i:02d}" for i in range(1, len(RAVDESS_CLASSES) + 1)),
              "intensity": tuple(RAVDESS_INTENSITIES), "statement": tuple(RAVDESS_STATEMENTS),
              "repetition": ("01", "02"), "actor": tuple(f"{i:02d}" for i in range(1, 25))}
    for field_name, allowed in checks.items():
        if getattr(name, field_name) not in allowed:
            raise DataError(path, f"RAVDESS {field_name.replace('_', ' ')} code {getattr(name, field_name)!r} "
                                  f"is not one of {list(allowed)}")
    if name.emotion == "01" and name.intensity == "02":
        raise DataError(path, "RAVDESS has no strong intensity for neutral (emotion 01, intensity 02)")
    return name


def _ravdess_speech_from_names(root: Path) -> list[Sample]:
    """One sample per speech take found under ``root/Actor_NN/``: the audio-only file (``03-01-*``,
    .wav/.flac) as ``audio``, the audio-visual (``01-01-*.mp4``, else the video-only ``02-01-*.mp4``)
    as ``video``; without an audio-only file the audio-visual file's sound track is the audio."""
    actors = sorted((p for p in root.iterdir() if p.is_dir() and _ACTOR_FOLDER.match(p.name)), key=lambda p: p.name)
    if not actors:
        raise DataError(root, "Actor_NN folders not found (RAVDESS's layout: Actor_01/03-01-01-01-01-01-01.wav ...)")
    takes: dict[str, dict[str, Path]] = {}
    names: dict[str, RavdessName] = {}
    songs = 0
    for folder in actors:
        for file in _recordings(folder, (*AUDIO_SUFFIXES, ".mp4")):
            name = parse_ravdess_name(file)
            if name.actor != folder.name[-2:]:
                raise DataError(file, f"actor {name.actor} in the name, but the file is in {folder.name}")
            if name.vocal_channel != "01":
                songs += 1
                continue
            is_video = file.suffix.lower() == ".mp4"
            if is_video == (name.modality == "03"):
                raise DataError(file, f"RAVDESS modality {name.modality} does not match a {file.suffix} file "
                                      "(03 = audio-only .wav/.flac; 01, 02 = .mp4)")
            slot = {"03": "audio", "01": "av", "02": "video_only"}[name.modality]
            take = takes.setdefault(name.clip_id, {})
            if slot in take:
                raise DataError(folder, f"two files for clip {name.clip_id!r}: {take[slot].name} and {file.name} "
                                        "(keep one)")
            take[slot] = file
            names[name.clip_id] = name
    if songs:
        logger.info("RAVDESS: %d song files (vocal channel 02) under %s are not speech; left out", songs, root)
    samples = []
    for clip_id in sorted(takes, key=lambda c: (names[c].actor, c)):
        take, name = takes[clip_id], names[clip_id]
        video = take.get("av", take.get("video_only"))
        audio = take.get("audio", take.get("av"))
        samples.append(Sample(id=clip_id, label=name.label, group=name.actor, text=name.text,
                              audio=None if audio is None else audio.relative_to(root).as_posix(),
                              video=None if video is None else video.relative_to(root).as_posix()))
    if not samples:
        raise DataError(root, "no RAVDESS speech clip found (Actor_NN/03-01-*.wav or .flac, Actor_NN/01-01-*.mp4)")
    return samples


@register_dataset("ravdess-speech", holds="media", classes=RAVDESS_CLASSES, shared_names=RAVDESS_SHARED_NAMES,
                  modalities=("audio", "text"),
                  group="actor", shared="data/ravdess-speech",
                  layout="RAVDESS's Zenodo layout: Actor_01/03-01-01-01-01-01-01.wav ... (every field in the name)",
                  license="cc-by-nc-sa-4.0", license_note="CC BY-NC-SA 4.0 (non-commercial, share-alike)",
                  citation=RAVDESS_CITATION)
def load_ravdess_speech(root: str | Path | None = None) -> Manifest:
    """The RAVDESS speech clips as a manifest: ``audio`` = ``Actor_XX/03-01-....wav``, ``text`` =
    the spoken statement, ``group`` = actor (and ``video`` where the audio-visual files are there).

    Args:
        root: the RAVDESS folder as distributed on Zenodo (``Actor_01/`` ... ``Actor_24/`` of
            ``Audio_Speech_Actors_01-24.zip``: ``03-01-EE-II-SS-RR-AA.wav``, or ``.flac``; and/or
            the ``Video_Speech_Actor_NN.zip`` files unpacked into the same ``Actor_NN/``:
            ``01-01-...mp4`` audio-visual, ``02-01-...mp4`` video-only); default
            ``<shared>/data/ravdess-speech``. A ``labels.csv`` (columns ``file, av_clip_id,
            actor, emotion, text``) in ``root`` is read instead of the names where present.

    Returns:
        One sample per speech take (song files, vocal channel 02, are left out), ordered by actor
        then name (the shared copy: 1440 = 24 actors x 60). ``id`` = the take's audio-visual
        clip name (``01-01-01-01-01-01-01``), which is also the id of
        :func:`load_ravdess_features`, so the AU/MFCC features and the audio join on ``id``.
        ``label`` in :data:`RAVDESS_CLASSES` (neutral 96 clips, every other emotion 192),
        ``group`` = 2-digit actor (odd male, even female), ``text`` = the statement
        (:data:`RAVDESS_STATEMENTS`, spoken in every emotion: it carries no emotion). ``audio``:
        the audio-only file, else the audio-visual file's sound track; ``video``: the
        audio-visual file, else the video-only one, else ``None``. The shared copy's audio is
        16 kHz mono FLAC, 2.94-5.27 s.

    Raises:
        SharedDataMissing: no ``root`` given and the shared copy is absent.
        DataError: ``root`` or its ``Actor_NN`` folders missing; a name outside RAVDESS's scheme,
            in the wrong actor's folder, or whose modality does not match its suffix; two files of
            one take; ``labels.csv`` with a column missing or an unknown emotion.
    """
    root = _root(root, "data/ravdess-speech", "the RAVDESS speech recordings")
    path = root / "labels.csv"
    if not path.is_file():
        return Manifest(_ravdess_speech_from_names(root), root=root, name="ravdess-speech", source=None)
    rows = read_csv(path, ("file", "av_clip_id", "actor", "emotion", "text"))
    _check_labels(path, (r["emotion"] for r in rows), RAVDESS_CLASSES)
    samples = [Sample(id=r["av_clip_id"], label=r["emotion"], group=r["actor"], audio=r["file"], text=r["text"])
               for r in rows]
    return Manifest(samples, root=root, name="ravdess-speech", source=path)


@register_dataset("meld", holds="media", classes=MELD_CLASSES, shared_names={"joy": "happiness"},
                  modalities=("text",), group="MELD split",
                  shared="data/meld", layout="MELD's train_sent_emo.csv, dev_sent_emo.csv, test_sent_emo.csv",
                  license="gpl-3.0", license_note="GPL-3.0 (the MELD repository's licence); transcripts of the TV "
                  "series Friends",
                  citation="S. Poria, D. Hazarika, N. Majumder, G. Naik, E. Cambria, R. Mihalcea, \"MELD: A Multimodal "
                  "Multi-Party Dataset for Emotion Recognition in Conversation\", ACL 2019; S.-Y. Chen, C.-C. Hsu, "
                  "C.-C. Kuo, L.-W. Ku, \"EmotionLines: An Emotion Corpus of Multi-Party Conversations\", "
                  "arXiv:1802.08379 (2018)")
def load_meld(root: str | Path | None = None, split: str = "all") -> Manifest:
    """MELD transcripts as a text-only manifest.

    Args:
        root: the MELD folder as distributed (``MELD.Raw/`` or the repository's ``data/MELD/``)
            with ``train_sent_emo.csv``, ``dev_sent_emo.csv``, ``test_sent_emo.csv`` (columns
            ``Sr No., Utterance, Speaker, Emotion, Sentiment, Dialogue_ID, Utterance_ID, Season,
            Episode, StartTime, EndTime``; those read: ``Utterance, Emotion, Dialogue_ID,
            Utterance_ID``); default ``<shared>/data/meld`` (the same files).
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


@register_dataset("ravdess", holds="features", classes=RAVDESS_CLASSES, shared_names=RAVDESS_SHARED_NAMES,
                  modalities=tuple(RAVDESS_MODALITIES),
                  group="actor", shared="data/ravdess-au-mfcc",
                  layout="the shared copy's au_mfcc.npz and labels.csv (precomputed per-clip features)",
                  hint="its audio is --data ravdess-speech; its features run in `openmer benchmark ravdess`",
                  license="cc-by-nc-sa-4.0", license_note="CC BY-NC-SA 4.0 (non-commercial, share-alike)",
                  citation=RAVDESS_CITATION)
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
