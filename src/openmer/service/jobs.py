"""The bounded worker pool and the timeline jobs it runs.

Long work (scoring uploads, timelines) runs on ``workers`` threads, never on the server's event
loop; at most ``workers + queue`` pieces of work are admitted at once, and a request beyond that is
refused at once (:class:`Busy`, answered 503 with ``Retry-After``) instead of waiting unboundedly.
"""

from __future__ import annotations

import logging
import math
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from openmer.errors import OpenmerError
from openmer.service.store import FAILED, RUNNING, JobStore

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: what a job's folder under ``DATA_DIR/jobs/<id>/`` holds: the recording (``recording.<suffix>``),
#: the transcript when one was uploaded, and the timeline's own files in ``out/`` (its ``--resume`` state)
JOBS_DIR, OUT_DIR = "jobs", "out"


class Busy(Exception):
    """Every worker is busy and the queue is full."""


class WorkerPool:
    """``workers`` threads and room for ``queue`` more pieces of work waiting (see the module doc)."""

    def __init__(self, workers: int, queue: int):
        self.capacity = workers + queue
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openmer-worker")
        self._slots = threading.BoundedSemaphore(self.capacity)

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` on a worker.

        Raises:
            Busy: ``workers + queue`` pieces of work are admitted already.
        """
        if not self._slots.acquire(blocking=False):
            raise Busy
        try:
            future = self._executor.submit(fn, *args)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        return future

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def job_dir(data_dir: Path, job_id: str) -> Path:
    return data_dir / JOBS_DIR / job_id


def remove_job_files(data_dir: Path, job_id: str) -> None:
    shutil.rmtree(job_dir(data_dir, job_id), ignore_errors=True)


def run_timeline_job(store: JobStore, run: Any, job_id: str, config: Any, *, resume: bool = False) -> None:
    """Score one job's recording with :func:`openmer.timeline.timeline` (as ``openmer timeline`` does)
    into ``jobs/<id>/out``, recording progress and then the result (:func:`job_result`) in ``store``.

    ``resume``: continue an interrupted job from the groups its ``timeline.csv`` holds (the
    timeline's ``--resume``). A failure is recorded as the job's ``error`` (an openmer error's
    message; other errors only their type, the details go to the log), never raised.
    """
    from openmer.timeline import timeline

    job = store.get(job_id)
    if job is None:  # removed meanwhile
        return
    folder = job_dir(store.data_dir, job_id)
    store.set_state(job_id, RUNNING)

    def progress(done: float, total: float, message: str) -> None:
        store.set_progress(job_id, done, total)

    try:
        transcript = None if job.transcript is None else store.data_dir / job.transcript
        result = timeline(run, store.data_dir / job.media, folder / OUT_DIR, config=config, transcript=transcript,
                          resume=resume, progress=progress, picture=False)
        store.finish(job_id, job_result(result, run.known_classes, float(run.threshold)))
    except OpenmerError as exc:
        store.set_state(job_id, FAILED, error=public_message(
            str(exc), {store.data_dir / job.media: job.name}, store.data_dir))
    except Exception as exc:
        logger.exception("timeline job %s failed", job_id)
        store.set_state(job_id, FAILED, error=f"{job.name}: the timeline failed ({type(exc).__name__}); "
                                              "see the service's log")


def public_message(message: str, paths: dict[Path, str], data_dir: Path) -> str:
    """``message`` without this machine's paths: each of ``paths`` becomes its client-side name,
    anything else under ``data_dir`` becomes ``<data-dir>/...``."""
    for path, name in paths.items():
        for form in {str(path.resolve()), str(path)}:
            message = message.replace(form, name)
    for form in {str(data_dir.resolve()), str(data_dir)}:
        message = message.replace(form, "<data-dir>")
    return message


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def job_result(tl: Any, classes: list[str], threshold: float) -> dict[str, Any]:
    """The JSON of a finished job: what the page needs to draw the timeline and re-label it at
    another threshold without scoring again.

    Returns:
        ``{"classes", "threshold", "windows", "segments", "summary"}``. ``windows``: one per window
        (``start_s``, ``end_s``, ``t0``/``t1`` the tile it owns, ``speech``, ``scored``, ``label``
        (its smoothed decision), ``confidence`` and ``probabilities`` (smoothed, what the decision
        reads; ``None`` when unscored), ``raw_confidence``, ``text``, ``note``). ``segments``:
        ``n``, ``start_s``, ``end_s``, ``label``, ``confidence``, ``n_windows``, and ``w0``/``w1``:
        the windows ``w0 .. w1-1`` whose tiles overlap it (the page re-labels a segment from them).
    """
    from openmer.timeline.segments import ERROR, NO_SPEECH

    windows = []
    for i, row in enumerate(tl.rows):
        scored = row["label"] not in (NO_SPEECH, ERROR)
        windows.append({
            "start_s": row["start_s"], "end_s": row["end_s"], "t0": _num(tl.tiles[i, 0]), "t1": _num(tl.tiles[i, 1]),
            "speech": row["speech"], "scored": scored, "label": tl.labels[i],
            "confidence": _num(tl.confidence[i]) if scored else None,
            "probabilities": [_num(p) for p in tl.probabilities[i]] if scored else None,
            "raw_confidence": row["confidence"], "text": row.get("text") or "", "note": row.get("note") or ""})
    t0 = tl.tiles[:, 0] if len(tl.rows) else np.zeros(0)
    t1 = tl.tiles[:, 1] if len(tl.rows) else np.zeros(0)
    segments = []
    for n, s in enumerate(tl.segments):
        overlap = np.flatnonzero((t0 < s.end) & (t1 > s.start))
        segments.append({"n": n, "start_s": round(s.start, 3), "end_s": round(s.end, 3), "label": s.label,
                         "confidence": _num(s.confidence), "n_windows": s.n_windows,
                         "w0": int(overlap[0]) if overlap.size else 0,
                         "w1": int(overlap[-1]) + 1 if overlap.size else 0})
    return {"classes": list(classes), "threshold": threshold, "windows": windows, "segments": segments,
            "summary": tl.summary}
