"""One table format for every dataset: the openmer manifest.

A manifest is a CSV (or JSON-lines) file with the columns

========  ==========================================================================
id        unique sample id (string)
video     path of a video file, relative to the manifest's root (may be empty)
audio     path of an audio file (may be empty; a video's own audio track is used then)
text      transcript (may be empty); a path ending in ``.txt`` is read as a sidecar file
label     class name (may be empty for unlabelled data to predict on)
group     speaker / actor / dialogue id for group-aware splits (may be empty)
start     optional segment start in seconds inside the media file
end       optional segment end in seconds
========  ==========================================================================

Any modality may be absent. Paths are relative to ``root`` (by default the manifest's folder).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from openmer.errors import DataError

COLUMNS = ("id", "video", "audio", "text", "label", "group", "start", "end")
MODALITIES = ("video", "audio", "text")


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
        """The transcript, reading a ``.txt`` sidecar when ``text`` names one."""
        if not sample.text:
            return None
        if sample.text.endswith(".txt") and (self.root / sample.text).is_file():
            return (self.root / sample.text).read_text(encoding="utf-8").strip()
        return sample.text

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
                ``classes``, a row with no modality at all, ``end <= start``, or (with
                ``check_files``) a media file that does not exist.
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
            if check_files:
                for m in ("video", "audio"):
                    p = self.path(s, m)
                    if p is not None and not p.is_file():
                        raise DataError(p, f"{m} file of row {n} (id {s.id!r}) of {where} does not exist")
        return self

    # ------------------------------------------------------------------ I/O
    @classmethod
    def read(cls, path: str | Path, *, root: str | Path | None = None, name: str | None = None) -> Manifest:
        """Read a ``.csv`` or ``.jsonl`` manifest (columns as in the module docstring).

        Raises:
            DataError: file missing, unsupported extension, no ``id`` column, or a bad number.
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(path, "manifest file not found")
        if path.suffix == ".csv":
            with path.open(encoding="utf-8", newline="") as f:
                reader = csv.DictReader(f)
                if reader.fieldnames is None or "id" not in reader.fieldnames:
                    raise DataError(path, f"a manifest needs an 'id' column; found {reader.fieldnames}")
                unknown = set(reader.fieldnames) - set(COLUMNS)
                if unknown:
                    raise DataError(path, f"unknown column(s) {sorted(unknown)}; allowed: {list(COLUMNS)}")
                rows = list(reader)
        elif path.suffix in (".jsonl", ".json"):
            rows = []
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise DataError(path, f"line {n} is not JSON: {exc}") from exc
        else:
            raise DataError(path, "unsupported manifest format; use .csv or .jsonl")
        samples = [_row_to_sample(path, n, r) for n, r in enumerate(rows, start=1)]
        return cls(samples, root=Path(root) if root else path.parent, name=name or path.stem, source=path)

    def write(self, path: str | Path) -> Path:
        """Write as CSV (``.csv``) or JSON lines (``.jsonl``).

        Media paths stay relative when ``path`` is in ``root``; otherwise they are written as
        absolute paths, so the written file reads back to the same files.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Paths stay relative when the file goes to the root folder; elsewhere they are written absolute.
        here = path.parent.resolve() == Path(self.root).resolve()

        def cell(s: Sample, c: str) -> object:
            v = getattr(s, c)
            if v is None:
                return ""
            return str(Path(self.root).resolve() / v) if c in ("video", "audio") and not here else v

        rows = [{c: cell(s, c) for c in COLUMNS} for s in self.samples]
        if path.suffix == ".jsonl":
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        else:
            with path.open("w", encoding="utf-8", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(COLUMNS))
                w.writeheader()
                w.writerows(rows)
        return path


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
    return Sample(
        id=ident, label=opt("label"), group=opt("group"), video=opt("video"), audio=opt("audio"),
        text=opt("text"), start=num("start"), end=num("end"),
    )


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
