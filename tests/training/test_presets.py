"""Training presets by name: one definition with the benchmarks, recorded in run.json, shown in --help."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from openmer.benchmarks.media import emodb_config, media_plan, with_paper_schedule
from openmer.cli.app import app
from openmer.errors import ConfigError
from openmer.methods.registry import get_method
from openmer.protocol import load_protocol
from openmer.runs import RUN_FILE
from openmer.training import TrainConfig
from openmer.training.presets import BASELINE_TRAIN, DEFAULT_PRESET, PRESETS, resolve_preset, with_encoder_options
from openmer.training.run import train
from tests.helpers.run_folders import FAST, KNOWN


@pytest.mark.parametrize("method", ["hcep", "arpl", "msp", "hesp"])
def test_cpu_preset_is_what_the_emodb_benchmark_trains_each_method_with(method):
    cfg = emodb_config(seed=3)
    plan = {mp.cls.name: mp for g in media_plan(cfg, load_protocol("emodb")).groups for mp in g.methods}
    cls = get_method(method)
    preset = resolve_preset("cpu", cls)
    assert preset.train == plan[method].train.model_copy(update={"seed": 0})  # a trial sets its own seed
    assert preset.method_options == plan[method].options
    if cls.consumes == "clips":
        assert preset.encoder_options == cfg.encoder_options


def test_paper_preset_is_the_papers_schedule_and_reading():
    hcep = resolve_preset("paper", get_method("hcep"))
    paper = with_paper_schedule(emodb_config())
    assert hcep.train == TrainConfig() == paper.hcep_train.model_copy(update={"seed": 0})
    assert (hcep.train.optimizer, hcep.train.lr, hcep.train.step_size, hcep.train.gamma, hcep.train.epochs) == (
        "sgd", 5e-4, 30, 0.1, 150)
    assert hcep.method_options == paper.hcep_options == {} and hcep.encoder_options == paper.encoder_options == {}
    assert resolve_preset("cpu", get_method("arpl")).train == BASELINE_TRAIN


def test_unknown_preset_lists_the_choices():
    with pytest.raises(ConfigError, match=r"unknown preset 'fast'.*cpu, paper"):
        resolve_preset("fast", get_method("hcep"))


def test_encoder_options_the_profile_sets_win(tiny_paper_profile):
    preset = resolve_preset("cpu", get_method("hcep"))
    audio = tiny_paper_profile.specs()["audio"]
    mine = tiny_paper_profile.with_options("audio", prompt_entry="features")
    assert with_encoder_options(mine, preset).audio.options["prompt_entry"] == "features"
    assert with_encoder_options(tiny_paper_profile, preset).audio.options == {**audio.options, "prompt_entry": "late"}


@pytest.mark.parametrize("preset", ["cpu", "paper"])
def test_run_json_records_the_preset_and_its_schedule(tmp_path, tiny_paper_profile, audio_text_data, preset):
    run = train(audio_text_data, KNOWN, method="arpl", profile=tiny_paper_profile, out=tmp_path / "run",
                preset=preset, train_config=FAST if preset == "paper" else None, cache_dir=tmp_path / "cache")
    info = json.loads((run / RUN_FILE).read_text())
    assert info["preset"] == preset
    expected = FAST if preset == "paper" else BASELINE_TRAIN  # an explicit schedule wins over the preset's
    assert info["train_config"] == expected.to_dict()


def test_train_help_says_what_each_preset_sets():
    res = CliRunner().invoke(app, ["train", "--help"], terminal_width=400)
    assert res.exit_code == 0
    text = " ".join(res.output.replace("│", " ").split())  # the help box, unwrapped
    assert DEFAULT_PRESET == "cpu" and "[default: cpu]" in text
    for name in PRESETS:
        assert f"{name}:" in text
    assert "block dropout 0.3" in text and "SGD momentum 0.9, lr 5e-4" in text
