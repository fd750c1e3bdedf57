"""``openmer bench-train``: the records the issue asks for, measured in one run (tiny budget)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from openmer.cli.app import app
from openmer.errors import ConfigError
from tests.conftest import requires_shared_path

pytestmark = [requires_shared_path("data/emodb"), requires_shared_path("models/whisper-base-encoder"),
              requires_shared_path("models/all-MiniLM-L6-v2")]


def test_bench_train_records(tmp_path):
    out = tmp_path / "bench.json"
    res = CliRunner().invoke(app, ["bench-train", "--variants", "late,features", "--clips", "2", "--repeats", "1",
                                   "--json", str(out)])
    assert res.exit_code == 0, res.output
    records = json.loads(out.read_text())
    assert [r["prompt_entry"] for r in records] == ["late", "features"]
    for r in records:
        for key in ("step_over_forward", "step_over_floor", "clips_per_s", "peak_mem_mb", "torch_threads",
                    "clips_s", "cuep_s", "dpol_s", "backward_s", "optimizer_s"):
            assert key in r, key
        assert r["step_s"] >= r["clips_s"] + r["backward_s"] - 1e-6
        assert r["step_over_floor"] > 1.0  # a training step costs more than its forward alone
    late, features = records
    assert late["step_over_forward"] < features["step_over_forward"]  # the cached prefix is the cheaper entry


def test_unknown_variant_is_refused():
    from openmer.benchmarks.cost import train_step_report

    with pytest.raises(ConfigError, match="late-fp8"):
        train_step_report(variants=["late-fp8"])
