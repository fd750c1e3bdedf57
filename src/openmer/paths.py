"""Where the offline weights and real data live (``../shared`` beside the checkout).

Resolution order: ``$SHARED_DIR``; the ``shared/`` folder beside the repository root (for a
source checkout, ``<repo>/../shared``); ``./shared`` and ``../shared`` from the working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from openmer.errors import SharedDataMissing

_REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path | None:
    """The shared folder if one exists, else ``None``."""
    env = os.environ.get("SHARED_DIR")
    if env:
        return Path(env) if Path(env).is_dir() else None
    for cand in (_REPO_ROOT.parent / "shared", Path.cwd() / "shared", Path.cwd().parent / "shared"):
        if (cand / "README.md").is_file() or (cand / "data").is_dir():
            return cand.resolve()
    return None


def require_shared(relative: str, what: str) -> Path:
    """Path of ``relative`` inside the shared folder.

    Args:
        relative: path inside ``shared/``, e.g. ``"data/emodb"``.
        what: what it is, for the message, e.g. ``"the EmoDB recordings"``.

    Raises:
        SharedDataMissing: with one sentence naming what is needed and where it was looked for.
    """
    root = shared_dir()
    if root is None or not (root / relative).exists():
        where = os.environ.get("SHARED_DIR") or str(_REPO_ROOT.parent / "shared")
        raise SharedDataMissing(
            None,
            f"this needs {what} at <shared>/{relative}, but it was not found "
            f"(looked in {where}; set SHARED_DIR to the folder that holds it, see shared/README.md).",
        )
    return root / relative


#: how a stored path inside the shared folder is written, so that it survives a move of either
SHARED_MARK = "${SHARED_DIR}"


def portable_path(path: str) -> str:
    """``path`` as stored in a run folder: ``${SHARED_DIR}/<relative>`` when it lies in the shared folder.

    Hub ids and paths elsewhere are returned unchanged. :func:`resolve_portable` is the inverse.
    """
    root = shared_dir()
    p = Path(path)
    if root is None or not p.is_absolute():
        return path
    try:
        rel = p.resolve().relative_to(root.resolve())
    except ValueError:
        return path
    return f"{SHARED_MARK}/{rel.as_posix()}"


def resolve_portable(stored: str) -> str:
    """The local path of a stored path (see :func:`portable_path`).

    ``${SHARED_DIR}/<relative>`` resolves against this machine's shared folder. An absolute path
    that no longer exists but has a ``shared`` component (a run folder written on another
    machine) resolves to the same relative path in this machine's shared folder when it exists
    there. Anything else is returned unchanged.

    Raises:
        SharedDataMissing: a ``${SHARED_DIR}`` path and no shared folder here.
    """
    if stored.startswith(SHARED_MARK + "/"):
        rel = stored[len(SHARED_MARK) + 1:]
        return str(require_shared(rel, f"the encoder weights {rel}"))
    p = Path(stored)
    if p.is_absolute() and not p.exists() and "shared" in p.parts:
        root = shared_dir()
        inside = Path(*p.parts[len(p.parts) - p.parts[::-1].index("shared"):])
        if root is not None and (root / inside).exists():
            return str(root / inside)
    return stored


def default_cache_dir() -> Path:
    """Folder of the on-disk encoder-feature cache: ``$OPENMER_CACHE/features`` (default ``~/.cache/openmer``)."""
    return Path(os.environ.get("OPENMER_CACHE", Path.home() / ".cache" / "openmer")) / "features"
