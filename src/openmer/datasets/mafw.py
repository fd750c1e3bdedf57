"""MAFW (Liu et al., ACM MM 2022) read from the folder its authors distribute, as a manifest.

Expected layout (``root`` = the unpacked MAFW folder; see ``docs/datasets.md``)::

    root/
      data/clips/00001.mp4 ...                       (or clips/, as in the README preview)
      Labels/descriptive_text.xlsx                   (optional: clip, Chinese, English; no header)
      Train & Test Set/
        single/no_caption/set_1..set_5/{train,test}.txt       "00025.mp4 anger"
        single/with_caption/set_1..set_5/{train,test}.txt     clip<TAB>label<TAB>zh<TAB>en
        compound/no_caption/...                               "00025.mp4 anger_disgust"
        compound/with_caption/...
      caption-label/single_label.txt, multi_label.txt         (older release, README preview)

Labels and folds come from the official ``no_caption`` split files; the per-clip descriptive
text comes from ``Labels/descriptive_text.xlsx`` or, failing that, the ``with_caption`` split
files. MAFW has no subject ids, so ``group`` is the clip id. The ``.xlsx`` file is read with the
standard library (``zipfile`` + XML); ``openpyxl`` is not needed.

Confirmed from the MAFW repository README (MAFW-database/MAFW): ``clips/*.mp4``, the
``caption-label`` txt format, 11 single classes, bilingual descriptive text. The ``data/clips``,
``Labels/*.xlsx`` and ``Train & Test Set/.../set_k/{train,test}.txt`` names and line formats come
from third-party code and a data audit of the distributed archive, not from official
documentation; every file name is therefore a keyword argument.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree

from openmer.data.manifest import Manifest, Sample
from openmer.datasets.registry import ADAPTERS
from openmer.errors import ConfigError, DataError

#: MAFW's 11 single-expression classes (official order of the ``annotation.xlsx`` columns is
#: anger, disgust, fear, happiness, neutral, sadness, surprise, contempt, anxiety, helplessness,
#: disappointment; this tuple lists the basic six first, then the rest, neutral last).
MAFW_SINGLE_CLASSES = (
    "anger", "disgust", "fear", "happiness", "sadness", "surprise",
    "contempt", "anxiety", "helplessness", "disappointment", "neutral",
)
#: The 10 emotions of HCEP's MAFW setting. NOT confirmed from the HCEP paper (its Sec. 4.1.1 could
#: not be retrieved). Chosen as the 11 classes minus ``neutral`` because MAFW's descriptive texts
#: (``descriptive_text.xlsx``, the ``with_caption`` splits) exist for exactly the 10 non-neutral
#: classes, and HCEP uses the text modality. Check against the paper before publishing numbers.
HCEP_MAFW_CLASSES = tuple(c for c in MAFW_SINGLE_CLASSES if c != "neutral")
MAFW_LABEL_SETS = ("single", "compound")
MAFW_FOLDS = (1, 2, 3, 4, 5)
MAFW_PARTS = ("train", "test")
#: separator of the members of a compound label (``anger_disgust_anxiety``), per the README
COMPOUND_SEPARATOR = "_"

_SPLITS_DIR = "Train & Test Set"
_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


@ADAPTERS.register("mafw")
def load_mafw(
    root: str | Path,
    *,
    label_set: str = "single",
    fold: int | None = None,
    part: str | None = None,
    text_language: str = "en",
    clips_dir: str | None = None,
    splits_dir: str = _SPLITS_DIR,
    text_file: str = "Labels/descriptive_text.xlsx",
    check_files: bool = True,
) -> Manifest:
    """MAFW clips, labels, descriptive texts and official folds as a manifest.

    Args:
        root: the unpacked MAFW folder.
        label_set: ``"single"`` (11 classes, :data:`MAFW_SINGLE_CLASSES`) or ``"compound"``
            (the official compound split: single labels plus ``_``-joined combinations).
        fold: official fold 1..5 (``set_<fold>``), or ``None`` for every labelled clip (the union
            of ``set_1``'s train and test files, which cover the whole label set).
        part: ``"train"`` / ``"test"`` of that fold, or ``None`` for both; needs ``fold``.
        text_language: ``"en"`` or ``"zh"`` descriptive text.
        clips_dir: folder of the ``.mp4`` clips relative to ``root``; default: the first of
            ``data/clips`` and ``clips`` that exists.
        splits_dir: the split folder relative to ``root``.
        text_file: descriptive-text spreadsheet relative to ``root`` (used when present).
        check_files: check that every clip file exists.

    Returns:
        One row per clip in the split file's order: ``id`` = clip stem (``"00025"``), ``video`` =
        ``<clips_dir>/00025.mp4``, ``label`` = lower-case class (compound: ``"anger_disgust"``),
        ``text`` = the descriptive text or ``None`` (neutral clips have none), ``group`` = clip id
        (MAFW distributes no subject ids).

    Raises:
        ConfigError: a bad ``label_set``, ``fold``, ``part`` or ``text_language``.
        DataError: ``root``, the clip folder, the split folder or a split file is missing
            (the message names it), a split line is malformed, a label is not a MAFW class,
            or (``check_files``) a clip file is missing.
    """
    if label_set not in MAFW_LABEL_SETS:
        raise ConfigError(f"unknown MAFW label_set {label_set!r}; choose from {list(MAFW_LABEL_SETS)}")
    if fold is not None and fold not in MAFW_FOLDS:
        raise ConfigError(f"MAFW fold must be one of {list(MAFW_FOLDS)} or None, got {fold!r}")
    if part is not None and part not in MAFW_PARTS:
        raise ConfigError(f"MAFW part must be one of {list(MAFW_PARTS)} or None, got {part!r}")
    if part is not None and fold is None:
        raise ConfigError("MAFW part needs a fold (1..5)")
    if text_language not in ("en", "zh"):
        raise ConfigError(f"text_language must be 'en' or 'zh', got {text_language!r}")
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "MAFW root folder not found")
    clips = _clips_dir(root, clips_dir)

    label_rows, source = _labels(root, splits_dir, label_set, fold, part)
    texts = _texts(root, splits_dir, label_set, text_file, text_language)
    samples = []
    for clip, label in label_rows:
        ident = Path(clip).stem
        samples.append(
            Sample(id=ident, label=label, group=ident, video=f"{clips}/{clip}", text=texts.get(ident))
        )
    name = "mafw" if fold is None else f"mafw-{label_set}-set{fold}" + (f"-{part}" if part else "")
    manifest = Manifest(samples, root=root, name=name, source=source)
    return manifest.validate(check_files=check_files)


def parse_compound(label: str) -> tuple[str, ...]:
    """Members of a MAFW compound label: ``"anger_disgust"`` -> ``("anger", "disgust")``."""
    return tuple(label.split(COMPOUND_SEPARATOR))


# ---------------------------------------------------------------------------------------- labels
def _clips_dir(root: Path, clips_dir: str | None) -> str:
    if clips_dir is not None:
        if not (root / clips_dir).is_dir():
            raise DataError(root / clips_dir, "MAFW clip folder (the .mp4 clips) not found")
        return clips_dir
    for cand in ("data/clips", "clips"):
        if (root / cand).is_dir():
            return cand
    raise DataError(root / "data/clips", "MAFW clip folder (the .mp4 clips) not found; also looked for clips/")


def _labels(
    root: Path, splits_dir: str, label_set: str, fold: int | None, part: str | None
) -> tuple[list[tuple[str, str]], Path]:
    split_root = root / splits_dir / label_set / "no_caption"
    if not split_root.is_dir():
        legacy = root / "caption-label" / ("single_label.txt" if label_set == "single" else "multi_label.txt")
        if fold is None and legacy.is_file():
            return [(c, lab) for c, lab, *_ in _read_caption_txt(legacy, label_set)], legacy
        raise DataError(split_root, "MAFW official split folder (set_1..set_5 with train.txt/test.txt) not found")
    folds = fold or 1
    parts = (part,) if part else MAFW_PARTS
    rows: list[tuple[str, str]] = []
    for p in parts:
        path = split_root / f"set_{folds}" / f"{p}.txt"
        if not path.is_file():
            raise DataError(path, f"MAFW split file ({p} list of fold {folds}) not found")
        for n, line in enumerate(_read_lines(path), start=1):
            fields = line.split()
            if len(fields) < 2:
                raise DataError(path, f"line {n}: expected '<clip>.mp4 <label>', got {line!r}")
            rows.append((fields[0], _check_label(path, n, fields[1], label_set)))
    return rows, split_root / f"set_{folds}"


def _check_label(path: Path, n: int, label: str, label_set: str) -> str:
    label = label.strip().lower()
    members = (label,) if label_set == "single" else parse_compound(label)
    bad = [m for m in members if m not in MAFW_SINGLE_CLASSES]
    if bad or (label_set == "single" and COMPOUND_SEPARATOR in label):
        raise DataError(path, f"line {n}: label {label!r} is not a MAFW {label_set} class")
    return label


# ---------------------------------------------------------------------------------------- texts
def _texts(root: Path, splits_dir: str, label_set: str, text_file: str, language: str) -> dict[str, str]:
    """clip id -> descriptive text, from the spreadsheet, else the with_caption split files."""
    column = 1 if language == "zh" else 2
    sheet = root / text_file
    if sheet.is_file():
        rows = read_xlsx_rows(sheet)
        return {Path(r[0]).stem: r[column].strip() for r in rows if len(r) > column and r[0] and r[column].strip()}
    texts: dict[str, str] = {}
    captions = root / splits_dir / label_set / "with_caption"
    for path in sorted(captions.glob("set_*/*.txt")) if captions.is_dir() else ():
        for clip, _label, *rest in _read_caption_txt(path, label_set):
            if len(rest) >= column and rest[column - 1].strip():
                texts.setdefault(Path(clip).stem, rest[column - 1].strip())
    legacy = root / "caption-label" / ("single_label.txt" if label_set == "single" else "multi_label.txt")
    if not texts and legacy.is_file():
        for clip, _label, *rest in _read_caption_txt(legacy, label_set):
            if len(rest) >= column and rest[column - 1].strip():
                texts[Path(clip).stem] = rest[column - 1].strip()
    return texts


def _read_caption_txt(path: Path, label_set: str) -> list[list[str]]:
    """Rows ``[clip, label, zh, en]`` of a tab-separated caption file (``<br>`` markers removed)."""
    rows = []
    for n, line in enumerate(_read_lines(path), start=1):
        raw = line.split("\t") if "\t" in line else re.split(r"\s{2,}", line)
        fields = [f.replace("<br>", "").strip() for f in raw]
        if len(fields) < 2:
            raise DataError(path, f"line {n}: expected '<clip>.mp4<TAB><label>[<TAB>zh<TAB>en]', got {line!r}")
        if len(fields) == 2 and " " in fields[1]:  # "00025.mp4  anger" with a single-space label gap
            fields = [fields[0], *fields[1].split(" ", 1)]
        fields[1] = _check_label(path, n, fields[1], label_set)
        rows.append(fields)
    return rows


def _read_lines(path: Path) -> list[str]:
    """Non-empty lines; UTF-8, else GB18030 (the captioned split files are not UTF-8)."""
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        text = raw.decode("latin-1")
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_xlsx_rows(path: str | Path, sheet: int = 0) -> list[list[str]]:
    """Cell values of one worksheet of an ``.xlsx`` file as strings (standard library only).

    Args:
        path: the ``.xlsx`` file.
        sheet: 0-based worksheet index in workbook order.

    Returns:
        One list per row, cells in column order; empty cells are ``""``.

    Raises:
        DataError: the file is missing or not a readable ``.xlsx`` workbook.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "spreadsheet not found")
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            shared = []
            if "xl/sharedStrings.xml" in names:
                shared = [
                    "".join(t.text or "" for t in si.iter(f"{{{_NS['m']}}}t"))
                    for si in ElementTree.fromstring(z.read("xl/sharedStrings.xml")).findall("m:si", _NS)
                ]
            sheets = sorted(
                (n for n in names if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n)),
                key=lambda n: int(re.findall(r"\d+", n)[-1]),
            )
            if sheet >= len(sheets):
                raise DataError(path, f"workbook has {len(sheets)} worksheet(s), asked for index {sheet}")
            xml = ElementTree.fromstring(z.read(sheets[sheet]))
    except (zipfile.BadZipFile, ElementTree.ParseError, KeyError) as exc:
        raise DataError(path, f"not a readable .xlsx workbook ({exc})") from None
    rows = []
    for row in xml.iter(f"{{{_NS['m']}}}row"):
        cells: dict[int, str] = {}
        for c in row.findall("m:c", _NS):
            col = _column_index(c.get("r", ""), default=len(cells))
            kind = c.get("t")
            if kind == "inlineStr":
                value = "".join(t.text or "" for t in c.iter(f"{{{_NS['m']}}}t"))
            else:
                v = c.find("m:v", _NS)
                value = "" if v is None or v.text is None else v.text
                if kind == "s" and value:
                    value = shared[int(value)]
            cells[col] = value
        if cells:
            rows.append([cells.get(i, "") for i in range(max(cells) + 1)])
    return rows


def _column_index(ref: str, default: int) -> int:
    letters = re.match(r"[A-Z]+", ref)
    if not letters:
        return default
    index = 0
    for ch in letters.group(0):
        index = index * 26 + ord(ch) - ord("A") + 1
    return index - 1

