"""Benchmarks by name: what ``openmer benchmark NAME`` runs.

``BENCHMARKS`` maps a name to a *plan function*, registered by the module that defines the
benchmark (``@register_benchmark("emodb")``; the paper settings register one per setting):

    plan(seed=0, quick=False, profile=None, roots=None) -> BenchmarkPlan

It builds the preset (on ``profile`` when one is given), checks ``--root`` (a benchmark on
``../shared`` refuses one; a paper setting needs its dataset folders) and says how to run it.
Looking up an unknown name raises a ``ConfigError`` listing the choices. The registry is filled on
the first lookup, so importing it (the CLI does) does not import the benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from openmer.errors import ConfigError
from openmer.registry import Registry


@dataclass(frozen=True)
class BenchmarkPlan:
    """A benchmark's preset and how to run it.

    Attributes:
        config: the preset (a pydantic config; the CLI's options update it with ``model_copy``).
        run: ``run(config, *, progress=None, journal=None) -> BenchmarkResult`` (``journal``: a
            :class:`~openmer.benchmarks.journal.TrialJournal` recording finished trials, so that an
            interrupted run resumes).
        cpu_preset: HCEP's training in ``config`` is a CPU preset that ``--schedule paper`` and
            ``--budget matched`` may replace (the benchmarks on ``../shared``); a paper setting
            already trains on the paper's schedule.
    """

    config: Any
    run: Callable[..., Any]
    cpu_preset: bool = False


def _fill() -> None:
    import importlib

    for module in ("openmer.benchmarks.cross_speech", "openmer.benchmarks.media", "openmer.benchmarks.paper_settings",
                   "openmer.benchmarks.ravdess", "openmer.benchmarks.robustness",
                   "openmer.timeline.benchmark"):
        importlib.import_module(module)  # their decorators fill BENCHMARKS


BENCHMARKS: Registry[Callable[..., BenchmarkPlan]] = Registry("benchmark", fill=_fill)


def register_benchmark(name: str) -> Callable[[Callable[..., BenchmarkPlan]], Callable[..., BenchmarkPlan]]:
    """Decorator: register a plan function under ``name`` (see the module docstring)."""
    return BENCHMARKS.register(name)


def plan_benchmark(name: str, *, seed: int = 0, quick: bool = False, profile: str | None = None,
                   roots: Sequence[str] | None = None) -> BenchmarkPlan:
    """The plan of benchmark ``name``.

    Raises:
        ConfigError: an unknown name (the message lists the choices), or ``roots`` / ``profile``
            the benchmark does not take.
    """
    return BENCHMARKS.get(name)(seed=seed, quick=quick, profile=profile, roots=list(roots or []))


def refuse_roots(name: str, roots: Sequence[str]) -> None:
    """A benchmark on ``../shared`` takes no ``--root``.

    Raises:
        ConfigError: ``roots`` is not empty.
    """
    if roots:
        raise ConfigError(f"benchmark {name} reads its data from ../shared and takes no --root "
                          "(--root is for the benchmarks on your copy of a licensed dataset)")


def on_profile(config: Any, profile: str | None) -> Any:
    """``config`` on encoder profile ``profile`` (``None``: the preset's)."""
    return config if profile is None else config.model_copy(update={"profile": profile})
