"""A benchmark's trials as they finish, on disk: an interrupted ``openmer benchmark`` resumes.

``<out>/trials.jsonl`` holds one line per finished trial (its fingerprint and its records) and
``<out>/trials/<fingerprint>.npz`` / ``.json`` its scores (:meth:`~openmer.reporting.scores.RunScores.save`,
read back without unpickling). :func:`openmer.benchmarks.trials.run_trials` asks the journal
before each trial: a trial whose fingerprint is recorded is not trained again; its records and
scores are read back.

The fingerprint (:func:`trial_fingerprint`) is a hash of everything that decides a trial's
outcome that openmer can see: the protocol (name, version, seed, partition), the openness level,
the split (index, known and unknown classes), the repeat, the method and its modalities, its full
config (encoder profile included), its training config and seed, its cap on training clips, its
post-hoc scores, the encoder profile of the data, and the data's rows (labels and groups). Change
any of them and the trial runs again; the code itself is not part of it (after updating openmer,
use a fresh ``--out`` or delete ``trials.jsonl``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from openmer.errors import OutputError
from openmer.files import check_writable, os_reason
from openmer.reporting.scores import RunScores

logger = logging.getLogger(__name__)

#: the journal's file name inside a benchmark's output folder
JOURNAL = "trials.jsonl"


def _plain(value: Any) -> Any:
    """JSON for numpy scalars and arrays, tuples and configs."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def trial_fingerprint(identity: Mapping[str, Any]) -> str:
    """The sha256 (hex, 24 characters) of a trial's ``identity`` as canonical JSON (sorted keys)."""
    text = json.dumps(identity, sort_keys=True, default=_plain, allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def rows_digest(labels: Sequence[Any], groups: Sequence[Any]) -> str:
    """The sha256 (hex, 16 characters) of a data set's rows: its labels and groups, in order."""
    return hashlib.sha256(json.dumps([list(labels), list(groups)], default=str).encode("utf-8")).hexdigest()[:16]


class TrialJournal:
    """The finished trials of one benchmark output folder (module docstring).

    Args:
        folder: the benchmark's ``--out``; created if missing and checked for writing here, before
            any trial.

    Raises:
        OutputError: ``folder`` is a file, cannot be created, or refuses a new file.
    """

    def __init__(self, folder: str | Path):
        self.folder = check_writable(folder)
        self.path = self.folder / JOURNAL
        self.entries: dict[str, list[dict[str, Any]]] = {}
        self.reused = 0
        if self.path.is_file():
            self._read()

    def _read(self) -> None:
        for n, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                entry = json.loads(line)
                fingerprint, records = entry["fingerprint"], entry["records"]
                if not isinstance(fingerprint, str) or not isinstance(records, list):
                    raise ValueError("fingerprint or records of the wrong type")
            except (ValueError, KeyError, TypeError) as exc:  # a line cut short by an interruption
                logger.warning("%s line %d is not a finished trial (%s); that trial runs again", self.path, n, exc)
                continue
            self.entries[fingerprint] = records
        if self.entries:
            logger.info("%s: %d finished trial(s) recorded; they are not run again", self.path, len(self.entries))

    def _scores(self, fingerprint: str) -> Path:
        return self.folder / "trials" / f"{fingerprint}.npz"

    def get(self, identity: Mapping[str, Any]) -> tuple[list[dict[str, Any]], RunScores] | None:
        """The records and scores of the finished trial of ``identity`` (what decides its outcome,
        fingerprinted by :func:`trial_fingerprint`), or ``None`` (not recorded, or its scores are
        missing or unreadable: it runs again)."""
        fingerprint = trial_fingerprint(identity)
        records = self.entries.get(fingerprint)
        if records is None:
            return None
        try:
            run = RunScores.load(self._scores(fingerprint))
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("%s: the scores of a recorded trial cannot be read (%s); it runs again",
                           self._scores(fingerprint), exc)
            return None
        self.reused += 1
        return [dict(r) for r in records], run

    def add(self, identity: Mapping[str, Any], records: list[dict[str, Any]], run: RunScores) -> None:
        """Record the finished trial of ``identity`` (as :meth:`get`): its scores first, then its line
        (flushed to disk), so that a line always has its scores.

        Raises:
            OutputError: the folder can no longer be written (naming the file).
        """
        fingerprint = trial_fingerprint(identity)
        run.save(self._scores(fingerprint))
        line = json.dumps({"fingerprint": fingerprint, "records": records}, default=_plain, allow_nan=True)
        try:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise OutputError(self.path, os_reason(exc)) from exc
        self.entries[fingerprint] = records
