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


def test_ravdess_speech_runs_the_speech_clips_on_the_preset_of_their_declared_modalities():
    """``openmer benchmark ravdess-speech`` (issue 28's --discover on it): the RAVDESS audio clips and
    their protocol, on EmoDB's preset (the dataset declares speech + text), with the discovery hook."""
    from openmer.benchmarks.media import dataset_preset, media_plan
    from openmer.datasets import DATASETS
    from openmer.protocol import load_protocol

    plan = plan_benchmark("ravdess-speech", seed=2, quick=True, profile="toy")
    cfg = plan.config
    levels = tuple(load_protocol("ravdess-speech").levels)
    assert plan.cpu_preset and cfg.dataset == "ravdess-speech" and cfg.seed == 2 and cfg.profile == "toy"
    assert cfg.levels == (levels[0], levels[-1]) and cfg.n_splits == 1
    assert set(cfg.modalities) == set(DATASETS.get("ravdess-speech").modalities)
    assert cfg.preset_note.startswith("ravdess-speech on emodb's preset")
    full = plan_benchmark("ravdess-speech").config
    assert full.levels is None and full.n_splits == 4  # every level of its own protocol
    assert dataset_preset("meld").modalities == ("text",) and dataset_preset("emodb") == plan_benchmark("emodb").config
    hooked = media_plan(cfg.model_copy(update={"discover": True, "enrol": (5,)}), load_protocol("ravdess-speech"))
    assert [type(h).__name__ for h in hooked.hooks] == ["DiscoveryHook"] and hooked.hooks[0].enrol == (5,)


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
