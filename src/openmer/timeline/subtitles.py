"""Transcripts of a recording: cues with start and end times, from SRT, WebVTT or JSON.

Parsers: ``srt`` (SubRip), ``webvtt-py`` (WebVTT); JSON is a list of ``{"start", "end", "text"}``
(seconds) or an object with such a list under ``"segments"`` (Whisper's and many tools' output).
A window gets the text of every cue that overlaps it, in time order, joined by spaces; a window
that overlaps no cue has no transcript (the text block is absent, as for a clip without one).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from openmer.errors import DataError

#: file suffixes read as transcripts, in the order a sidecar is looked for
SUFFIXES = (".srt", ".vtt", ".json")


@dataclass(frozen=True)
class Cue:
    """One timed piece of transcript (seconds)."""

    start: float
    end: float
    text: str


def find_sidecar(recording: Path) -> Path | None:
    """``<recording stem>.srt`` / ``.vtt`` / ``.json`` beside the recording (the first found), else ``None``."""
    for suffix in SUFFIXES:
        p = recording.with_suffix(suffix)
        if p.is_file():
            return p
    return None


def read_cues(path: str | Path) -> list[Cue]:
    """The cues of a transcript file, sorted by start.

    Raises:
        DataError: naming the file, when it is not valid UTF-8, cannot be parsed, has an unknown
            suffix, or a cue whose times are not finite with ``end > start >= 0``.
    """
    p = Path(path)
    try:
        raw = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(p, f"transcript is not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    suffix = p.suffix.lower()
    try:
        if suffix == ".srt":
            import srt

            cues = [Cue(c.start.total_seconds(), c.end.total_seconds(), c.content) for c in srt.parse(raw)]
        elif suffix == ".vtt":
            import io

            import webvtt

            captions = webvtt.from_buffer(io.StringIO(raw)).captions
            cues = [Cue(_vtt_seconds(c.start), _vtt_seconds(c.end), c.text) for c in captions]
        elif suffix == ".json":
            data = json.loads(raw)
            rows = data.get("segments") if isinstance(data, dict) else data
            if not isinstance(rows, list):
                raise ValueError("expected a list of {start, end, text} (or an object with one under 'segments')")
            cues = [Cue(float(r["start"]), float(r["end"]), str(r["text"])) for r in rows]
        else:
            raise DataError(p, f"unknown transcript format {p.suffix!r}; use one of {', '.join(SUFFIXES)}")
    except DataError:
        raise
    except Exception as exc:  # any parser's complaint becomes one line naming the file
        raise DataError(p, f"cannot read the transcript ({type(exc).__name__}: {exc})") from exc
    for i, c in enumerate(cues):
        if not (math.isfinite(c.start) and math.isfinite(c.end) and 0 <= c.start < c.end):
            raise DataError(p, f"cue {i + 1}: times {c.start}-{c.end} s are not 0 <= start < end")
    return sorted((Cue(c.start, c.end, " ".join(c.text.split())) for c in cues if c.text.strip()),
                  key=lambda c: (c.start, c.end))


def _vtt_seconds(stamp: str) -> float:
    """``HH:MM:SS.mmm`` or ``MM:SS.mmm`` -> seconds."""
    parts = [float(x) for x in stamp.split(":")]
    return sum(v * 60 ** i for i, v in enumerate(reversed(parts)))


class CueIndex:
    """The text of the cues overlapping a time span, for spans visited in increasing start order."""

    def __init__(self, cues: list[Cue]):
        self.cues = cues
        self.first = 0

    def text(self, start: float, end: float) -> str | None:
        """Cues with ``cue.start < end`` and ``cue.end > start``, joined by spaces; ``None`` when none."""
        while self.first < len(self.cues) and self.cues[self.first].end <= start:
            self.first += 1
        out = []
        for c in self.cues[self.first:]:
            if c.start >= end:
                break
            if c.end > start:
                out.append(c.text)
        return " ".join(out) or None
