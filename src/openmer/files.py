"""Files that must never be half-written (temporary name beside the target, then rename), and the
checked reading of safetensors files.

Every writer of a file that a later step reads back (checkpoints, run descriptions, results,
caches, scores, figures) goes through :func:`atomic_path`. An interrupt, a full disk or a
read-only folder then leaves either the old file or the new one, never half of one, and no
temporary file behind; the operating system's complaint becomes an
:class:`~openmer.errors.OutputError` naming the file (``PATH: No space left on device``).
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Self

from openmer.errors import CheckpointError, OpenmerError, OutputError

__all__ = ["FolderLock", "atomic_path", "atomic_write_bytes", "atomic_write_json", "atomic_write_text",
           "check_writable", "io_failure", "os_reason", "read_safetensors"]

#: how the safetensors writer (Rust) reports an operating-system error: "... (os error 28) ..."
_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def os_reason(exc: OSError) -> str:
    """The operating system's words for ``exc`` (``strerror``), without the repeated file name."""
    return exc.strerror or str(exc) or type(exc).__name__


def io_failure(exc: BaseException) -> str | None:
    """The operating system's words when ``exc`` is a failed write, else ``None``.

    A failed write reaches Python as an ``OSError``, or, from the safetensors writer (Rust), as a
    ``SafetensorError`` whose message carries ``(os error N)`` (a full disk, a read-only folder).
    """
    if isinstance(exc, OSError):
        return os_reason(exc)
    if type(exc).__name__ == "SafetensorError":
        found = _RUST_OS_ERROR.search(str(exc))
        if found:
            return os.strerror(int(found.group(1)))
    return None


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
            ``OSError`` or a safetensors I/O error (read-only folder, full disk...); the message
            names ``path``.
    """
    path = Path(path)
    _mkdir(path.parent)
    # A hidden name in the same folder, so that the rename stays on one file system.
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        with suppress(OSError):  # the folder itself vanished
            tmp.unlink(missing_ok=True)
        reason = None if isinstance(exc, OpenmerError) else io_failure(exc)
        if reason is not None:
            raise OutputError(path, reason) from exc
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`); returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_path`); returns ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, infinity; Python or numpy) replaced by ``None``,
    so that it is written as strict JSON (``json.dumps(..., allow_nan=False)``): an undefined number
    is ``null``, never the non-JSON ``NaN``. Numpy scalars become Python numbers."""
    import math

    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", None) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def json_line(obj: Any) -> str:
    """One line of strict JSON (:func:`json_safe`, ``allow_nan=False``): what the CLI prints."""
    return json.dumps(json_safe(obj), allow_nan=False, ensure_ascii=False)


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


#: the lock file :class:`FolderLock` holds inside the locked folder (removed on release)
LOCK_FILE = ".openmer-lock"


class FolderLock:
    """An exclusive, non-blocking lock on a folder, held by one process at a time.

    ``fcntl.flock`` on ``FOLDER/.openmer-lock`` (POSIX): the operating system releases it when
    the holder exits, even on ``SIGKILL``, so a crash never leaves a stale lock. The file holds
    the holder's process id (for the message of a refused second holder) and is removed on
    release; a folder the lock created is removed again on release when nothing else was
    written into it.

    Use as ``with FolderLock(run_dir, "openmer train"): ...``.

    Args:
        folder: the folder (created if missing).
        what: what holds it, for messages.

    Raises (on entering):
        OutputError: ``folder`` is a file or cannot be created or written, or another process
            holds the lock (``FOLDER: in use by another openmer train (process N) ...``).
    """

    def __init__(self, folder: str | Path, what: str = "openmer"):
        self.folder = Path(folder)
        self.what = what
        self._fd: int | None = None
        self._created = False

    @property
    def path(self) -> Path:
        return self.folder / LOCK_FILE

    def acquire(self) -> FolderLock:
        import fcntl

        if self.folder.exists() and not self.folder.is_dir():
            raise OutputError(self.folder, "exists and is not a folder")
        self._created = not self.folder.exists()
        _mkdir(self.folder)
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                self._remove_created_folder()
                raise OutputError(self.folder, f"cannot be written ({os_reason(exc)})") from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = os.read(fd, 32).decode("ascii", "replace").strip()
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise OutputError(self.folder, f"cannot be locked ({os_reason(exc)})") from exc
                raise OutputError(self.folder, f"in use by another {self.what} (process {holder or '?'}, lock "
                                               f"file {LOCK_FILE}); wait for it to finish or choose another "
                                               "folder") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:  # else the previous holder removed the file between our open and our lock: again
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        # before unlocking: a waiting opener then sees another file; in a read-only folder the file
        # stays, and the lock goes with the descriptor
        with suppress(OSError):
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None
        self._remove_created_folder()

    def _remove_created_folder(self) -> None:
        if self._created:
            with suppress(OSError):
                self.folder.rmdir()  # only when empty

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
