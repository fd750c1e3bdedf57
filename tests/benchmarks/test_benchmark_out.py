"""``openmer benchmark --out`` (issue 24 item 11): checked before the first trial; each trial is
recorded as it finishes, and a rerun after an interruption does not train the recorded trials again."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from openmer.benchmarks.media import run_media_benchmark
from openmer.benchmarks.registry import BenchmarkPlan
from openmer.cli.app import app
from openmer.training import trial
from tests.helpers.tiny_media import make_tiny_media, tiny_config

runner = CliRunner()


@pytest.fixture
def tiny_benchmark(tmp_path, monkeypatch):
    """``openmer benchmark emodb`` on the tiny media data: two head trials (ARPL, MSP), one split;
    ``calls`` counts the benchmark's runs and its trainings."""
    manifest, protocol = make_tiny_media(tmp_path, monkeypatch)
    cfg = tiny_config().model_copy(update={"levels": ("O(3:1)",), "methods": ("arpl", "msp"), "posthoc": ("energy",)})
    calls = {"runs": 0, "fits": 0}

    def run(config, *, progress=None, **kw):
        calls["runs"] += 1
        return run_media_benchmark(config, manifest, protocol, progress=progress, **kw)

    monkeypatch.setattr("openmer.benchmarks.registry.plan_benchmark",
                        lambda name, *, seed=0, **k: BenchmarkPlan(cfg.model_copy(update={"seed": seed}), run))
    real_fit = trial.fit

    def fit(*a, **k):
        calls["fits"] += 1
        return real_fit(*a, **k)

    monkeypatch.setattr(trial, "fit", fit)
    return calls


@pytest.mark.parametrize("where", ["a file", "a folder under a file"])
def test_an_unwritable_out_is_refused_before_the_first_trial(tiny_benchmark, tmp_path, where):
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    out = taken if where == "a file" else taken / "sub"
    res = runner.invoke(app, ["benchmark", "emodb", "--out", str(out)])
    assert res.exit_code == 1
    assert "taken" in res.output and "Traceback" not in res.output
    assert tiny_benchmark == {"runs": 0, "fits": 0}  # no trial was run (today: all of them, then the error)


def test_an_interrupted_benchmark_resumes_without_training_the_recorded_trials(tiny_benchmark, tmp_path, monkeypatch):
    clean = tmp_path / "clean"
    assert runner.invoke(app, ["benchmark", "emodb", "--out", str(clean)]).exit_code == 0
    assert tiny_benchmark["fits"] == 2
    expected = json.loads((clean / "results.json").read_text())["records"]

    out = tmp_path / "out"
    real_fit = trial.fit

    def power_cut_at_the_second_trial(*a, **k):
        if tiny_benchmark["fits"] == 3:
            raise KeyboardInterrupt
        return real_fit(*a, **k)

    monkeypatch.setattr(trial, "fit", power_cut_at_the_second_trial)
    first = runner.invoke(app, ["benchmark", "emodb", "--out", str(out)])
    assert first.exit_code != 0 and not (out / "results.json").exists()
    lines = (out / "trials.jsonl").read_text().splitlines()
    assert len(lines) == 1 and [r["method"] for r in json.loads(lines[0])["records"]] == ["arpl", "arpl[energy]"]

    fits = []
    monkeypatch.setattr(trial, "fit", lambda *a, **k: fits.append(1) or real_fit(*a, **k))
    second = runner.invoke(app, ["benchmark", "emodb", "--out", str(out)])
    assert second.exit_code == 0, second.output
    assert len(fits) == 1  # only MSP trains again; ARPL's trial is read back (today: both train again)
    assert "1 trial(s) read back" in second.output
    assert json.loads((out / "results.json").read_text())["records"] == expected
    saved = sorted(p.name for p in (out / "scores").glob("*.npz"))
    assert saved == sorted(p.name for p in (clean / "scores").glob("*.npz")) and saved


def test_a_trial_with_other_settings_is_not_read_back(tiny_benchmark, tmp_path):
    out = tmp_path / "out"
    assert runner.invoke(app, ["benchmark", "emodb", "--out", str(out)]).exit_code == 0
    assert tiny_benchmark["fits"] == 2
    assert runner.invoke(app, ["benchmark", "emodb", "--out", str(out)]).exit_code == 0
    assert tiny_benchmark["fits"] == 2  # the same settings: both read back
    assert runner.invoke(app, ["benchmark", "emodb", "--out", str(out), "--seed", "1"]).exit_code == 0
    assert tiny_benchmark["fits"] == 4  # another seed: both train again
    # a line cut short by an interruption is ignored (that trial runs again), the others still count
    with (out / "trials.jsonl").open("a") as fh:
        fh.write('{"fingerprint": "abc", "recor')
    assert runner.invoke(app, ["benchmark", "emodb", "--out", str(out)]).exit_code == 0
    assert tiny_benchmark["fits"] == 4
