"""The --discover / --enrol trial hook on a tiny synthetic feature benchmark (MSP)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from openmer.benchmarks.trials import MethodPlan, TrialData, TrialGroup, TrialPlan, run_trials
from openmer.discovery.benchmark import (
    DiscoveryHook,
    answer_rows,
    clustering_scores,
    naming_accuracy,
    summary_sections,
)
from openmer.methods.registry import get_method
from openmer.protocol import GroupPartition, make_protocol
from openmer.reporting.results import write_results
from openmer.training import TrainConfig
from tests.helpers.encoders import ToyText

CLASSES = ["anger", "happiness", "sadness", "fear", "disgust"]


def synthetic():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(len(CLASSES), 6)) * 3
    labels, groups, x = [], [], []
    for g in range(6):
        for k, c in enumerate(CLASSES):
            for _ in range(6):
                labels.append(c)
                groups.append(f"s{g}")
                x.append(centres[k] + rng.normal(size=6) * 0.3)
    return {"m1": np.array(x)}, labels, groups


def test_clustering_scores_and_naming_accuracy():
    s = clustering_scores(np.array([0, 0, 1, 1, -1]), ["a", "a", "b", "b", "b"])
    assert s["purity"] == 1.0 and s["coverage"] == 0.8 and 0 < s["ari"] <= 1
    names = [[("joy", 0.9), ("fear", 0.5)], [("anger", 0.8)]]
    assert naming_accuracy(np.array([0, 1, -1]), ["happy", "angry", "anger"], names) == 2 / 3


def test_discovery_and_enrolment_records_of_a_trial(tmp_path):
    feats, labels, groups = synthetic()
    part = GroupPartition(("s0", "s1", "s2", "s3"), ("s4",), ("s5",))
    protocol = make_protocol("toy", CLASSES, groups, [3], n_splits=1, seed=0, partition=part)
    train = TrainConfig(epochs=15, optimizer="adam", lr=1e-2, batch_size=16)
    plan = TrialPlan(protocol, None, 1, 0, (TrialGroup((MethodPlan(get_method("msp"), {}, train),), (("m1",),)),),
                     hooks=(DiscoveryHook(enrol=(4,), min_size=3, steps=60),))
    torch.manual_seed(0)
    data = TrialData(labels, groups, features=feats, encoders={"text": ToyText(width=8, dim=6)})
    out = run_trials(plan, data)
    rec = out.records[0]
    d = rec["discovery"]
    assert d["n_unknown"] == 12 and len(d["classes"]) == 2
    for side in ("trained", "baseline"):
        assert {"ari", "nmi", "purity", "naming_accuracy", "k"} <= set(d[side])
    # trained: MSP's learned embedding (embed_dim 128), not its 6-d unprompted input (the baseline's)
    assert d["trained"]["dim"] == 128 and d["baseline"]["dim"] == 6
    # well-separated unknown classes: both feature sets recover them
    assert d["baseline"]["ari"] > 0.9 and d["baseline"]["k"] == 2
    e = rec["enrolment"]["4"]
    assert len(e["classes"]) == 2 and all(c["n_examples"] == 4 for c in e["classes"])
    assert e["recall"] >= 0.8 and e["acc_after"] >= e["acc_before"] - 0.1
    sections = summary_sections(out.records)
    assert [h for h, _ in sections] == ["Discovery of unknown classes (--discover)",
                                        "Enrolment of an unknown class (--enrol)", "Answers (--discover, --enrol)"]
    assert any("| 4 |" in line for line in sections[1][1])
    assert sum(line.startswith("| msp ") for line in sections[0][1]) == 2  # trained, baseline; no post-hoc rows
    paths = write_results(tmp_path / "res", out.records, {"dataset": "toy"}, sections=sections)
    assert "Enrolment of an unknown class" in paths["markdown"].read_text()


def test_answers_average_levels_within_a_split_then_over_splits_and_name_the_smallest_n():
    def rec(level, split, ari_t, ari_b, enrol):
        side = {"nmi": 0.5, "purity": 0.5, "naming_accuracy": 0.2}
        other = dict.fromkeys(("auroc_before", "auroc_after", "oscr_before", "oscr_after"), 0.5)
        return {"method": "msp", "modalities": "m1", "level": level, "split": split,
                "discovery": {"trained": {"ari": ari_t, **side}, "baseline": {"ari": ari_b, **side}},
                "enrolment": {n: {"recall": r, "acc_before": 0.9, "acc_after": 0.9 - d, **other}
                              for n, (r, d) in enrol.items()}}

    records = [rec("O(2:1)", 0, 0.5, 0.1, {"5": (0.8, 0.01), "10": (0.9, 0.05)}),
               rec("O(1:2)", 0, 0.3, 0.1, {"5": (0.6, 0.01), "10": (0.9, 0.05)}),
               rec("O(2:1)", 1, 0.1, 0.3, {"5": (0.9, 0.02), "10": (0.9, 0.05)}),
               rec("O(1:2)", 1, 0.1, 0.1, {"5": (0.9, 0.02), "10": (0.9, 0.05)}),
               {**rec("O(2:1)", 0, 9.0, 9.0, {}), "posthoc_of": "msp"}]  # a post-hoc row: not counted twice
    a = answer_rows(records)
    (d,) = a["discovery"]
    # split 0: mean over levels 0.4 - 0.1 = 0.3; split 1: 0.1 - 0.2 = -0.1 -> mean 0.1, std 0.2
    assert d["delta_ari"] == pytest.approx((0.1, 0.2)) and d["trained_better_ari"] == 2 and d["n_trials"] == 4
    five, ten = a["enrolment"]
    assert five["n"] == 5 and five["recall"] == pytest.approx((0.8, 0.1)) and five["meets"]
    assert five["trials_meeting"] == 3 and not ten["meets"] and ten["old_drop"][0] == pytest.approx(0.05)
    lines = summary_sections(records)[-1][1]
    assert "- msp (m1): N = 5 examples" in lines
    only_ten = answer_rows([{**r, "enrolment": {"10": r["enrolment"]["10"]}} for r in records[:4]])
    assert not only_ten["enrolment"][0]["meets"]
