"""Jobs, their results and the reviews of their segments, in one SQLite file (``DATA_DIR/openmer.db``).

SQLite (the standard library's :mod:`sqlite3`) in WAL mode: an embedded database, nothing to run
beside the service; each write is one transaction, so a process killed at any moment leaves the
last committed state (a restart loses nothing). A job is ``queued``, ``running``, ``done``,
``failed`` or ``interrupted`` (it was queued or running when the service stopped; see
:meth:`JobStore.mark_interrupted`). One connection per thread (``check_same_thread``), each
opened on demand.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: the states of a job
QUEUED, RUNNING, DONE, FAILED, INTERRUPTED = "queued", "running", "done", "failed", "interrupted"
DB_NAME = "openmer.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    run TEXT NOT NULL,
    name TEXT NOT NULL,
    media TEXT NOT NULL,
    kind TEXT NOT NULL,
    mime TEXT NOT NULL,
    transcript TEXT,
    duration_s REAL,
    state TEXT NOT NULL,
    done_s REAL NOT NULL DEFAULT 0,
    total_s REAL,
    error TEXT,
    result TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS reviews (
    job TEXT NOT NULL REFERENCES jobs(id),
    segment INTEGER NOT NULL,
    start_s REAL NOT NULL,
    end_s REAL NOT NULL,
    label TEXT NOT NULL,
    kind TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    reviewed REAL NOT NULL,
    PRIMARY KEY (job, segment)
);
"""


@dataclass(frozen=True)
class Job:
    """One row of ``jobs``.

    Attributes:
        id: the job id (32 hex digits, made here, never from a client).
        run: the name of the run that scores it (``/v1/models``).
        name: the client's file name, for display only (never a path).
        media: the recording, relative to the data folder (``jobs/<id>/recording``).
        kind: ``audio`` or ``video`` (what the recording holds).
        mime: the content type it is served with.
        transcript: the uploaded transcript, relative to the data folder, or ``None``.
        state: see the module doc; done_s, total_s: seconds of the recording scored so far, of all.
        result: the timeline (``done``), else ``None``.
    """

    id: str
    run: str
    name: str
    media: str
    kind: str
    mime: str
    transcript: str | None
    duration_s: float | None
    state: str
    done_s: float
    total_s: float | None
    error: str | None
    result: dict[str, Any] | None
    created: float
    updated: float

    def public(self, *, with_result: bool = True) -> dict[str, Any]:
        """The job as ``GET /v1/jobs/{id}`` shows it (no path of this machine)."""
        total = self.total_s or self.duration_s
        progress = 1.0 if self.state == DONE else (min(self.done_s / total, 1.0) if total else 0.0)
        out: dict[str, Any] = {
            "id": self.id, "run": self.run, "name": self.name, "kind": self.kind, "state": self.state,
            "progress": round(progress, 4), "done_s": round(self.done_s, 3), "duration_s": self.duration_s,
            "error": self.error, "resumable": self.state == INTERRUPTED, "created": self.created,
            "updated": self.updated, "media_url": f"/v1/jobs/{self.id}/media",
        }
        if with_result:
            out["result"] = self.result
        return out


class JobStore:
    """The database of one data folder (created with its tables when absent).

    Args:
        data_dir: the service's ``--data-dir``; the database is ``data_dir/openmer.db``.
    """

    def __init__(self, data_dir: str | Path):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / DB_NAME
        self._local = threading.local()
        self._db().executescript(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # ----------------------------------------------------------------- jobs
    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    def add_job(self, job_id: str, *, run: str, name: str, media: str, kind: str, mime: str,
                transcript: str | None, duration_s: float | None) -> Job:
        now = time.time()
        with self._tx() as db:
            db.execute("INSERT INTO jobs (id, run, name, media, kind, mime, transcript, duration_s, state, total_s, "
                       "created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (job_id, run, name, media, kind, mime, transcript, duration_s, QUEUED, duration_s, now, now))
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> Job | None:
        row = self._db().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def jobs(self, limit: int = 100) -> list[Job]:
        rows = self._db().execute("SELECT * FROM jobs ORDER BY created DESC LIMIT ?", (limit,)).fetchall()
        return [_job(r) for r in rows]

    def set_state(self, job_id: str, state: str, *, error: str | None = None) -> None:
        with self._tx() as db:
            db.execute("UPDATE jobs SET state = ?, error = ?, updated = ? WHERE id = ?",
                       (state, error, time.time(), job_id))

    def set_progress(self, job_id: str, done_s: float, total_s: float | None) -> None:
        with self._tx() as db:
            db.execute("UPDATE jobs SET done_s = ?, total_s = COALESCE(?, total_s), updated = ? WHERE id = ?",
                       (float(done_s), total_s, time.time(), job_id))

    def finish(self, job_id: str, result: dict[str, Any]) -> None:
        text = json.dumps(result, allow_nan=False)
        with self._tx() as db:
            db.execute("UPDATE jobs SET state = ?, result = ?, error = NULL, done_s = COALESCE(total_s, done_s), "
                       "updated = ? WHERE id = ?", (DONE, text, time.time(), job_id))

    def delete_job(self, job_id: str) -> None:
        """Remove a job and its reviews (the files are the caller's)."""
        with self._tx() as db:
            db.execute("DELETE FROM reviews WHERE job = ?", (job_id,))
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def mark_interrupted(self) -> list[str]:
        """Mark every job left ``queued`` or ``running`` by a stopped service ``interrupted``; their ids."""
        with self._tx() as db:
            ids = [r["id"] for r in db.execute("SELECT id FROM jobs WHERE state IN (?, ?)", (QUEUED, RUNNING))]
            db.execute("UPDATE jobs SET state = ?, error = ?, updated = ? WHERE state IN (?, ?)",
                       (INTERRUPTED, "the service stopped while this job was queued or running; resume it",
                        time.time(), QUEUED, RUNNING))
        return ids

    # ----------------------------------------------------------------- reviews
    def review(self, job_id: str, segment: int, *, start_s: float, end_s: float, label: str, kind: str,
               note: str) -> dict[str, Any]:
        """Record (or replace) the review of segment ``segment`` of a job."""
        now = time.time()
        with self._tx() as db:
            db.execute("INSERT INTO reviews (job, segment, start_s, end_s, label, kind, note, reviewed) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job, segment) DO UPDATE SET "
                       "label = excluded.label, kind = excluded.kind, note = excluded.note, "
                       "reviewed = excluded.reviewed", (job_id, segment, start_s, end_s, label, kind, note, now))
        return {"job": job_id, "segment": segment, "start_s": start_s, "end_s": end_s, "label": label,
                "kind": kind, "note": note, "reviewed": now}

    def reviews(self, job_id: str | None = None) -> list[dict[str, Any]]:
        """Reviews (of one job, or all), oldest job first, by segment."""
        sql = ("SELECT r.*, j.name AS name, j.media AS media, j.kind AS media_kind FROM reviews r "
               "JOIN jobs j ON j.id = r.job")
        args: tuple[Any, ...] = ()
        if job_id is not None:
            sql += " WHERE r.job = ?"
            args = (job_id,)
        sql += " ORDER BY j.created, r.job, r.segment"
        return [dict(r) for r in self._db().execute(sql, args).fetchall()]

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


def _job(row: sqlite3.Row) -> Job:
    d = dict(row)
    d["result"] = None if d["result"] is None else json.loads(d["result"])
    return Job(**d)
