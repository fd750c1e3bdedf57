"""The FastAPI application of ``openmer serve`` (``docs/service.md``).

It calls the library the CLI calls (:func:`openmer.inference.predict_iter`,
:func:`openmer.timeline.timeline`), never the CLI. Every answer is JSON; an error is
``{"error": message}`` with its status (400, 401, 404, 409, 413, 422, 503), and no traceback
reaches a client (an unexpected error is logged here and answered 500 with one line).
"""

from __future__ import annotations

import asyncio
import csv
import functools
import hmac
import io
import logging
import math
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from openmer import __version__
from openmer.errors import ConfigError, OpenmerError
from openmer.service.jobs import Busy, WorkerPool, job_dir, public_message, run_timeline_job
from openmer.service.store import DONE, FAILED, INTERRUPTED, QUEUED, JobStore
from openmer.service.uploads import UploadedFile, UploadError, check_media, checked_path, read_upload

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
#: the label of a reviewed segment that holds no emotion (speech, noise, laughter...)
NOT_AN_EMOTION = "not an emotion"
#: what a new emotion word may look like: letters, spaces, hyphens, apostrophes, 1-40 characters
NEW_WORD = re.compile(r"^[^\W\d_][^\W\d_ '\-]*(?:[ '\-][^\W\d_]+)*$")
RESERVED = {"unknown", "no_speech", "error"}
#: the seconds a client is told to wait when the queue is full
RETRY_AFTER_S = 5
#: the manifest columns the review export writes (a subset of :data:`openmer.data.manifest.COLUMNS`)
EXPORT_COLUMNS = ["id", "audio", "video", "text", "label", "group", "start", "end"]
EXPORT_FILE = "reviews.csv"


@dataclass
class ServiceConfig:
    """Settings of ``openmer serve`` (see its options).

    Attributes:
        runs: run folders to serve; the first is the default run.
        data_dir: where ``openmer.db``, the jobs' recordings and results, and the review export live.
        token: the bearer token every ``/v1`` request must carry (``None``: none asked).
        workers, queue: threads that score, and pieces of work admitted beyond them (then 503).
        max_upload_mb: the largest request body; max_duration_s: the longest recording.
        cors_origins: origins allowed by CORS (empty: CORS off).
        profile: the profile the runs were trained with, when not a registered one.
        timeline: the timeline settings of every job.
    """

    runs: list[Path]
    data_dir: Path
    token: str | None = None
    workers: int = 2
    queue: int = 16
    max_upload_mb: float = 500.0
    max_duration_s: float = 4 * 3600.0
    cors_origins: list[str] = field(default_factory=list)
    profile: Any = None
    timeline: Any = None


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def run_names(runs: list[Path]) -> list[str]:
    """One name per run folder: its folder name, numbered when two share one."""
    names: list[str] = []
    for r in runs:
        base = Path(r).resolve().name or "run"
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def describe_run(name: str, run: Any) -> dict[str, Any]:
    """What ``GET /v1/models`` says of one run: its method, classes, modalities, deployable
    threshold and the metrics its folder records (``metrics.json``; ``eval/evaluation.json`` when
    ``openmer evaluate`` wrote one there)."""
    from openmer.runs import METRICS_FILE, read_json

    info = run.info
    th = info.threshold
    metrics: dict[str, Any] = {"select_metric": info.select_metric, "best_epoch": info.best_epoch}
    try:
        recorded = read_json(Path(run.run_dir) / METRICS_FILE, what="metrics file")
        history = recorded.get("history") or []
        best = [h for h in history if isinstance(h, dict) and h.get("epoch") == info.best_epoch]
        if best:
            metrics["selected_epoch"] = best[0]
    except OpenmerError:
        pass
    evaluation = Path(run.run_dir) / "eval" / "evaluation.json"
    if evaluation.is_file():
        try:
            ev = read_json(evaluation)
            metrics["evaluation"] = {k: ev[k] for k in ("auroc", "oscr", "closed_acc", "macro_f1", "fpr95",
                                                        "n_known", "n_unknown") if k in ev}
        except OpenmerError:
            pass
    return {"name": name, "method": info.method, "classes": list(run.known_classes),
            "modalities": list(run.modalities),
            "threshold": {"value": th.value, "acceptance": th.acceptance, "source": th.source, "rule": th.rule},
            "n_train": info.n_train, "n_val": info.n_val, "metrics": metrics}


def create_app(config: ServiceConfig, *, loaded: dict[str, Any] | None = None) -> FastAPI:
    """The application: loads every run (once), opens the store, marks jobs a stopped service left
    queued or running ``interrupted``.

    Args:
        config: :class:`ServiceConfig`.
        loaded: runs already loaded, by name (tests), instead of loading ``config.runs``.

    Raises:
        CheckpointError: a run folder cannot be loaded (before the service starts).
        ConfigError: no run given, or settings that cannot work.
    """
    from openmer.inference import load_run
    from openmer.timeline import TimelineConfig

    if not config.runs and not loaded:
        raise ConfigError("give at least one run folder to serve")
    if config.workers < 1 or config.queue < 0:
        raise ConfigError(f"--workers must be >= 1 and --queue >= 0, got {config.workers} and {config.queue}")
    if not (config.max_upload_mb > 0 and config.max_duration_s > 0):
        raise ConfigError("--max-upload-mb and --max-duration-s must be > 0")
    timeline_config = config.timeline or TimelineConfig()
    timeline_config.check()
    if loaded is None:
        kwargs = {} if config.profile is None else {"profile": config.profile}
        loaded = {name: load_run(r, **kwargs) for name, r in zip(run_names(config.runs), config.runs, strict=True)}
    runs: dict[str, Any] = dict(loaded)
    default_run = next(iter(runs))
    data_dir = Path(config.data_dir).resolve()
    store = JobStore(data_dir)
    interrupted = store.mark_interrupted()
    if interrupted:
        logger.warning("%d job(s) were interrupted by the last stop; POST /v1/jobs/{id}/resume continues one",
                       len(interrupted))
    pool = WorkerPool(config.workers, config.queue)
    temp_root = data_dir / "tmp"
    shutil.rmtree(temp_root, ignore_errors=True)  # uploads a killed service left behind
    temp_root.mkdir(parents=True, exist_ok=True)
    temp_root.chmod(0o700)
    max_bytes = int(config.max_upload_mb * 2**20)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        pool.shutdown()

    app = FastAPI(title="openmer", version=__version__, lifespan=lifespan,
                  description="Open-set emotion recognition: predictions, timelines of recordings and reviews "
                              "of their unknown segments.")
    app.state.store, app.state.pool, app.state.runs = store, pool, runs

    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=config.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        path = request.url.path
        if config.token is not None and path.startswith("/v1/") and request.method != "OPTIONS":
            given = request.headers.get("authorization", "")
            token = given[7:] if given.lower().startswith("bearer ") else request.query_params.get("token", "")
            if not hmac.compare_digest(token.encode(), config.token.encode()):
                return _error(401, "missing or wrong bearer token (Authorization: Bearer TOKEN)")
        try:
            return await call_next(request)
        except Exception:
            logger.exception("unexpected error on %s %s", request.method, path)
            return _error(500, "internal error; see the service's log")

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message)

    @app.exception_handler(UploadError)
    async def upload_error(request: Request, exc: UploadError) -> JSONResponse:
        return _error(exc.status, exc.message)

    @app.exception_handler(Busy)
    async def busy(request: Request, exc: Busy) -> JSONResponse:
        return _error(503, f"all {config.workers} worker(s) are busy and {config.queue} request(s) wait; "
                           f"retry in {RETRY_AFTER_S} s")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such path: {request.url.path}"
        return _error(exc.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()]
        return _error(422, "invalid request: " + "; ".join(parts))

    def pick_run(name: str | None) -> tuple[str, Any]:
        if not name:
            return default_run, runs[default_run]
        if name not in runs:
            raise ApiError(404, f"unknown run {name!r}; served: {', '.join(runs)}")
        return name, runs[name]

    def get_job(job_id: str) -> Any:
        job = store.get(job_id) if re.fullmatch(r"[0-9a-f]{32}", job_id) else None
        if job is None:
            raise ApiError(404, f"unknown job {job_id[:64]!r}")
        return job

    async def upload_of(request: Request) -> Any:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            raise UploadError(413, f"upload larger than the limit of {config.max_upload_mb:g} MB (--max-upload-mb)")
        return await read_upload(request.headers.get("content-type", ""), request.stream(), max_bytes=max_bytes,
                                 temp_root=temp_root)

    # ------------------------------------------------------------------ endpoints
    @app.get("/health")
    async def health() -> dict[str, Any]:
        """The service is up: its version and the runs it serves."""
        return {"status": "ok", "version": __version__, "runs": list(runs)}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        """Per run: method, known classes, modalities, deployable threshold and its acceptance, metrics."""
        return {"default": default_run, "models": [describe_run(n, r) for n, r in runs.items()]}

    @app.post("/v1/predict")
    async def predict(request: Request) -> JSONResponse:
        """Multipart ``files`` (one or more clips), optional ``transcript`` (text for every file) and
        ``run``: per file the record ``openmer predict`` prints (``file`` is the uploaded name), or
        ``{"file", "error"}`` for a file that cannot be used while the others are scored. 422 when no
        file could be scored."""
        upload = await upload_of(request)
        try:
            _, run = pick_run(upload.fields.get("run") or request.query_params.get("run"))
            files = [f for f in upload.files if f.field in ("files", "file")]
            if not files:
                raise ApiError(400, "no file uploaded: send one or more files in the multipart field 'files'")
            text = upload.fields.get("transcript")
            future = pool.submit(_predict_files, run, files, text, config.max_duration_s)
        except BaseException:
            upload.remove()
            raise
        future.add_done_callback(lambda _: upload.remove())
        results = await asyncio.wrap_future(future)
        if all("error" in r for r in results):
            return _error(422, "no uploaded file could be scored", results=results)
        return JSONResponse({"results": results})

    @app.post("/v1/timeline", status_code=202)
    async def post_timeline(request: Request) -> JSONResponse:
        """Multipart ``file`` (a recording), optional ``transcript`` (an SRT/WebVTT/JSON file) and
        ``run``: a job, answered at once (202); ``GET /v1/jobs/{id}`` follows it."""
        upload = await upload_of(request)
        try:
            run_name, run = pick_run(upload.fields.get("run") or request.query_params.get("run"))
            media = [f for f in upload.files if f.field in ("file", "files")]
            if len(media) != 1:
                raise ApiError(400, f"send exactly one recording in the multipart field 'file' (got {len(media)})")
            checked = check_media(media[0].path, media[0].name, max_duration_s=config.max_duration_s)
            checked_path(media[0], checked)
            subs = [f for f in upload.files if f.field == "transcript"]
            job_id = store.new_id()
            folder = job_dir(data_dir, job_id)
            folder.mkdir(parents=True)
            try:
                recording = folder / f"recording{checked.suffix}"
                shutil.move(media[0].path, recording)
                transcript = _keep_transcript(subs[0], folder, media[0].name) if subs else None
                store.add_job(job_id, run=run_name, name=media[0].name, media=str(recording.relative_to(data_dir)),
                              kind=checked.kind, mime=checked.mime,
                              transcript=None if transcript is None else str(transcript.relative_to(data_dir)),
                              duration_s=checked.duration_s)
                pool.submit(run_timeline_job, store, run, job_id, timeline_config)
            except BaseException:
                store.delete_job(job_id)
                shutil.rmtree(folder, ignore_errors=True)
                raise
        finally:
            upload.remove()
        job = store.get(job_id)
        assert job is not None
        return JSONResponse(job.public(with_result=False), status_code=202,
                            headers={"Location": f"/v1/jobs/{job_id}"})

    @app.get("/v1/jobs")
    async def jobs() -> dict[str, Any]:
        """The latest jobs (without their results)."""
        return {"jobs": [j.public(with_result=False) for j in store.jobs()]}

    @app.get("/v1/jobs/{job_id}")
    async def job(job_id: str) -> dict[str, Any]:
        """A job's state and progress; when ``done``, its ``result`` (:func:`~openmer.service.jobs.job_result`)
        and ``reviews``."""
        j = get_job(job_id)
        return {**j.public(), "reviews": _reviews_public(store.reviews(j.id))}

    @app.post("/v1/jobs/{job_id}/resume", status_code=202)
    async def resume(job_id: str) -> JSONResponse:
        """Continue an ``interrupted`` (or ``failed``) job from what its timeline wrote (``--resume``)."""
        j = get_job(job_id)
        if j.state not in (INTERRUPTED, FAILED):
            raise ApiError(409, f"job {job_id} is {j.state}: only an interrupted or failed job can be resumed")
        if j.run not in runs:
            raise ApiError(409, f"job {job_id} was scored by run {j.run!r}, which this service does not serve")
        if not (data_dir / j.media).is_file():
            raise ApiError(409, f"job {job_id}: its recording is gone from the data folder")
        store.set_state(job_id, QUEUED)
        try:
            pool.submit(functools.partial(run_timeline_job, resume=True), store, runs[j.run], job_id, timeline_config)
        except Busy:
            store.set_state(job_id, j.state, error=j.error)
            raise
        new = store.get(job_id)
        assert new is not None
        return JSONResponse(new.public(with_result=False), status_code=202)

    @app.get("/v1/jobs/{job_id}/media")
    async def media(job_id: str) -> FileResponse:
        """The job's recording (range requests work, so a player can seek)."""
        j = get_job(job_id)
        path = data_dir / j.media
        if not path.is_file():
            raise ApiError(404, f"job {job_id}: its recording was removed")
        return FileResponse(path, media_type=j.mime)

    @app.post("/v1/jobs/{job_id}/segments/{n}/review")
    async def review(job_id: str, n: int, request: Request) -> dict[str, Any]:
        """Body ``{"label": known class | new emotion word | "not an emotion", "note": "..."}``."""
        j = get_job(job_id)
        if j.state != DONE or j.result is None:
            raise ApiError(409, f"job {job_id} is {j.state}: segments can be reviewed once it is done")
        segments = j.result["segments"]
        if not 0 <= n < len(segments):
            raise ApiError(404, f"job {job_id} has no segment {n} (it has {len(segments)})")
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "send a JSON body {\"label\": ..., \"note\": ...}") from None
        if not isinstance(body, dict) or not isinstance(body.get("label"), str):
            raise ApiError(422, "the body needs a string 'label'")
        note = body.get("note") or ""
        if not isinstance(note, str) or len(note) > 2000:
            raise ApiError(422, "'note' must be a string of at most 2000 characters")
        classes = j.result["classes"]
        label, kind = _review_label(body["label"], classes)
        seg = segments[n]
        return store.review(job_id, n, start_s=seg["start_s"], end_s=seg["end_s"], label=label, kind=kind, note=note)

    @app.get("/v1/jobs/{job_id}/reviews")
    async def job_reviews(job_id: str) -> dict[str, Any]:
        return {"reviews": _reviews_public(store.reviews(get_job(job_id).id))}

    @app.get("/v1/reviews/export", response_model=None)
    async def export(format: str = "csv") -> Response:
        """Every review as a manifest ``openmer train`` reads as it is (``format=csv``; paths relative
        to the data folder, where the same file is written as ``reviews.csv``), or ``format=json``:
        the manifest rows with the note, the kind of label and the recording's name."""
        from openmer.files import atomic_write_text

        rows = _manifest_rows(store.reviews())
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=EXPORT_COLUMNS, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(data_dir / EXPORT_FILE, buf.getvalue())
        if format == "json":
            return JSONResponse({"manifest": str(EXPORT_FILE), "rows": rows})
        if format != "csv":
            raise ApiError(422, f"format must be csv or json, got {format[:20]!r}")
        return Response(buf.getvalue(), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{EXPORT_FILE}"'})

    # ------------------------------------------------------------------ the page
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> FileResponse:
        files = {p.name: p for p in STATIC.iterdir() if p.is_file()}
        if name not in files:
            raise ApiError(404, f"no such file: {name[:64]}")
        return FileResponse(files[name])

    return app


def _review_label(raw: str, classes: list[str]) -> tuple[str, str]:
    """``(label, kind)``: kind ``known``, ``new`` (a new emotion word) or ``not_emotion``.

    Raises:
        ApiError: 422 for a label that is none of these.
    """
    label = " ".join(raw.split())
    if label in classes:
        return label, "known"
    if label.lower() == NOT_AN_EMOTION:
        return NOT_AN_EMOTION, "not_emotion"
    low = label.lower()
    if low in RESERVED or not (1 <= len(low) <= 40 and NEW_WORD.match(low)):
        raise ApiError(422, f"label {raw[:50]!r}: give a known class ({', '.join(classes)}), a new emotion word "
                            f"(letters, 1-40 characters; not {', '.join(sorted(RESERVED))}) or {NOT_AN_EMOTION!r}")
    return low, "new"


def _reviews_public(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: r[k] for k in ("segment", "start_s", "end_s", "label", "kind", "note", "reviewed")} for r in rows]


def _manifest_rows(reviews: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Manifest rows of the reviews: one clip per reviewed segment, cut from the job's recording by
    ``start``/``end``; ``group`` is the job (segments of one recording stay in one split)."""
    rows = []
    for r in reviews:
        media = r["media"]
        rows.append({"id": f"{r['job']}-{r['segment']:04d}", "audio": media if r["media_kind"] == "audio" else "",
                     "video": media if r["media_kind"] == "video" else "", "text": "", "label": r["label"],
                     "group": r["job"], "start": f"{r['start_s']:.3f}", "end": f"{r['end_s']:.3f}",
                     "kind": r["kind"], "note": r["note"], "recording": r["name"], "reviewed": r["reviewed"]})
    return rows


def _keep_transcript(sub: UploadedFile, folder: Path, name: str) -> Path:
    """Keep an uploaded transcript beside the job's recording, with the suffix its content says
    (WebVTT, JSON, else SRT), after checking it parses (:func:`openmer.timeline.subtitles.read_cues`).

    Raises:
        UploadError: 422 when it cannot be read (the message names the uploaded file).
    """
    from openmer.timeline.subtitles import read_cues

    head = sub.path.read_bytes()[:64].lstrip(b"\xef\xbb\xbf").lstrip()
    suffix = ".vtt" if head.startswith(b"WEBVTT") else ".json" if head[:1] in (b"[", b"{") else ".srt"
    target = folder / f"transcript{suffix}"
    shutil.move(sub.path, target)
    try:
        read_cues(target)
    except OpenmerError as exc:
        raise UploadError(422, public_message(str(exc), {target: sub.name}, folder)) from None
    return target


def _predict_files(run: Any, files: list[UploadedFile], text: str | None, max_duration_s: float) -> list[dict]:
    """Per uploaded file: check it decodes, then :func:`openmer.inference.predict_iter` (what
    ``openmer predict`` runs); each record's ``file`` is the uploaded name, its messages name it."""
    from openmer.inference import predict_iter

    results: list[dict[str, Any]] = []
    for f in files:
        try:
            checked = check_media(f.path, f.name, max_duration_s=max_duration_s)
            path = checked_path(f, checked)
        except UploadError as exc:
            results.append({"file": f.name, "error": exc.message})
            continue
        for found in predict_iter(run, [path], text=text):
            record = {**found, "file": f.name}
            if "error" in record:
                record["error"] = public_message(record["error"], {path: f.name}, path.parent)
            results.append(_finite(record))
    return results


def _finite(obj: Any) -> Any:
    """``obj`` with non-finite floats as ``None`` (JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj
