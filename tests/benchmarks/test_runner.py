"""A tiny end-to-end benchmark on synthetic features: records, files, reproducibility."""

from __future__ import annotations

import json

import numpy as np

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


def run(tmp_path, name):
    feats, labels, groups = synthetic()
    part = GroupPartition(("s0", "s1", "s2", "s3"), ("s4",), ("s5",))
    protocol = make_protocol("toy", CLASSES, groups, [3, 2], n_splits=2, seed=0, partition=part)
    cfg = FeatureBenchmarkConfig(dataset="toy", modality_sets=(("m1",), ("m1", "m2")),
                                 train=TrainConfig(epochs=4, optimizer="adam", lr=1e-2, batch_size=16))
    result = run_feature_benchmark(cfg, feats, labels, groups, protocol)
    result.meta.pop("seconds")
    result.meta.pop("machine")
    paths = write_results(tmp_path / name, result.records, result.meta)
    return result, paths


def test_tiny_benchmark_end_to_end_and_reproducible(tmp_path):
    result, paths = run(tmp_path, "one")
    assert len(result.records) == 2 * 2 * 2 * 2  # levels x splits x modality sets x methods
    r = result.records[0]
    assert {"auroc", "oscr", "closed_acc", "macro_f1", "fpr95", "level", "split"} <= set(r)
    assert all(0 <= rec["oscr"] <= rec["auroc"] <= 1 for rec in result.records)
    figures = write_standard_figures(tmp_path / "one", result.runs)
    assert figures and all(p.stat().st_size > 0 for p in figures)
    assert "O(3:1)" in paths["markdown"].read_text()
    _, again = run(tmp_path, "two")
    assert json.loads(paths["json"].read_text()) == json.loads(again["json"].read_text())
