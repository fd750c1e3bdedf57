"""Files that must never be half-written (temporary name beside the target, then rename), and the
checked reading of safetensors files.

Every writer of a file that a later step reads back (checkpoints, run descriptions, results,
caches, scores, figures) goes through :func:`atomic_path`. An interrupt, a full disk or a
read-only folder then leaves either the old file or the new one, never half of one, and no
temporary file behind; the operating system's complaint becomes an
:class:`~openmer.errors.OutputError` naming the file (``PATH: No space left on device``).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from openmer.errors import CheckpointError, OpenmerError, OutputError

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_json", "atomic_write_text", "check_writable",
           "os_reason", "read_safetensors"]


def os_reason(exc: OSError) -> str:
    """The operating system's words for ``exc`` (``strerror``), without the repeated file name."""
    return exc.strerror or str(exc) or type(exc).__name__


def _mkdir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(folder, f"cannot create the folder ({os_reason(exc)})") from exc


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path``; renamed to ``path`` when the block ends without error.

    Write the whole file to the yielded path (e.g. ``save_file(tensors, str(tmp))``). On any
    error inside the block the temporary file is removed and the target is left as it was.

    Raises:
        OutputError: the folder cannot be created, or writing/renaming failed with an
            ``OSError`` (read-only folder, full disk...); the message names ``path``.
    """
    path = Path(path)
    _mkdir(path.parent)
    # A hidden name in the same folder, so that the rename stays on one file system.
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:  # pragma: no cover - the folder itself vanished
            pass
        if isinstance(exc, OSError) and not isinstance(exc, OpenmerError):
            raise OutputError(path, os_reason(exc)) from exc
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`); returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_path`); returns ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, *, sort_keys: bool = False, allow_nan: bool = True) -> Path:
    """Write ``obj`` as indented JSON (with a final newline) to ``path`` atomically; returns ``path``."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=sort_keys, allow_nan=allow_nan,
                                              ensure_ascii=False) + "\n")


def check_writable(folder: str | Path) -> Path:
    """Make sure files can be created in ``folder`` (created if missing) before any long work.

    Raises:
        OutputError: ``folder`` is a file, cannot be created, or refuses a new file.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(folder, "exists and is not a folder")
    _mkdir(folder)
    atomic_write_bytes(folder / ".openmer-write-check", b"")
    try:
        (folder / ".openmer-write-check").unlink()
    except OSError as exc:
        raise OutputError(folder, os_reason(exc)) from exc
    return folder


def read_safetensors(path: str | Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The tensors and the header metadata of a safetensors file (never a pickle).

    Returns:
        ``(tensors, metadata)``: name -> ``torch.Tensor``, and the header's string metadata.

    Raises:
        CheckpointError: ``PATH: not found`` / ``empty file`` / ``not a readable safetensors file,
            truncated or corrupt (...)``.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: not found; is {path.parent} a finished openmer run folder?")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file (an interrupted copy?); copy or train the run again")
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})  # noqa: SIM118
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file, truncated or corrupt ({exc})") from exc
