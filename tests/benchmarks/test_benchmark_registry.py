"""``openmer benchmark NAME`` looks NAME up in one registry, filled by the benchmark modules."""

from __future__ import annotations

import subprocess
import sys

import pytest

from openmer.benchmarks.registry import BENCHMARKS, plan_benchmark
from openmer.cli.benchmark import BenchmarkName
from openmer.errors import ConfigError


def test_the_cli_lists_exactly_the_registered_benchmarks():
    assert sorted(b.value for b in BenchmarkName) == sorted(BENCHMARKS.names())


def test_plans_carry_the_preset_and_whether_hceps_cpu_preset_may_be_replaced():
    emodb = plan_benchmark("emodb", seed=3, quick=True, profile="toy")
    assert emodb.cpu_preset and emodb.config.dataset == "emodb" and emodb.config.seed == 3
    assert emodb.config.profile == "toy" and emodb.config.n_splits == 1
    mosei = plan_benchmark("mosei", quick=True, roots=["somewhere"])
    assert not mosei.cpu_preset and mosei.config.profile == "paper"


@pytest.mark.parametrize(("name", "roots", "match"), [
    ("odin", [], "unknown benchmark 'odin'"),
    ("meld", ["x"], "takes no --root"),
    ("ravdess", ["a", "b"], "takes one --root"),
    ("mafw", [], "needs its dataset folder"),
])
def test_plan_errors_name_the_problem(name, roots, match):
    with pytest.raises(ConfigError, match=match) as err:
        plan_benchmark(name, roots=roots)
    if name == "odin":
        assert "cross-speech" in str(err.value) and "emodb" in str(err.value)  # the choices


def test_the_cli_does_not_import_the_benchmarks():
    code = "import sys, openmer.cli.app; print(any(m.startswith('openmer.benchmarks.media') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
