"""Shared CLI helpers: error reporting and rich progress."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from openmer.errors import OpenmerError

console = Console(stderr=True)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn an :class:`OpenmerError` into one red line on stderr and exit code 1 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OpenmerError as exc:
            console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=1) from None

    return wrapper


def rich_progress() -> Progress:
    """A progress bar with count, elapsed and remaining time, printed on stderr."""
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
    """Adapter from the library's ``progress(done, total, message)`` callback to a rich bar."""

    def __init__(self, progress: Progress, description: str):
        self.progress = progress
        self.task = progress.add_task(description, total=None, status="")

    def __call__(self, done: int, total: int, message: str = "") -> None:
        self.progress.update(self.task, completed=done, total=total, status=message)
