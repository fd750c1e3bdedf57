"""The CLI commands that run timelines show the defaults the library measured and chose
(``TimelineConfig``, docs/timeline.md): the typer options repeat them as literals so that
``openmer --help`` stays light, and this test keeps the copies equal."""

from __future__ import annotations

import inspect

import pytest

from openmer.cli.serve import serve as serve_command
from openmer.cli.timeline import bench_timeline_command, timeline_command
from openmer.timeline import TimelineConfig
from openmer.timeline.benchmark import TimelineBenchmarkConfig


@pytest.mark.parametrize("command", [timeline_command, serve_command, bench_timeline_command])
def test_window_and_hop_defaults_are_the_librarys(command):
    params = inspect.signature(command).parameters
    assert params["window"].default.default == TimelineConfig.window
    assert params["hop"].default.default == TimelineConfig.hop


def test_the_benchmark_and_the_timeline_command_smooth_as_the_library_does():
    assert TimelineBenchmarkConfig().smooth == TimelineConfig.smooth
    smooth = inspect.signature(timeline_command).parameters["smooth"].default.default
    assert smooth == TimelineConfig.smooth
