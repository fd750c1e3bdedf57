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


def test_bench_timeline_help_names_the_frame_track_it_builds():
    from openmer.timeline.bench import FRAME_RATE, FRAME_SIZE

    help_text = inspect.signature(bench_timeline_command).parameters["video_runs"].default.help
    assert f"{FRAME_SIZE[0]}x{FRAME_SIZE[1]}, {FRAME_RATE} fps" in help_text


def test_bench_timeline_needs_runs_or_video_runs(tmp_path):
    from typer.testing import CliRunner

    from openmer.cli.app import app

    res = CliRunner().invoke(app, ["bench-timeline", "--workdir", str(tmp_path / "w")])
    assert res.exit_code == 1 and "give run folders to time, or --video-runs METHODS" in res.output
    res = CliRunner().invoke(app, ["bench-timeline", "--video-runs", "nosuch", "--workdir", str(tmp_path / "w")])
    assert res.exit_code == 1 and "nosuch" in res.output
    assert not (tmp_path / "w").exists()


def test_the_heap_default_is_the_librarys_and_a_wrong_choice_is_refused_before_any_work(tmp_path):
    from typer.testing import CliRunner

    from openmer.cli.app import app
    from openmer.timeline import timeline

    assert inspect.signature(timeline).parameters["bounded_heap"].default is True
    for command in (timeline_command, bench_timeline_command):
        assert inspect.signature(command).parameters["heap"].default.default == "bounded"
    res = CliRunner().invoke(app, ["timeline", str(tmp_path / "run"), str(tmp_path / "a.wav"), "--out",
                                   str(tmp_path / "o"), "--heap", "small"])
    assert res.exit_code == 1 and "--heap must be bounded or default" in res.output
    res = CliRunner().invoke(app, ["bench-timeline", str(tmp_path / "run"), "--heap", "bounded,small",
                                   "--workdir", str(tmp_path / "w")])
    assert res.exit_code == 1 and "--heap must be bounded or default" in res.output
    assert not (tmp_path / "o").exists() and not (tmp_path / "w").exists()
