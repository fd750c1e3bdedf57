"""The `openmer` command: help, version, readable errors and exit codes."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from openmer import __version__
from openmer.cli.app import app

runner = CliRunner()


def test_help_and_version():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for command in ("benchmark", "train", "evaluate", "predict", "bench-encoders"):
        assert command in res.output
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and __version__ in res.output


def test_benchmark_without_shared_says_what_it_needs(tmp_path, monkeypatch):
    monkeypatch.setenv("SHARED_DIR", str(tmp_path / "nowhere"))
    res = runner.invoke(app, ["benchmark", "ravdess", "--out", str(tmp_path / "out")])
    assert res.exit_code == 1
    assert "ravdess-au-mfcc" in res.output and "SHARED_DIR" in res.output
    assert "Traceback" not in res.output


@pytest.mark.parametrize(("args", "match"), [
    (["train", "--data", "nope.csv", "--known", "a,b", "--out", "x"], "no such manifest file"),
    (["train", "--data", "ravdess", "--known", "a,b", "--out", "x"], "benchmark ravdess"),
    (["train", "--data", "emodb=no-copy", "--known", "a,b", "--out", "x"], "no-copy: the EmoDB recordings"),
    (["train", "--data", "emodb=", "--known", "a,b", "--out", "x"], "give the folder of your copy"),
    (["evaluate", "no-run", "--data", "emodb"], "not found"),
    (["predict", "no-run", "clip.wav"], "not found"),
])
def test_errors_are_one_readable_line(tmp_path, monkeypatch, args, match):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, args)
    assert res.exit_code == 1
    assert match in res.output and "Traceback" not in res.output


def test_train_rejects_unknown_class(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.csv").write_text("id,text,label,group\n1,hi,joy,a\n2,ho,anger,b\n")
    res = runner.invoke(app, ["train", "--data", "m.csv", "--known", "joy,fear", "--out", "run"])
    assert res.exit_code == 1 and "['fear'] do not occur" in res.output


def test_plain_progress_lines_when_stdout_is_not_a_terminal():
    from io import StringIO

    from rich.console import Console

    from openmer.cli.common import PlainProgress, ProgressCallback

    out = StringIO()
    progress = PlainProgress(Console(file=out, width=200))
    callback = ProgressCallback(progress, "benchmark emodb")
    for i in range(3):  # the library reports before each trial, then once at the end
        callback(i, 3, f"arpl trial {i}")
    callback(3, 3, "done")
    callback(0, 2, "hcep trial 0")  # a second phase counts from 0 again
    callback(1, 2, "hcep trial 1")
    lines = out.getvalue().splitlines()
    assert lines[3].startswith("benchmark emodb: 1/2 done") and len(lines) == 4
    lines = lines[:3]
    assert len(lines) == 3 and lines[0].startswith("benchmark emodb: 1/3 done, elapsed 0:00, remaining ~0:00")
    assert lines[0].endswith("(next: arpl trial 1)")
    assert lines[-1].endswith("3/3 done, elapsed 0:00, remaining ~0:00 (done)")


def test_os_errors_are_one_line(tmp_path, capsys):
    import typer

    from openmer.cli.common import handle_errors

    @handle_errors
    def boom():
        open(tmp_path / "no" / "such")  # noqa: SIM115

    with pytest.raises(typer.Exit) as info:
        boom()
    assert info.value.exit_code == 1
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'no' / 'such'}: No such file or directory"
