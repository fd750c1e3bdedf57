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
