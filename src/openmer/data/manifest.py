"""One table format for every dataset: the openmer manifest.

A manifest is a CSV (or JSON-lines) file with the columns

========  ==========================================================================
id        unique sample id (string)
video     path of a video file, relative to the manifest's root (may be empty)
audio     path of an audio file (may be empty; a video's own audio track is used then)
text      transcript (may be empty), or the path of a sidecar transcript file: see below
label     class name (may be empty for unlabelled data to predict on)
group     speaker / actor / dialogue id for group-aware splits (may be empty)
start     optional segment start in seconds inside the media file
end       optional segment end in seconds
split     optional ``train``, ``val`` or ``test``: ``openmer train`` uses the train/val rows,
          ``openmer evaluate`` the test rows only (all rows or none carry a split)
========  ==========================================================================

A ``text`` value ending in ``.txt`` (any case) names a sidecar transcript file (UTF-8), resolved
like the media paths; the file must exist (:meth:`Manifest.validate` and :meth:`Manifest.text_of`
refuse a missing one, naming the row: a path is never taken as the transcript). A value without
spaces that holds a path separator and ends in a file suffix (``transcripts/a01.lab``) is refused
too: only ``.txt`` files are read as transcripts (:func:`text_names_a_file`).

Any modality may be absent. Relative paths are resolved against ``root`` (by default the
manifest's folder); :meth:`Manifest.read` refuses a relative path that leaves the root (e.g.
``../../etc/passwd``) unless ``allow_outside_root=True`` (``--allow-outside-root``). Absolute
paths in a manifest are used as they are: a manifest you write yourself may point anywhere.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from openmer import UNKNOWN
from openmer.errors import DataError, MediaError

COLUMNS = ("id", "video", "audio", "text", "label", "group", "start", "end", "split")
#: a ``text`` value shaped like a file path: no whitespace, a ``/`` or ``\``, a file suffix
_PATH_SHAPED = re.compile(r"^\S*[/\\]\S*\.[A-Za-z][A-Za-z0-9]{0,4}$")


def is_sidecar(text: str) -> bool:
    """Whether a manifest ``text`` value names a sidecar transcript file: it ends in ``.txt``
    (any case, surrounding spaces ignored), the rule of :func:`openmer.media.load_text`."""
    return text.strip().lower().endswith(".txt")


def text_names_a_file(text: str) -> bool:
    """Whether a manifest ``text`` value is a file path rather than a transcript: a sidecar
    (:func:`is_sidecar`), or a value without whitespace holding a path separator and ending in a
    file suffix (``transcripts/a01.lab``; ``and/or`` is a transcript)."""
    return is_sidecar(text) or bool(_PATH_SHAPED.match(text.strip()))
MODALITIES = ("video", "audio", "text")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Sample:
    """One manifest row. Paths are relative to the manifest root; ``None`` = absent."""

    id: str
    label: str | None = None
    group: str | None = None
    video: str | None = None
    audio: str | None = None
    text: str | None = None
    start: float | None = None  # seconds
    end: float | None = None  # seconds
    split: str | None = None  # "train", "val", "test" or None

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modalities present in this row, in the order video, audio, text."""
        return tuple(m for m in MODALITIES if getattr(self, m))


@dataclass
class Manifest:
    """An ordered list of :class:`Sample` with a root folder for relative paths.

    Args:
        samples: the rows.
        root: folder that relative ``video``/``audio`` paths are resolved against.
        name: dataset name, for messages and reports.
        source: the file the manifest was read from, if any (for error messages).
    """

    samples: list[Sample]
    root: Path = field(default_factory=Path.cwd)
    name: str = "manifest"
    source: Path | None = None

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __getitem__(self, i: int) -> Sample:
        return self.samples[i]

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.samples]

    @property
    def labels(self) -> list[str | None]:
        return [s.label for s in self.samples]

    @property
    def groups(self) -> list[str | None]:
        return [s.group for s in self.samples]

    @property
    def classes(self) -> list[str]:
        """Sorted distinct labels present."""
        return sorted({s.label for s in self.samples if s.label})

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modalities present in at least one row."""
        return tuple(m for m in MODALITIES if any(getattr(s, m) for s in self.samples))

    def path(self, sample: Sample, modality: str) -> Path | None:
        """Absolute path of a sample's ``video``/``audio`` file, or ``None`` if absent."""
        rel = getattr(sample, modality)
        return None if not rel else (self.root / rel)

    def text_of(self, sample: Sample) -> str | None:
        """The transcript, reading a ``.txt`` sidecar when ``text`` names one (``None`` = no transcript).

        Raises:
            DataError: ``text`` names a file that does not exist, or a file other than a ``.txt``
                sidecar (:meth:`text_problem`; the message names the manifest and the row's id).
            MediaError: the sidecar is not valid UTF-8 (read by :func:`openmer.media.load_text`).
        """
        if not sample.text:
            return None
        problem = self.text_problem(sample)
        if problem:  # the row of id ...: this manifest may be a subset of the file's rows
            raise DataError(self.source or self.root, f"the row of id {sample.id!r}: {problem}")
        if is_sidecar(sample.text):
            from openmer.media.text import load_text

            try:
                return load_text(self.root / sample.text.strip())
            except MediaError as exc:
                if exc.reason.startswith("empty"):
                    return None  # an empty sidecar = no transcript, as an empty cell
                raise
        return sample.text

    def text_problem(self, sample: Sample) -> str | None:
        """Why ``sample.text`` cannot be used (it names a missing sidecar, or a file that is not a
        ``.txt`` sidecar), or ``None``. A path is never taken as the transcript itself."""
        text = sample.text
        if not text or not text_names_a_file(text):
            return None
        if not is_sidecar(text):
            return (f"text {text!r} looks like a file path, not a transcript; only .txt files are read as "
                    "sidecar transcripts: name it .txt, or put the transcript itself in the cell")
        path = self.root / text.strip()
        if not path.is_file():
            return (f"text names the transcript file {text.strip()!r} ({path}), which does not exist; a text value "
                    "ending in .txt is read as a sidecar file: fix the path, or put the transcript itself in the cell")
        return None

    @property
    def has_splits(self) -> bool:
        """Whether the rows carry a ``split`` column (train/val/test)."""
        return any(s.split for s in self.samples)

    def split_indices(self) -> dict[str, np.ndarray]:
        """Row indices per ``split`` value: ``{"train", "val", "test"}`` -> (n,) int arrays.

        Raises:
            DataError: some rows carry a split and others do not.
        """
        missing = [n for n, s in enumerate(self.samples, start=1) if not s.split]
        if missing and len(missing) < len(self.samples):
            raise DataError(self.source or self.root,
                            f"{len(missing)} row(s) have no split (first: row {missing[0]}) while others do; "
                            f"give every row one of {list(SPLITS)} or leave the column empty")
        splits = np.array([s.split or "" for s in self.samples])
        return {name: np.flatnonzero(splits == name) for name in SPLITS}

    def subset(self, keep: Iterable[int] | Sequence[bool]) -> Manifest:
        """Rows by index list or boolean mask, same root."""
        keep = list(keep)
        if keep and isinstance(keep[0], bool):
            rows = [s for s, k in zip(self.samples, keep, strict=True) if k]
        else:
            rows = [self.samples[i] for i in keep]
        return replace(self, samples=rows)

    def with_labels(self, classes: Iterable[str]) -> Manifest:
        """Only the rows whose label is in ``classes``."""
        keep = set(classes)
        return replace(self, samples=[s for s in self.samples if s.label in keep])

    # ------------------------------------------------------------------ validation
    def validate(self, *, classes: Sequence[str] | None = None, check_files: bool = True) -> Manifest:
        """Check the manifest and return it.

        Raises:
            DataError: naming the manifest file and row for a duplicate id, a label not in
                ``classes``, a row with no modality at all, ``end <= start``, a ``text`` shaped
                like a path that is not a ``.txt`` sidecar, or (with ``check_files``) a media or
                sidecar transcript file that does not exist.
        """
        where = self.source or self.root
        counts = Counter(s.id for s in self.samples)
        dup = [i for i, c in counts.items() if c > 1]
        if dup:
            raise DataError(where, f"duplicate id(s) {dup[:5]}")
        allowed = set(classes) if classes is not None else None
        for n, s in enumerate(self.samples, start=1):
            if not s.modalities:
                raise DataError(where, f"row {n} (id {s.id!r}) has no video, audio or text")
            if allowed is not None and s.label and s.label not in allowed:
                raise DataError(
                    where, f"row {n} (id {s.id!r}) has unknown label {s.label!r}; expected one of {sorted(allowed)}"
                )
            if s.start is not None and s.end is not None and s.end <= s.start:
                raise DataError(where, f"row {n} (id {s.id!r}) has end {s.end} <= start {s.start}")
            if s.text and text_names_a_file(s.text) and (check_files or not is_sidecar(s.text)):
                problem = self.text_problem(s)
                if problem:
                    raise DataError(where, f"row {n} (id {s.id!r}): {problem}")
            if check_files:
                for m in ("video", "audio"):
                    p = self.path(s, m)
                    if p is not None and not p.is_file():
                        raise DataError(p, f"{m} file of row {n} (id {s.id!r}) of {where} does not exist")
        return self

    # ------------------------------------------------------------------ I/O
    @classmethod
    def read(cls, path: str | Path, *, root: str | Path | None = None, name: str | None = None,
             allow_outside_root: bool = False) -> Manifest:
        """Read a ``.csv`` or ``.jsonl`` manifest (columns as in the module docstring).

        Args:
            path: the manifest file.
            root: folder that relative paths are resolved against (default: the file's folder).
            name: dataset name for messages (default: the file name without extension).
            allow_outside_root: accept relative paths that leave ``root`` (``../``).

        Raises:
            DataError: file missing or not UTF-8, unsupported extension, no ``id`` column, a bad
                number or split, or a relative path that leaves the root.
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(path, "manifest file not found")
        if path.suffix == ".csv":
            reader = csv.DictReader(io.StringIO(_read_utf8(path), newline=""))
            if reader.fieldnames is None or "id" not in reader.fieldnames:
                raise DataError(path, f"a manifest needs an 'id' column; found {reader.fieldnames}")
            unknown = set(reader.fieldnames) - set(COLUMNS)
            if unknown:
                raise DataError(path, f"unknown column(s) {sorted(unknown)}; allowed: {list(COLUMNS)}")
            rows = list(reader)
        elif path.suffix in (".jsonl", ".json"):
            rows = []
            for n, line in enumerate(_read_utf8(path).splitlines(), start=1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise DataError(path, f"line {n} is not JSON: {exc}") from exc
                    if not isinstance(rows[-1], dict):
                        raise DataError(path, f"line {n} is not a JSON object")
        else:
            raise DataError(path, "unsupported manifest format; use .csv or .jsonl")
        samples = [_row_to_sample(path, n, r) for n, r in enumerate(rows, start=1)]
        base = Path(root) if root else path.parent
        if not allow_outside_root:
            for n, sample in enumerate(samples, start=1):
                _check_inside_root(path, base, n, sample)
        return cls(samples, root=base, name=name or path.stem, source=path)

    def write(self, path: str | Path) -> Path:
        """Write as CSV (``.csv``) or JSON lines (``.jsonl``).

        Media paths stay relative when ``path`` is in ``root``; otherwise they are written as
        absolute paths, so the written file reads back to the same files.
        """
        path = Path(path)
        # Paths stay relative when the file goes to the root folder; elsewhere they are written absolute.
        here = path.parent.resolve() == Path(self.root).resolve()

        def cell(s: Sample, c: str) -> object:
            v = getattr(s, c)
            if v is None:
                return ""
            return str(Path(self.root).resolve() / v) if c in ("video", "audio") and not here else v

        from openmer.files import atomic_write_text

        rows = [{c: cell(s, c) for c in COLUMNS} for s in self.samples]
        if path.suffix == ".jsonl":
            return atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        buffer = io.StringIO(newline="")
        w = csv.DictWriter(buffer, fieldnames=list(COLUMNS))
        w.writeheader()
        w.writerows(rows)
        return atomic_write_text(path, buffer.getvalue())


def concat_manifests(parts: Mapping[str, Manifest], *, name: str, root: str | Path | None = None) -> Manifest:
    """Several datasets' manifests as one, told apart by a prefix.

    Args:
        parts: prefix (e.g. the dataset name) -> its manifest, in the order wanted.
        name: name of the result.
        root: root of the result (default: the first part's); media paths are made absolute,
            so it only matters for writing the manifest out.

    Returns:
        The rows of every part in order, ``id`` -> ``"<prefix>/<id>"`` and ``group`` ->
        ``"<prefix>/<group>"`` (a row without a group gets its id as group, as the benchmarks
        treat it), so ids and speakers of different datasets never collide.

    Raises:
        DataError: no part, or a prefix containing ``/``.
    """
    if not parts:
        raise DataError(None, "concat_manifests needs at least one manifest")
    samples: list[Sample] = []
    for prefix, manifest in parts.items():
        if not prefix or "/" in prefix:
            raise DataError(manifest.source, f"manifest prefix {prefix!r} must be non-empty and contain no '/'")
        base = Path(manifest.root).resolve()
        samples.extend(replace(
            s, id=f"{prefix}/{s.id}", group=f"{prefix}/{s.group or s.id}",
            video=str(base / s.video) if s.video else None, audio=str(base / s.audio) if s.audio else None,
        ) for s in manifest)
    first = next(iter(parts.values()))
    return Manifest(samples, root=Path(root) if root is not None else first.root, name=name)


def _row_to_sample(path: Path, n: int, row: dict) -> Sample:
    def opt(key: str) -> str | None:
        v = row.get(key)
        return None if v is None or str(v).strip() == "" else str(v)

    def num(key: str) -> float | None:
        v = opt(key)
        if v is None:
            return None
        try:
            return float(v)
        except ValueError:
            raise DataError(path, f"row {n}: column {key!r} must be a number of seconds, got {v!r}") from None

    ident = opt("id")
    if ident is None:
        raise DataError(path, f"row {n} has an empty id")
    split = opt("split")
    if split is not None and split not in SPLITS:
        raise DataError(path, f"row {n} (id {ident!r}): split must be one of {list(SPLITS)}, got {split!r}")
    return Sample(
        id=ident, label=opt("label"), group=opt("group"), video=opt("video"), audio=opt("audio"),
        text=opt("text"), start=num("start"), end=num("end"), split=split,
    )


def _check_inside_root(path: Path, root: Path, n: int, sample: Sample) -> None:
    """Refuse a relative media or sidecar path of row ``n`` that leaves ``root`` (lexically, after ``..``)."""
    base = os.path.normpath(os.path.abspath(root))
    for column in ("video", "audio", "text"):
        rel = getattr(sample, column)
        if not rel or (column == "text" and not is_sidecar(rel)) or Path(rel).is_absolute():
            continue
        target = os.path.normpath(os.path.join(base, rel))
        if target != base and not target.startswith(base.rstrip(os.sep) + os.sep):
            raise DataError(path, f"row {n} (id {sample.id!r}): {column} path {rel!r} leaves the manifest root "
                                  f"{base}; relative paths are resolved against it (pass --allow-outside-root, "
                                  "or allow_outside_root=True, to accept it, or give an absolute path)")


def read_csv(path: str | Path, required: Sequence[str] = (), what: str = "file") -> list[dict[str, str]]:
    """Rows of a UTF-8 CSV file (a byte-order mark is skipped) as dicts.

    Args:
        path: the file.
        required: columns that must be present.
        what: what the file is, for the message (e.g. ``"OV-MERD label"``).

    Raises:
        DataError: naming the file, when it is missing or lacks a required column.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, f"{what} not found" if what != "file" else "file not found")
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(path, f"missing column(s) {missing}; found {reader.fieldnames}")
        return list(reader)


def _read_utf8(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc


def label_indices(labels: Sequence[str | None], known: Sequence[str]) -> np.ndarray:
    """(N,) int64 class index of each label in ``known``; ``UNKNOWN`` (-1) for any other label."""
    index = {k: i for i, k in enumerate(known)}
    return np.array([index.get(lb, UNKNOWN) if lb is not None else UNKNOWN for lb in labels], dtype=np.int64)


def _norm_label(label: str) -> str:
    return " ".join(label.split()).casefold()


def near_known_labels(labels: Iterable[str | None], known: Sequence[str]) -> dict[str, str]:
    """Labels that are not a known class but equal one apart from case or whitespace.

    Returns:
        ``{label: known class}``, e.g. ``{"Anger": "anger", "anger ": "anger"}``: such rows are
        treated as *unknown* (labels are compared exactly), which is rarely what was meant.
    """
    by_norm = {_norm_label(k): k for k in known}
    out = {}
    for lb in {lb for lb in labels if lb}:
        if lb not in known and _norm_label(lb) in by_norm:
            out[lb] = by_norm[_norm_label(lb)]
    return dict(sorted(out.items()))
