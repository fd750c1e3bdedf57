"""Transcripts: a literal string, or a sidecar ``.txt`` file read as UTF-8."""

from __future__ import annotations

from pathlib import Path

from openmer.errors import MediaError


def load_text(value_or_path: str | Path) -> str:
    """The transcript, stripped of surrounding whitespace.

    Args:
        value_or_path: a :class:`~pathlib.Path` or a string ending in ``.txt`` (a sidecar file,
            read as UTF-8), or any other string (the transcript itself).

    Returns:
        The non-empty transcript.

    Raises:
        MediaError: when the sidecar file is missing, not valid UTF-8, or when the transcript is
            empty ("empty transcript"; names the file for a sidecar).
    """
    is_file = isinstance(value_or_path, Path) or str(value_or_path).strip().lower().endswith(".txt")
    if not is_file:
        text = str(value_or_path).strip()
        if not text:
            raise MediaError(None, "empty transcript")
        return text
    p = Path(str(value_or_path).strip())
    if not p.is_file():
        raise MediaError(p, "transcript file not found")
    try:
        text = p.read_text(encoding="utf-8-sig").strip()
    except UnicodeDecodeError as exc:
        raise MediaError(p, f"transcript is not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    if not text:
        raise MediaError(p, "empty transcript")
    return text
