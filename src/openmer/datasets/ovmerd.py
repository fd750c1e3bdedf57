"""OV-MERD (Lian et al., ICML 2025; the MER2025 release) read from its release folder, as a manifest.

Expected layout (``root`` = ``mer2025-dataset``; see ``docs/datasets.md``)::

    root/
      video/<name>.mp4              (or video/video/<name>.mp4 after unpacking video_split.*)
      audio/<name>.wav              (optional, pre-extracted)
      subtitle_chieng.csv           columns name, chinese, english
      track2_train_ovmerd.csv       columns name, openset   e.g. "['worried', 'sad']" or "[worried, sad]"

Confirmed from the AffectGPT / MERTools READMEs (zeroQiaoba): the folder tree and file names
above, 236 emotion categories, most samples with 2-4 labels. The column names (``name``,
``openset``, ``chinese``, ``english``) and both list spellings come from MERTools'
``ov_store/check-openset.csv`` and third-party readers of the release, not from a format document.

Single-label rule: OV-MERD gives each clip a *set* of open-vocabulary labels; a manifest row needs
one. Each label is lower-cased and looked up in the synonym table (:data:`OVMERD_SYNONYMS`, e.g.
``happy``/``joy`` -> ``happiness``). A clip whose labels map to exactly one known class gets that
class. A clip whose labels map to several known classes is ambiguous: dropped (``mixed="drop"``)
or given the first one in its label list (``mixed="first"``). A clip with no known label is an
unknown-class sample; its label is its first listed label, kept as written (lower-cased). This
reading is openmer's; how HCEP reduced the sets for its O(6:236) setting was not confirmed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from openmer.data.manifest import Manifest, Sample, read_csv
from openmer.datasets.registry import ADAPTERS
from openmer.errors import ConfigError, DataError

#: the six basic emotions used as known classes
OVMERD_KNOWN = ("happiness", "sadness", "anger", "surprise", "disgust", "fear")
#: open-vocabulary words that count as each known class (lower case). Only direct lexical forms of
#: the six emotion names are listed; related words (``delighted``, ``worried``, ``mad``) stay
#: unknown-class names. Pass ``synonyms=`` to change it.
OVMERD_SYNONYMS: dict[str, tuple[str, ...]] = {
    "happiness": ("happiness", "happy", "joy", "joyful"),
    "sadness": ("sadness", "sad"),
    "anger": ("anger", "angry"),
    "surprise": ("surprise", "surprised"),
    "disgust": ("disgust", "disgusted"),
    "fear": ("fear", "fearful", "afraid", "scared"),
}


@ADAPTERS.register("ov-merd")
def load_ovmerd(
    root: str | Path,
    *,
    known: Sequence[str] = OVMERD_KNOWN,
    synonyms: Mapping[str, Iterable[str]] | None = None,
    mixed: str = "drop",
    text_language: str = "en",
    labels_file: str = "track2_train_ovmerd.csv",
    subtitles_file: str = "subtitle_chieng.csv",
    video_dir: str | None = None,
    check_files: bool = True,
) -> Manifest:
    """OV-MERD clips, transcripts and one label per clip (module docstring's rule).

    Args:
        root: the ``mer2025-dataset`` folder.
        known: the known classes; each needs an entry in ``synonyms``.
        synonyms: known class -> words that count as it; default :data:`OVMERD_SYNONYMS`.
        mixed: ``"drop"`` or ``"first"`` for clips whose labels name several known classes.
        text_language: ``"en"`` or ``"zh"`` transcript column.
        labels_file: the open-vocabulary label CSV relative to ``root``.
        subtitles_file: the transcript CSV relative to ``root``.
        video_dir: clip folder relative to ``root``; default: the first of ``video`` and
            ``video/video`` that holds the first labelled clip.
        check_files: check that every clip file exists.

    Returns:
        Rows in label-file order: ``id`` = ``name``, ``video`` = ``<video_dir>/<name>.mp4``,
        ``audio`` = ``audio/<name>.wav`` when that file exists, ``text`` = the transcript,
        ``label`` = a known class or an unknown class name, ``group`` = ``name`` (no speaker ids
        are distributed). ``manifest.classes`` then lists known and unknown names together; use
        :func:`read_ovmerd_labels` for the full label sets.

    Raises:
        ConfigError: bad ``known``/``synonyms``/``mixed``/``text_language``.
        DataError: ``root``, the label CSV, the transcript CSV or the clip folder is missing
            (the message names it), a required column is missing, or (``check_files``) a clip.
    """
    if mixed not in ("drop", "first"):
        raise ConfigError(f"mixed must be 'drop' or 'first', got {mixed!r}")
    if text_language not in ("en", "zh"):
        raise ConfigError(f"text_language must be 'en' or 'zh', got {text_language!r}")
    lookup = synonym_lookup(known, OVMERD_SYNONYMS if synonyms is None else synonyms)
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "OV-MERD root folder (mer2025-dataset) not found")
    label_sets = read_ovmerd_labels(root / labels_file)
    column = "english" if text_language == "en" else "chinese"
    subtitles = read_csv(root / subtitles_file, ("name", column), "OV-MERD transcript file")
    texts = {r["name"].strip(): (r.get(column) or "").strip() for r in subtitles}
    first = next(iter(label_sets), None)
    videos = _video_dir(root, video_dir, first)

    samples = []
    for name, labels in label_sets.items():
        label = ovmerd_label(labels, lookup, mixed=mixed)
        if label is None:
            continue
        audio = f"audio/{name}.wav"
        samples.append(
            Sample(
                id=name, label=label, group=name, video=f"{videos}/{name}.mp4",
                audio=audio if (root / audio).is_file() else None, text=texts.get(name) or None,
            )
        )
    manifest = Manifest(samples, root=root, name="ov-merd", source=root / labels_file)
    return manifest.validate(check_files=check_files)


def synonym_lookup(known: Sequence[str], synonyms: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """Lower-case word -> known class, from a class -> words table.

    Raises:
        ConfigError: a known class without synonyms, a synonym entry for a class not in ``known``,
            or a word listed under two classes.
    """
    known = tuple(known)
    if not known or len(set(known)) != len(known):
        raise ConfigError(f"known classes must be distinct and non-empty, got {known}")
    missing = [k for k in known if k not in synonyms]
    extra = [k for k in synonyms if k not in known]
    if missing or extra:
        raise ConfigError(f"synonyms must cover exactly the known classes; missing {missing}, not known {extra}")
    lookup: dict[str, str] = {}
    for cls in known:
        for word in {cls, *synonyms[cls]}:
            w = word.strip().lower()
            if lookup.get(w, cls) != cls:
                raise ConfigError(f"word {w!r} is a synonym of both {lookup[w]!r} and {cls!r}")
            lookup[w] = cls
    return lookup


def ovmerd_label(labels: Sequence[str], lookup: Mapping[str, str], *, mixed: str = "drop") -> str | None:
    """One label from a clip's open-vocabulary label set (module docstring's rule).

    Returns:
        A known class, an unknown class name, or ``None`` when the clip is dropped (no labels,
        or several known classes with ``mixed="drop"``).
    """
    words = [w.strip().lower() for w in labels if w.strip()]
    hits = list(dict.fromkeys(lookup[w] for w in words if w in lookup))
    if len(hits) == 1 or (hits and mixed == "first"):
        return hits[0]
    if hits:
        return None
    return words[0] if words else None


def read_ovmerd_labels(path: str | Path) -> dict[str, tuple[str, ...]]:
    """Clip name -> its open-vocabulary labels, from ``track2_train_ovmerd.csv`` (``name,openset``).

    Raises:
        DataError: file missing, a column missing, or an ``openset`` value that is not a list.
    """
    path = Path(path)
    rows = read_csv(path, ("name", "openset"), "OV-MERD open-vocabulary label file")
    out = {}
    for n, r in enumerate(rows, start=2):
        name = r["name"].strip()
        if not name:
            raise DataError(path, f"line {n}: empty name")
        out[name] = parse_openset(r["openset"], path, n)
    return out


def parse_openset(value: str, path: Path | None = None, line: int | None = None) -> tuple[str, ...]:
    """``"['a', 'b']"`` or ``"[a, b]"`` -> ``("a", "b")``."""
    value = (value or "").strip()
    if not (value.startswith("[") and value.endswith("]")):
        raise DataError(path, f"line {line}: openset {value!r} is not a list like ['worried', 'sad']")
    try:
        parsed = ast.literal_eval(value)
        words = [str(x) for x in parsed]
    except (ValueError, SyntaxError):
        words = [w.strip().strip("'\"") for w in value[1:-1].split(",")]
    return tuple(w.strip() for w in words if w.strip())


def _video_dir(root: Path, video_dir: str | None, first: str | None) -> str:
    if video_dir is not None:
        if not (root / video_dir).is_dir():
            raise DataError(root / video_dir, "OV-MERD clip folder not found")
        return video_dir
    found = [c for c in ("video", "video/video") if (root / c).is_dir()]
    if not found:
        raise DataError(root / "video", "OV-MERD clip folder (video/<name>.mp4) not found")
    for cand in found:
        if first is not None and (root / cand / f"{first}.mp4").is_file():
            return cand
    return found[0]
