"""A tiny end-to-end benchmark on synthetic features: records, files, reproducibility."""

from __future__ import annotations

import json

import numpy as np
import pytest

from openmer.benchmarks.runner import FeatureBenchmarkConfig, run_feature_benchmark
from openmer.protocol import GroupPartition, make_protocol
from openmer.reporting.figures import write_standard_figures
from openmer.reporting.results import write_results
from openmer.training import TrainConfig

CLASSES = ["a", "b", "c", "d"]


def synthetic():
    rng = np.random.default_rng(0)
    labels, groups, x1, x2 = [], [], [], []
    for g in range(6):
        for k, c in enumerate(CLASSES):
            for _ in range(5):
                labels.append(c)
                groups.append(f"s{g}")
                x1.append(rng.normal(k, 0.5, 3))
                x2.append(rng.normal(-k, 0.5, 2))
    return {"m1": np.array(x1), "m2": np.array(x2)}, labels, groups


def run(tmp_path, name, methods=("msp", "arpl"), posthoc=("energy", "knn")):
    feats, labels, groups = synthetic()
    part = GroupPartition(("s0", "s1", "s2", "s3"), ("s4",), ("s5",))
    protocol = make_protocol("toy", CLASSES, groups, [3, 2], n_splits=2, seed=0, partition=part)
    cfg = FeatureBenchmarkConfig(dataset="toy", modality_sets=(("m1",), ("m1", "m2")), methods=methods,
                                 posthoc=posthoc, train=TrainConfig(epochs=4, optimizer="adam", lr=1e-2, batch_size=16))
    result = run_feature_benchmark(cfg, feats, labels, groups, protocol)
    result.meta.pop("seconds")
    result.meta.pop("machine")
    paths = write_results(tmp_path / name, result.records, result.meta)
    return result, paths


def test_tiny_benchmark_end_to_end_and_reproducible(tmp_path):
    result, paths = run(tmp_path, "one")
    # levels x splits x modality sets x methods x (own score + 2 post-hoc scores)
    assert len(result.records) == 2 * 2 * 2 * 2 * 3
    r = result.records[0]
    assert {"auroc", "oscr", "aupr_in", "aupr_out", "closed_acc", "macro_f1", "fpr95", "level", "split"} <= set(r)
    assert all(0 <= rec["oscr"] <= rec["auroc"] <= 1 for rec in result.records)
    assert [(rec["method"], rec["score"], rec.get("posthoc_of")) for rec in result.records[:6]] == [
        ("msp", "msp", None), ("msp[energy]", "energy", "msp"), ("msp[knn]", "knn", "msp"),
        ("arpl", "max_logit", None), ("arpl[energy]", "energy", "arpl"), ("arpl[knn]", "knn", "arpl")]
    assert len(result.runs) == 2 * 2 * 2 * 2  # scores saved for the methods' own confidence only
    figures = write_standard_figures(tmp_path / "one", result.runs)
    assert figures and all(p.stat().st_size > 0 for p in figures)
    md = paths["markdown"].read_text()
    assert "O(3:1)" in md and "Post-hoc scores on the trained heads" in md and "AUPR-in" in md
    _, again = run(tmp_path, "two")
    assert json.loads(paths["json"].read_text()) == json.loads(again["json"].read_text())


def test_default_methods_are_the_registered_feature_methods():
    import pytest

    from openmer.errors import ConfigError
    from openmer.methods import get_method, list_methods
    from openmer.methods.posthoc import POSTHOC_SCORES

    cfg = FeatureBenchmarkConfig(dataset="toy", modality_sets=(("m1",),))
    assert cfg.methods == list_methods(consumes="features")
    assert {"msp", "arpl", "cssr", "cpn", "lpl"} <= set(cfg.methods) and "hcep" not in cfg.methods
    assert all(get_method(m).consumes == "features" for m in cfg.methods)
    assert cfg.posthoc == tuple(POSTHOC_SCORES)
    feats, labels, groups = synthetic()
    part = GroupPartition(("s0", "s1", "s2", "s3"), ("s4",), ("s5",))
    protocol = make_protocol("toy", CLASSES, groups, [3], n_splits=1, seed=0, partition=part)
    with pytest.raises(ConfigError, match="do not train on cached features"):
        run_feature_benchmark(cfg.model_copy(update={"methods": ("hcep",)}), feats, labels, groups, protocol)


def test_every_feature_method_runs_in_the_benchmark_with_blocks(tmp_path):
    """Each registered feature method trains and is scored on two concatenated blocks (LPL splits them)."""
    feats, labels, groups = synthetic()
    part = GroupPartition(("s0", "s1", "s2", "s3"), ("s4",), ("s5",))
    protocol = make_protocol("toy", CLASSES, groups, [3], n_splits=1, seed=0, partition=part)
    cfg = FeatureBenchmarkConfig(dataset="toy", modality_sets=(("m1", "m2"),), posthoc=(),
                                 train=TrainConfig(epochs=2, optimizer="adam", lr=1e-2, batch_size=16))
    result = run_feature_benchmark(cfg, feats, labels, groups, protocol)
    # Open-VCLIP needs a text encoder and a video block (tests/methods/test_openvclip.py runs it)
    assert result.meta["left_out"] == {"openvclip m1+m2": "needs a text encoder for its zero-shot class weights"}
    assert [r["method"] for r in result.records] == [m for m in cfg.methods if m != "openvclip"]
    assert all(0 <= r["oscr"] <= r["auroc"] <= 1 for r in result.records)


def test_select_levels_subset_and_unknown_level():
    import pytest

    from openmer.benchmarks.trials import select_levels
    from openmer.errors import ConfigError

    _, _, groups = synthetic()
    part = GroupPartition(("s0", "s1", "s2", "s3"), ("s4",), ("s5",))
    protocol = make_protocol("toy", CLASSES, groups, [3, 2], n_splits=2, seed=0, partition=part)
    assert select_levels(None, protocol) == tuple(protocol.levels)
    last = tuple(protocol.levels)[-1]
    assert select_levels([last], protocol) == (last,)
    with pytest.raises(ConfigError, match=r"O\(9:9\).*toy protocol"):
        select_levels(["O(9:9)"], protocol)


def test_paper_schedule_replaces_the_cpu_preset_of_hcep_only():
    from openmer.benchmarks.media import emodb_config, meld_config, with_paper_schedule

    preset = emodb_config(seed=3)
    paper = with_paper_schedule(preset)
    t = paper.hcep_train
    assert (t.epochs, t.optimizer, t.lr, t.momentum, t.step_size, t.gamma, t.batch_size, t.seed) == (
        150, "sgd", 5e-4, 0.9, 30, 0.1, 32, 3)
    assert paper.max_train_per_trial is None
    assert "cuep_audio_samples" not in paper.hcep_options  # 5 s CUEP waveforms, the paper's
    assert paper.baseline_train == preset.baseline_train
    assert "paper schedule" in paper.preset_note
    # the paper's reading, not the CPU options: prompts at the inputs, CUEP from noise, one learning rate
    assert paper.encoder_options == {} and t.lr_scales == {}
    assert "cuep_init" not in paper.hcep_options and "cuep_text" not in with_paper_schedule(meld_config()).hcep_options
    assert "block_weights" not in paper.hcep_options and "standardize_blocks" not in paper.hcep_options
    assert "block_dropout" not in paper.hcep_options


def test_cpu_presets_use_the_options_measured_to_make_hcep_learn():
    from openmer.benchmarks.media import emodb_config, meld_config

    emodb, meld = emodb_config(), meld_config()
    assert emodb.hcep_options["cuep_init"] == "clips" and emodb.hcep_options["block_weights"] == "learned"
    assert emodb.hcep_options["standardize_blocks"] is True and emodb.hcep_options["block_dropout"] == 0.3
    assert emodb.hcep_train.lr_scales == {"cuep": 30.0, "block_weights": 30.0}
    assert {m: o["prompt_entry"] for m, o in emodb.encoder_options.items()} == {"audio": "late", "text": "late"}
    assert meld.hcep_options["cuep_text"] == "learnable_tokens"
    assert meld.encoder_options["text"]["prompt_entry"] == "late"


@pytest.mark.parametrize(("args", "match"), [
    (["--budget", "equal"], "--budget must be 'preset' or 'matched'"),
    (["--budget", "matched", "--root", "x"], "--root is for"),
    (["--score", "odin"], "unknown post-hoc score 'odin'"),
    (["--schedule", "paper", "--budget", "equal"], "--budget must be 'preset' or 'matched'"),
])
def test_budget_option_errors_are_one_line(args, match, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from openmer.cli.app import app

    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["benchmark", "emodb", *args])
    assert res.exit_code == 1 and match in res.output and "Traceback" not in res.output


def test_score_option_chooses_the_post_hoc_rows_of_feature_heads_and_of_hcep():
    from openmer.benchmarks.media import emodb_config
    from openmer.cli.benchmark import _posthoc_update

    assert _posthoc_update(emodb_config(), "emodb", "knn, energy") == {"posthoc": ("knn", "energy"),
                                                                         "clip_posthoc": ("knn", "energy")}
    assert _posthoc_update(emodb_config(), "emodb", "none") == {"posthoc": (), "clip_posthoc": ()}
