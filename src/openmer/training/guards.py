"""Checks of ``openmer train`` that keep a run from losing work or training on the wrong data.

- :func:`locks_run_folder`: one ``openmer train`` per run folder at a time (a second one into the
  same ``--out`` is refused instead of silently replacing the first one's files);
- :func:`check_known_classes_trained`: every known class has training clips (a class present
  only in ``split=test`` rows would otherwise train a K-class model with no clip of it).

:mod:`openmer.training.run` calls both; the resume comparison of the training settings is
:meth:`openmer.training.TrainConfig.resume_differences`, called by :func:`openmer.runs.check_resume`.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from openmer.data.manifest import Manifest
from openmer.errors import DataError
from openmer.files import FolderLock

__all__ = ["check_known_classes_trained", "locks_run_folder"]

F = TypeVar("F", bound=Callable[..., Any])


def locks_run_folder(fn: F) -> F:
    """Run ``fn`` holding the lock of its ``out`` folder (:class:`openmer.files.FolderLock`).

    The lock is taken before anything else (so that a second ``openmer train`` into the same
    folder is refused before it reads, removes or writes anything there) and released when
    ``fn`` returns or raises; a folder the lock created is removed again if nothing was written.
    In a data-parallel launch (``accelerate launch``, ``torchrun``: ``RANK`` is set) only the
    process of rank 0 takes it, for the whole group: the other ranks are the same run.

    Raises (from the wrapped call):
        OutputError: ``out`` is held by another process (``OUT: in use by another openmer train
            (process N) ...``), is a file, or cannot be created or written.
    """
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if os.environ.get("RANK", "0") not in ("", "0"):  # another process of a data-parallel run
            return fn(*args, **kwargs)
        out = signature.bind(*args, **kwargs).arguments["out"]
        with FolderLock(out, "openmer train"):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def check_known_classes_trained(manifest: Manifest, known: Sequence[str], train_labels: np.ndarray,
                                split_rule: str, source: Any = None) -> None:
    """Refuse a known class without any training clip.

    Args:
        manifest: every row of the data (for the message: where that class's rows are).
        known: the known classes, in class-index order.
        train_labels: (N_train,) class indices of the training clips.
        split_rule: how training clips were chosen (``"manifest split column"``...), for the message.
        source: the manifest file or dataset name, for the message (default ``manifest.source``).

    Raises:
        DataError: naming the manifest, each class without a training clip and where its rows
            are (per ``split`` value, or outside the training groups).
    """
    counts = np.bincount(np.asarray(train_labels, dtype=np.int64), minlength=len(known))
    missing = [k for i, k in enumerate(known) if counts[i] == 0]
    if not missing:
        return
    where = []
    for k in missing:
        if manifest.has_splits:
            rows = Counter(s.split for s in manifest if s.label == k)
            where.append(f"{k!r}: " + ", ".join(f"{n} {part} row(s)" for part, n in sorted(rows.items())))
        else:
            where.append(f"{k!r}: {sum(s.label == k for s in manifest)} row(s), none in the training groups")
    raise DataError(source or manifest.source or manifest.name,
                    f"known class(es) {missing} have no training clip ({split_rule}; {'; '.join(where)}): a model "
                    "cannot learn a class it never sees. Give each known class training rows, or leave it out of "
                    "--known")
