"""The robustness benchmark on a tiny generated dataset with toy encoders."""

from __future__ import annotations

import numpy as np
import pytest

from openmer.benchmarks.robustness import (
    RobustnessConfig,
    at_threshold,
    babble_pool,
    corruption_errors,
    neighbour_texts,
    run_robustness,
)
from openmer.data.clips import ClipDataset
from openmer.protocol import open_set_subsets
from tests.helpers.tiny_media import make_tiny_media, tiny_config


def _cfg(**kw) -> RobustnessConfig:
    return RobustnessConfig(**{**tiny_config().model_dump(), "methods": ("msp", "arpl"), "posthoc": (),
                               "clip_posthoc": (), **kw})


def test_babble_never_uses_a_test_speaker(tmp_path, monkeypatch):
    man, protocol = make_tiny_media(tmp_path, monkeypatch)
    clips = ClipDataset(man, [-1] * len(man), ("audio", "text"))
    groups = [s.group for s in man]
    for level in protocol.levels.values():
        for split in level:
            sub = open_set_subsets(list(man.labels), groups, split, protocol.partition)
            pool = babble_pool(clips, groups, sub["train"], sub["test"], 24, 0)
            assert pool.babble and not set(pool.babble_groups) & {groups[i] for i in sub["test"]}
            assert set(pool.babble_groups) <= {groups[i] for i in sub["train"]}


def test_neighbour_text_is_another_clip_of_the_same_speaker(tmp_path, monkeypatch):
    man, _ = make_tiny_media(tmp_path, monkeypatch)
    groups = [s.group for s in man]
    nb = neighbour_texts(ClipDataset(man, [-1] * len(man), ("text",)), groups)
    for i, text in nb.items():
        assert text != man.text_of(man[i])
        assert any(groups[j] == groups[i] and man.text_of(man[j]) == text for j in range(len(man)))


def test_at_threshold_counts_known_flagged_and_unknown_caught():
    conf = np.array([0.9, 0.2, 0.8, 0.1, 0.6])
    labels = np.array([0, 1, 0, -1, -1])
    assert at_threshold(conf, labels, 0.5) == {"fpr_at_threshold": pytest.approx(1 / 3),
                                               "tpr_at_threshold": pytest.approx(0.5)}


def test_corruption_error_is_one_for_the_baseline_and_ranks_a_worse_method_above():
    recs = []
    for m, clean, noisy in (("arpl", 0.9, 0.7), ("hcep", 0.9, 0.6)):
        recs.append({"method": m, "corruption": "none", "severity": 0, "auroc": clean})
        recs += [{"method": m, "corruption": "babble", "severity": s, "auroc": noisy} for s in (1, 2)]
    ce = corruption_errors(recs)
    assert ce["arpl"] == {"mce": pytest.approx(1.0), "relative_mce": pytest.approx(1.0)}
    assert ce["hcep"]["mce"] == pytest.approx(0.4 / 0.3) and ce["hcep"]["relative_mce"] == pytest.approx(1.5)


def test_benchmark_scores_the_same_test_clips_under_each_corruption(tmp_path, monkeypatch):
    data = make_tiny_media(tmp_path, monkeypatch)
    cfg = _cfg(corruptions=("white_noise", "babble", "drop_audio", "neighbour_text"), severities=(1, 4),
               levels=("O(3:1)",))
    res = run_robustness(cfg, data=data)
    got = {(r["method"], r["corruption"], r["severity"]) for r in res.records}
    assert got == {(m, c, s) for m in ("msp", "arpl") for c, s in
                   (("none", 0), ("white_noise", 1), ("white_noise", 4), ("babble", 1), ("babble", 4),
                    ("drop_audio", 1), ("neighbour_text", 1))}
    for r in res.records:
        for m in ("fpr", "tpr"):
            assert 0 <= r[f"{m}_at_threshold"] <= 1 and 0 <= r[f"{m}_at_threshold_recalibrated"] <= 1
    clean = {r["method"]: r for r in res.records if r["corruption"] == "none"}
    for run in res.runs:  # the clean record is the trial's own scoring of the test set
        assert clean[run.method]["auroc"] == pytest.approx(
            next(r["auroc"] for r in res.records if r["method"] == run.method and r["corruption"] == "none"))
    noisy = [r for r in res.records if r["corruption"] == "white_noise" and r["severity"] == 4]
    assert any(r["auroc"] != clean[r["method"]]["auroc"] for r in noisy)
    assert res.sections and "Robustness" in res.sections[0][0]


def test_augmentation_never_touches_validation_or_test_clips(tmp_path, monkeypatch):

    from openmer.benchmarks import trials
    from openmer.benchmarks.media import media_plan
    from openmer.benchmarks.robustness import TrainingAugmentation
    from openmer.media.corruptions import Augmentation

    man, protocol = make_tiny_media(tmp_path, monkeypatch)
    cfg = _cfg()
    plan = media_plan(cfg, protocol)
    source = trials.ClipSource(man, cfg.modalities, cfg.profile, cfg.encoder_options)
    clean = trials.clip_data(plan, source)
    augmentation = Augmentation(("white_noise", "drop_text"), p=0.5)
    aug = TrainingAugmentation.build(augmentation, plan, clean)
    again = TrainingAugmentation.build(augmentation, plan, clean)
    assert repr(aug) == repr(augmentation)  # the journal's identity of an augmented trial: no arrays in it
    changed = np.zeros(len(man), bool)
    for m in clean.features:
        changed |= ~np.all(np.isclose(aug.features[m], clean.features[m]), axis=1)
        changed |= aug.present[m] != clean.present[m]
        assert np.array_equal(aug.features[m], again.features[m])  # seeded
    train_groups = protocol.partition.train_groups
    in_train = np.array([g in train_groups for g in clean.groups])
    assert changed.any() and not changed[~in_train].any()
    assert changed[in_train].mean() < 0.9  # about half stay clean


def _strip(records):
    return [{k: v for k, v in r.items() if not k.endswith("_s") and k not in ("seconds", "time")} for r in records]


def test_the_run_cache_changes_no_record(tmp_path, monkeypatch):
    """Each corrupted clip is corrupted and encoded once per run; the records are those of
    recomputing everything (a cache of 0 MiB keeps nothing)."""
    from functools import partial

    from openmer.benchmarks import robustness

    data = make_tiny_media(tmp_path, monkeypatch)
    cfg = _cfg(methods=("msp", "arpl", "hcep"), corruptions=("white_noise", "babble", "word_deletion", "drop_text"),
               severities=(1, 3))
    hooks, cls = [], robustness.RobustnessHook

    def hook(*a, cache_mb, **kw):
        hooks.append(cls(*a, cache=robustness.CorruptedClipCache(cache_mb << 20), **kw))
        return hooks[-1]

    monkeypatch.setattr(robustness, "RobustnessHook", partial(hook, cache_mb=robustness.RUN_CACHE_MB))
    cached = robustness.run_robustness(cfg, data=data)
    monkeypatch.setattr(robustness, "RobustnessHook", partial(hook, cache_mb=0))
    fresh = robustness.run_robustness(cfg, data=data)
    assert _strip(cached.records) == _strip(fresh.records)
    counts = hooks[0].cache_counts()
    # 2 levels x 3 methods: the test clips are corrupted once; a transcript corruption reuses the audio's batches
    assert counts["clips_hits"] > counts["clips_misses"] > 0
    assert counts["feature_batches_hits"] > counts["feature_batches_misses"] > 0
    assert cached.meta["corrupted_clip_cache"] == counts
    assert hooks[1].cache_counts()["clips_hits"] == 0


def test_kept_encoder_states_are_put_back_for_the_same_rows_only():
    import torch

    from openmer.backbones.prefix import PrefixCache
    from openmer.benchmarks.robustness import CorruptedClipCache

    class Enc:
        prefix_cache = PrefixCache()

    enc, run = Enc(), CorruptedClipCache()
    enc.prefix_cache.add({"train": torch.zeros(2)})
    with run.prefixes(("hcep", 16, "babble", 3, (1, 2)), {"audio": enc}):
        enc.prefix_cache.add({"a": torch.ones(3), "b": torch.ones(4)})  # what scoring computes
    enc.prefix_cache.clear()  # the next trial moves the method
    with run.prefixes(("hcep", 16, "babble", 1, (1, 2)), {"audio": enc}):
        assert enc.prefix_cache.held() == []
    with run.prefixes(("hcep", 16, "babble", 3, (1, 2)), {"audio": enc}):
        assert enc.prefix_cache.held() == ["a", "b"]  # in order, not the training clip's state
    with run.prefixes(("hcep", 16, "babble", 3, (5,)), {"audio": enc}, keep=False):
        enc.prefix_cache.add({"c": torch.ones(1)})
    assert ("hcep", 16, "babble", 3, (5,)) not in run._prefixes
    assert run.counts == {"prefix_sets_hits": 1, "prefix_sets_misses": 2}
