"""Openness, known/unknown splits, group partitions and the shipped protocol files."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from openmer import UNKNOWN
from openmer.datasets import EMODB_CLASSES, EMODB_SPEAKER_GENDER, MELD_CLASSES, RAVDESS_CLASSES
from openmer.errors import ConfigError, DataError
from openmer.protocol import (
    GroupPartition,
    OpenSetSplit,
    Protocol,
    available_protocols,
    group_partition,
    known_unknown_splits,
    load_protocol,
    make_protocol,
    open_set_subsets,
    openness,
    openness_label,
    partition_indices,
    save_protocol,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
CLASSES8 = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")


def _make_splits_module():
    spec = importlib.util.spec_from_file_location("make_splits", REPO_ROOT / "scripts" / "make_splits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ openness
@pytest.mark.parametrize(
    ("k", "u", "expected"),
    [
        # HCEP Sec. 4.1.2 / Tables: MAFW, MOSEI, and the two extreme settings, to two decimals
        (8, 2, 0.11), (6, 4, 0.23), (4, 6, 0.37), (2, 8, 0.55),
        (5, 1, 0.09), (4, 2, 0.18), (3, 3, 0.29), (2, 4, 0.42),
        (10, 32, 0.51), (6, 236, 0.84),
        (6, 2, 0.13), (4, 4, 0.29), (2, 6, 0.50),
    ],
)
def test_openness_matches_paper_values(k, u, expected):
    assert round(openness(k, u), 2) == pytest.approx(expected)


def test_openness_formula_and_label():
    assert openness(6, 2) == pytest.approx(1 - math.sqrt(6 / 8))
    assert openness(5, 0) == 0.0
    assert openness(np.int64(3), np.int64(3)) == pytest.approx(1 - math.sqrt(0.5))
    assert openness_label(6, 2) == "O(6:2)"
    assert isinstance(openness(2, 2), float)


@pytest.mark.parametrize(
    ("k", "u", "match"),
    [(0, 2, "n_known must be >= 1"), (2, -1, "n_unknown must be >= 0"), (2.0, 1, "must be an int"),
     (True, 1, "must be an int"), (2, "1", "must be an int")],
)
def test_openness_rejects_bad_arguments(k, u, match):
    with pytest.raises(ValueError, match=match):
        openness(k, u)
    with pytest.raises(ValueError, match=match):
        openness_label(k, u)


# ------------------------------------------------------------------ splits
def test_splits_are_distinct_ordered_and_reproducible():
    splits = known_unknown_splits(CLASSES8, 4, n_splits=10, seed=3)
    assert len({frozenset(s.known_classes) for s in splits}) == 10
    assert [s.index for s in splits] == list(range(10))
    for s in splits:
        assert s.seed == 3 and s.n_known == 4 and s.n_unknown == 4 and s.label == "O(4:4)"
        assert set(s.classes) == set(CLASSES8)
        # known and unknown keep the order of `classes`
        assert list(s.known_classes) == [c for c in CLASSES8 if c in s.known_classes]
        assert list(s.unknown_classes) == [c for c in CLASSES8 if c in s.unknown_classes]
    assert known_unknown_splits(CLASSES8, 4, n_splits=10, seed=3) == splits
    assert known_unknown_splits(CLASSES8, 4, n_splits=10, seed=4) != splits


def test_splits_can_exhaust_all_partitions():
    splits = known_unknown_splits(CLASSES8, 6, n_splits=28)  # comb(8, 6) = 28
    assert {frozenset(s.known_classes) for s in splits} == {frozenset(c) for c in itertools.combinations(CLASSES8, 6)}


def test_splits_large_class_count_uses_sampling():
    classes = [f"c{i}" for i in range(40)]  # comb(40, 20) is far above the enumeration limit
    splits = known_unknown_splits(classes, 20, n_splits=5, seed=1)
    assert len({frozenset(s.known_classes) for s in splits}) == 5
    assert splits == known_unknown_splits(classes, 20, n_splits=5, seed=1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_known": 6, "n_splits": 29}, r"only comb\(8, 6\) = 28"),
        ({"n_known": 8}, "n_known must be between 1 and 7"),
        ({"n_known": 0}, "n_known must be >= 1"),
        ({"n_known": 2, "n_splits": 0}, "n_splits must be >= 1"),
        ({"n_known": 2, "seed": -1}, "seed must be >= 0"),
    ],
)
def test_splits_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        known_unknown_splits(CLASSES8, **kwargs)


def test_splits_reject_duplicate_classes():
    with pytest.raises(ValueError, match="duplicate"):
        known_unknown_splits(["a", "b", "a"], 1)


def test_split_round_trip_and_validation():
    s = OpenSetSplit(("a", "b"), ("c",), seed=7, index=2)
    assert OpenSetSplit.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert s.openness == pytest.approx(openness(2, 1))
    assert s.encode(["b", "c", "a"]).tolist() == [1, UNKNOWN, 0]
    with pytest.raises(ValueError, match="not one of"):
        s.encode(["d"])
    with pytest.raises(ValueError, match="both known and unknown"):
        OpenSetSplit(("a", "b"), ("b",))
    with pytest.raises(ValueError, match="at least one known"):
        OpenSetSplit((), ("b",))
    with pytest.raises(ValueError, match="exactly the keys"):
        OpenSetSplit.from_dict({**s.to_dict(), "extra": 1})


# ------------------------------------------------------------------ partitions
def test_group_partition_disjoint_complete_deterministic():
    groups = [f"{a:02d}" for a in range(1, 25)] * 3  # repeats, as one entry per sample
    p = group_partition(groups, seed=0)
    assert (len(p.train_groups), len(p.val_groups), len(p.test_groups)) == (14, 5, 5)
    assert sorted(p.groups) == sorted(set(groups))
    assert len(set(p.groups)) == 24
    assert p == group_partition(list(reversed(groups)), seed=0)  # independent of input order
    assert p != group_partition(groups, seed=1)
    assert GroupPartition.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    assert p.part_of(p.val_groups[0]) == "val"


def test_group_partition_counts_and_strata():
    g = EMODB_SPEAKER_GENDER
    p = group_partition(g, counts=(3, 1, 1), strata=g, seed=0)
    for part in (p.val_groups, p.test_groups):
        assert sorted(g[s] for s in part) == ["female", "male"]
    assert len(p.train_groups) == 6
    p2 = group_partition(["a", "b", "c", "d"], counts=(2, 1, 1), seed=5)
    assert (len(p2.train_groups), len(p2.val_groups), len(p2.test_groups)) == (2, 1, 1)
    # small group counts still give non-empty parts
    p3 = group_partition(["a", "b", "c"])
    assert all(len(x) == 1 for x in (p3.train_groups, p3.val_groups, p3.test_groups))


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (([],), {}, "no groups"),
        ((["a", "b"],), {}, "cannot be split"),
        ((["a", "b", "c"], (0.5, 0.5, 0.5)), {}, "adding up to 1"),
        ((["a", "b", "c"], (0.0, 0.5, 0.5)), {}, "non-zero train and test"),
        ((["a", "b", "c"],), {"counts": (1, 1, 2)}, "add up to the number of groups"),
        ((["a", "b", "c"],), {"counts": (0, 1, 2)}, "at least one train"),
        ((["a", "b", "c"],), {"strata": {"a": "x"}}, "no stratum"),
    ],
)
def test_group_partition_errors(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        group_partition(*args, **kwargs)


def test_group_partition_rejects_overlap():
    with pytest.raises(ValueError, match="both train and test"):
        GroupPartition(("a", "b"), (), ("b",))
    with pytest.raises(ValueError, match="at least one train group"):
        GroupPartition((), ("a",), ("b",))


def test_partition_indices():
    p = GroupPartition(("a",), ("b",), ("c",))
    idx = partition_indices(["a", "c", "b", "a"], p)
    assert {k: v.tolist() for k, v in idx.items()} == {"train": [0, 3], "val": [2], "test": [1]}
    assert idx["train"].dtype == np.int64
    with pytest.raises(DataError, match="not in the partition"):
        partition_indices(["a", "z"], p)
    with pytest.raises(DataError, match="has no group"):
        partition_indices(["a", None], p)


# ------------------------------------------------------------------ open-set subsets
def _toy(rng, n=400):
    classes = list("abcdef")
    labels = [classes[i] for i in rng.integers(0, 6, n)]
    groups = [f"s{i}" for i in rng.integers(0, 10, n)]
    return classes, labels, groups


def test_open_set_subsets_removes_unknown_from_train_and_val(rng):
    classes, labels, groups = _toy(rng)
    partition = group_partition(groups, seed=0)
    for split in known_unknown_splits(classes, 3, n_splits=4, seed=0):
        out = open_set_subsets(labels, groups, split, partition)
        y = out["labels"]
        assert y.dtype == np.int64 and y.shape == (len(labels),)
        # known classes 0..K-1 in known_classes order, unknown -> -1
        for i, lab in enumerate(labels):
            expected = split.known_classes.index(lab) if lab in split.known_classes else UNKNOWN
            assert y[i] == expected
        assert (y[out["train"]] >= 0).all() and (y[out["val"]] >= 0).all()
        assert (y[out["test"]] == UNKNOWN).any() and (y[out["test"]] >= 0).any()
        # group disjointness between parts
        g = np.asarray(groups)
        parts = [set(g[out[p]]) for p in ("train", "val", "test")]
        assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
        assert parts[2] <= set(partition.test_groups)
        # every test-group sample is in test; every known train/val sample is kept
        assert len(out["test"]) == sum(grp in partition.test_groups for grp in groups)
        n_train_known = sum(
            grp in partition.train_groups and lab in split.known_classes
            for grp, lab in zip(groups, labels, strict=True)
        )
        assert len(out["train"]) == n_train_known


def test_open_set_subsets_errors():
    split = OpenSetSplit(("a", "b"), ("c",))
    p = GroupPartition(("g1",), ("g2",), ("g3",))
    with pytest.raises(DataError, match=r"known class\(es\) \['b'\] have no training sample"):
        open_set_subsets(["a", "b", "c"], ["g1", "g2", "g3"], split, p)
    with pytest.raises(DataError, match="not one of"):
        open_set_subsets(["a", "z"], ["g1", "g1"], split, p)
    with pytest.raises(DataError, match="no label"):
        open_set_subsets(["a", None], ["g1", "g1"], split, p)
    with pytest.raises(DataError, match="2 labels but 1 groups"):
        open_set_subsets(["a", "b"], ["g1"], split, p)


# ------------------------------------------------------------------ protocol files
def test_protocol_round_trip(tmp_path):
    proto = make_protocol("toy", list("abcde"), [f"s{i}" for i in range(6)], [3, 2], n_splits=3, seed=2, note="n")
    path = save_protocol(
        tmp_path / "toy.json", proto.dataset, proto.classes, proto.partition, proto.levels, proto.seed, note="n"
    )
    loaded = load_protocol(path)
    assert loaded == proto
    assert json.loads(path.read_text())["schema_version"] == 1
    assert list(loaded.levels) == ["O(3:2)", "O(2:3)"]
    assert loaded.splits("O(3:2)") == proto.levels["O(3:2)"]
    assert len(loaded.splits()) == 6
    with pytest.raises(ConfigError, match="no level"):
        loaded.splits("O(9:9)")


def test_make_protocol_checks_groups_against_partition():
    part = GroupPartition(("a",), ("b",), ("c",))
    with pytest.raises(ValueError, match="not in the given partition"):
        make_protocol("x", list("abc"), ["a", "d"], [2], n_splits=1, partition=part)
    with pytest.raises(ValueError, match="repeated K"):
        make_protocol("x", list("abcd"), None, [2, 2], n_splits=1, partition=part)


def test_load_protocol_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown protocol 'nope'; choose from"):
        load_protocol("nope")
    with pytest.raises(DataError, match="not found"):
        load_protocol(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_protocol(bad)
    proto = make_protocol("toy", list("abc"), ["a", "b", "c"], [2], n_splits=1)
    data = proto.to_dict()
    bad.write_text(json.dumps({**data, "schema_version": 99}))
    with pytest.raises(DataError, match="schema_version 99"):
        load_protocol(bad)
    # a split whose known classes do not match its level label
    data["levels"]["O(2:1)"]["splits"][0]["known_classes"] = ["a"]
    data["levels"]["O(2:1)"]["splits"][0]["unknown_classes"] = ["b", "c"]
    bad.write_text(json.dumps(data))
    with pytest.raises(DataError, match="is O\\(1:2\\)"):
        load_protocol(bad)


EXPECTED = {
    "ravdess": (RAVDESS_CLASSES, ["O(6:2)", "O(4:4)", "O(2:6)"]),
    "emodb": (EMODB_CLASSES, ["O(5:2)", "O(4:3)", "O(3:4)", "O(2:5)"]),
    "meld": (MELD_CLASSES, ["O(5:2)", "O(4:3)", "O(3:4)", "O(2:5)"]),
    "ravdess-speech": (RAVDESS_CLASSES, ["O(6:2)", "O(4:4)", "O(2:6)"]),
    "cross-speech": (("anger", "disgust", "fear", "happiness", "neutral", "sadness"),
                     ["O(5:1)", "O(4:2)", "O(3:3)", "O(2:4)"]),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shipped_protocol_is_consistent(name):
    assert name in available_protocols()
    proto = load_protocol(name)
    classes, levels = EXPECTED[name]
    assert proto.dataset == name and proto.version >= 1 and proto.seed == 0
    assert proto.classes == classes
    assert list(proto.levels) == levels
    assert "val only" in proto.note
    for label, splits in proto.levels.items():
        assert len(splits) == 4
        assert len({frozenset(s.known_classes) for s in splits}) == 4
        for s in splits:
            assert s.label == label and set(s.classes) == set(classes)
            assert list(s.known_classes) == [c for c in classes if c in s.known_classes]
    p = proto.partition
    assert not (set(p.train_groups) & set(p.val_groups) | set(p.train_groups) & set(p.test_groups))
    assert p.val_groups


def test_shipped_partitions():
    rav = load_protocol("ravdess").partition
    assert rav.train_groups == tuple(f"{a:02d}" for a in range(1, 17))
    assert rav.val_groups == ("17", "18", "19", "20") and rav.test_groups == ("21", "22", "23", "24")
    emo = load_protocol("emodb").partition
    assert sorted(emo.groups) == sorted(EMODB_SPEAKER_GENDER)
    for part in (emo.val_groups, emo.test_groups):
        assert sorted(EMODB_SPEAKER_GENDER[s] for s in part) == ["female", "male"]
    # the frozen EmoDB partition is what its note says it was drawn with
    g = EMODB_SPEAKER_GENDER
    assert emo == group_partition(g, counts=(3, 1, 1), strata=g, seed=0)
    assert load_protocol("meld").partition == GroupPartition(("train",), ("dev",), ("test",))


def test_ravdess_speech_protocol_is_the_ravdess_protocol():
    """The speech clips are the AU clips: same partition, same known/unknown splits."""
    speech, features = load_protocol("ravdess-speech"), load_protocol("ravdess")
    assert speech.partition == features.partition and speech.levels == features.levels
    assert speech.classes == features.classes and speech.dataset == "ravdess-speech"


def test_cross_speech_protocol_keeps_each_corpus_partition():
    cross = load_protocol("cross-speech")
    assert cross.version == 1 and cross.seed == 0
    for corpus in ("emodb", "ravdess-speech"):
        own = load_protocol(corpus).partition
        for part in ("train", "val", "test"):
            mine = [g for g in getattr(cross.partition, f"{part}_groups") if g.startswith(f"{corpus}/")]
            assert mine == [f"{corpus}/{g}" for g in getattr(own, f"{part}_groups")], (corpus, part)
    assert len(cross.partition.groups) == 10 + 24


def test_regenerating_protocols_gives_the_committed_files(tmp_path):
    module = _make_splits_module()
    assert module.main(["--out", str(tmp_path)]) == 0
    shipped = REPO_ROOT / "src" / "openmer" / "splits"
    for name in EXPECTED:
        assert (tmp_path / f"{name}.json").read_bytes() == (shipped / f"{name}.json").read_bytes(), name
    assert module.main(["--check"]) == 0


def test_protocol_is_frozen_dataclass():
    proto = load_protocol("meld")
    assert isinstance(proto, Protocol)
    with pytest.raises(AttributeError):
        proto.seed = 1  # type: ignore[misc]


def test_a_setting_is_built_from_its_declaration_not_its_name():
    """Issue 23 item 4: what a setting is (open universe, seeded group split or official parts) is
    declared on its rule; any name works."""
    from openmer.protocol import TRAINVAL, SettingRule, setting_protocol

    labels = ["a", "b", "c", "x_y", "a", "b", "c", "z"] * 3
    groups = [f"g{i}" for i in range(len(labels))]
    rule = SettingRule("any-name", ("a", "b", "c"), ((3, 2),), known=("a", "b", "c"), open_universe=True,
                       group_split=(0.6, 0.2, 0.2))
    proto = setting_protocol(rule, labels, groups, seed=0)
    [(level, [split])] = proto.levels.items()
    assert level == "O(3:2)" and split.unknown_classes == ("x_y", "z")  # the data's other labels are unknown
    part = proto.partition
    assert set(part.train_groups) | set(part.val_groups) | set(part.test_groups) == set(groups)
    assert part.val_groups and part.test_groups  # a seeded group split, no official parts needed
    assert setting_protocol(rule, labels, groups, seed=0).partition == part  # seeded

    closed = SettingRule("other-name", ("a", "b", "c"), ((2, 1),))
    with pytest.raises(DataError, match="not classes of setting other-name"):
        setting_protocol(closed, labels, groups)
    three = [lab for lab in labels if lab in "abc"]
    with pytest.raises(ConfigError, match="official parts"):
        setting_protocol(closed, three, groups[: len(three)])
    parts = {g: ("test" if i % 4 == 0 else TRAINVAL) for i, g in enumerate(groups[: len(three)])}
    proto = setting_protocol(closed, three, groups[: len(three)], parts=parts, n_splits=2)
    assert list(proto.levels) == ["O(2:1)"] and len(proto.levels["O(2:1)"]) == 2
    assert proto.partition.val_groups and not set(proto.partition.val_groups) & set(proto.partition.test_groups)
