"""Open-set evaluation protocol: openness, known/unknown class splits, group-aware partitions.

An open-set benchmark on a dataset with ``C`` emotion classes picks ``K`` *known* classes (trained
on) and treats the other ``U = C - K`` as *unknown* (seen only at test time). Several random
known/unknown splits are drawn per openness level ``O(K:U)`` and results are averaged over them
(HCEP Sec. 4.1.2). Samples are divided into train / val / test by *group* (speaker, actor or the
dataset's own split files), so that no speaker appears in two parts.

Rules this module enforces:

* Unknown classes are **removed** from train and val; the test part holds known *and* unknown
  classes (:func:`open_set_subsets`).
* Known classes get labels ``0..K-1`` in the order of :attr:`OpenSetSplit.known_classes`; unknown
  samples get :data:`openmer.UNKNOWN` (``-1``).
* Model selection (checkpoint choice, early stopping, hyper-parameters) uses the **val** part only,
  never the test part. The test part is read once, after training.

The protocols used by the benchmarks are small versioned JSON files shipped with the package in
``openmer/splits/<dataset>.json`` (written by ``scripts/make_splits.py``); read them with
:func:`load_protocol`. The JSON file is the reference: results cite ``dataset``, ``version`` and a
split's level and index.

Source: openness as in Neal et al., "Open Set Learning with Counterfactual Images", ECCV 2018, in
the class-count form used by Liu et al., HCEP (Information Fusion 2026), Sec. 4.1.2:
``openness = 1 - sqrt(K / (K + U))``.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from openmer import UNKNOWN
from openmer.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

#: version of the protocol JSON layout written by :func:`save_protocol`
SCHEMA_VERSION = 1
PARTS = ("train", "val", "test")
# Enumerate every K-subset when there are at most this many; sample with rejection above.
_ENUMERATE_LIMIT = 100_000


# ---------------------------------------------------------------------------------- openness
def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def openness(n_known: int, n_unknown: int) -> float:
    """Openness of a test with ``K`` known and ``U`` unknown classes.

    Args:
        n_known: number of known (training) classes ``K >= 1``.
        n_unknown: number of unknown classes ``U >= 0`` that appear only at test time.

    Returns:
        ``1 - sqrt(K / (K + U))`` in ``[0, 1)``; 0 for a closed-set test.

    Raises:
        ValueError: if an argument is not an int or out of range.

    Examples:
        >>> round(openness(6, 2), 4)
        0.134
        >>> round(openness(2, 8), 2)
        0.55

    Source: Neal et al. (ECCV 2018); HCEP Sec. 4.1.2.
    """
    k = _check_int("n_known", n_known, 1)
    u = _check_int("n_unknown", n_unknown, 0)
    return 1.0 - math.sqrt(k / (k + u))


def openness_label(n_known: int, n_unknown: int) -> str:
    """Display name of an openness level, e.g. ``"O(6:2)"``.

    Raises:
        ValueError: as :func:`openness`.
    """
    k = _check_int("n_known", n_known, 1)
    u = _check_int("n_unknown", n_unknown, 0)
    return f"O({k}:{u})"


# ---------------------------------------------------------------------------------- splits
@dataclass(frozen=True)
class OpenSetSplit:
    """One known/unknown division of a dataset's classes.

    Attributes:
        known_classes: the ``K`` known classes; position = class index ``0..K-1``.
        unknown_classes: the ``U`` unknown classes (test only).
        seed: seed of the generator that drew the split.
        index: position of the split within its openness level (0-based).
    """

    known_classes: tuple[str, ...]
    unknown_classes: tuple[str, ...]
    seed: int = 0
    index: int = 0

    def __post_init__(self) -> None:
        known = tuple(str(c) for c in self.known_classes)
        unknown = tuple(str(c) for c in self.unknown_classes)
        object.__setattr__(self, "known_classes", known)
        object.__setattr__(self, "unknown_classes", unknown)
        if not known:
            raise ValueError("an open-set split needs at least one known class")
        if len(set(known)) != len(known) or len(set(unknown)) != len(unknown):
            raise ValueError(f"duplicate class names in split {known} / {unknown}")
        both = set(known) & set(unknown)
        if both:
            raise ValueError(f"classes {sorted(both)} are both known and unknown")

    @property
    def n_known(self) -> int:
        return len(self.known_classes)

    @property
    def n_unknown(self) -> int:
        return len(self.unknown_classes)

    @property
    def classes(self) -> tuple[str, ...]:
        """Known then unknown classes."""
        return self.known_classes + self.unknown_classes

    @property
    def openness(self) -> float:
        """``1 - sqrt(K / (K + U))``, see :func:`openness`."""
        return openness(self.n_known, self.n_unknown)

    @property
    def label(self) -> str:
        """Openness level, e.g. ``"O(6:2)"``."""
        return openness_label(self.n_known, self.n_unknown)

    def encode(self, labels: Iterable[str]) -> np.ndarray:
        """Integer labels: known classes -> ``0..K-1``, unknown classes -> :data:`openmer.UNKNOWN`.

        Args:
            labels: class names, one per sample.

        Returns:
            (N,) int64.

        Raises:
            ValueError: a label that is neither known nor unknown in this split.
        """
        index = {c: i for i, c in enumerate(self.known_classes)}
        index.update(dict.fromkeys(self.unknown_classes, UNKNOWN))
        out = []
        for n, lab in enumerate(labels):
            try:
                out.append(index[lab])
            except KeyError:
                raise ValueError(
                    f"label {lab!r} of sample {n} is not one of the split's classes {sorted(index)}"
                ) from None
        return np.asarray(out, dtype=np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "seed": self.seed,
            "known_classes": list(self.known_classes),
            "unknown_classes": list(self.unknown_classes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OpenSetSplit:
        """Inverse of :meth:`to_dict`; extra keys are an error.

        Raises:
            ValueError: missing or unexpected keys, or an invalid split.
        """
        keys = {"index", "seed", "known_classes", "unknown_classes"}
        if set(data) != keys:
            raise ValueError(f"an OpenSetSplit needs exactly the keys {sorted(keys)}, got {sorted(data)}")
        return cls(
            known_classes=tuple(data["known_classes"]),
            unknown_classes=tuple(data["unknown_classes"]),
            seed=_check_int("seed", data["seed"], 0),
            index=_check_int("index", data["index"], 0),
        )


def _check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    if isinstance(classes, str):
        raise ValueError("classes must be a sequence of class names, not one string")
    out = tuple(str(c) for c in classes)
    if len(set(out)) != len(out):
        raise ValueError(f"duplicate class names in {list(out)}")
    return out


def known_unknown_splits(
    classes: Sequence[str], n_known: int, n_splits: int = 4, seed: int = 0
) -> list[OpenSetSplit]:
    """Draw ``n_splits`` distinct known/unknown divisions of ``classes`` with ``K = n_known``.

    Two splits are distinct when their *sets* of known classes differ. Known (and unknown) classes
    are listed in the order of ``classes``. The draw is reproducible: the same arguments give the
    same splits (``numpy.random.default_rng(seed)``; when ``comb(C, K) <= 100000`` all K-subsets are
    enumerated in lexicographic order and ``n_splits`` of them are chosen without replacement).

    Args:
        classes: the dataset's ``C`` classes, distinct.
        n_known: ``K``, with ``1 <= K <= C - 1`` (at least one unknown class).
        n_splits: how many splits to draw.
        seed: seed of the generator; recorded in every split.

    Returns:
        ``n_splits`` :class:`OpenSetSplit`, ``index`` 0..n_splits-1, in the order drawn.

    Raises:
        ValueError: duplicate classes, ``n_known`` out of range, ``n_splits < 1``, or fewer than
            ``n_splits`` distinct divisions exist (``comb(C, K) < n_splits``).
    """
    classes = _check_classes(classes)
    c = len(classes)
    k = _check_int("n_known", n_known, 1)
    n = _check_int("n_splits", n_splits, 1)
    seed = _check_int("seed", seed, 0)
    if k > c - 1:
        raise ValueError(f"n_known must be between 1 and {c - 1} for {c} classes (one or more unknown), got {k}")
    total = math.comb(c, k)
    if n > total:
        raise ValueError(
            f"only comb({c}, {k}) = {total} distinct known/unknown splits exist, but {n} were asked for"
        )
    rng = np.random.default_rng(seed)
    if total <= _ENUMERATE_LIMIT:
        combos = list(itertools.combinations(range(c), k))
        chosen = [combos[i] for i in rng.choice(total, size=n, replace=False)]
    else:
        seen: set[tuple[int, ...]] = set()
        chosen = []
        while len(chosen) < n:
            pick = tuple(sorted(int(i) for i in rng.choice(c, size=k, replace=False)))
            if pick not in seen:
                seen.add(pick)
                chosen.append(pick)
    splits = []
    for index, pick in enumerate(chosen):
        known = set(pick)
        splits.append(
            OpenSetSplit(
                known_classes=tuple(classes[i] for i in range(c) if i in known),
                unknown_classes=tuple(classes[i] for i in range(c) if i not in known),
                seed=seed,
                index=index,
            )
        )
    return splits


# ---------------------------------------------------------------------------------- partitions
@dataclass(frozen=True)
class GroupPartition:
    """Speaker/actor-independent division of groups into train, val and test.

    Every group is in exactly one part. ``train_groups`` and ``test_groups`` are non-empty;
    ``val_groups`` may be empty (then there is no model selection data).
    """

    train_groups: tuple[str, ...]
    val_groups: tuple[str, ...]
    test_groups: tuple[str, ...]

    def __post_init__(self) -> None:
        parts = {}
        for part in PARTS:
            value = getattr(self, f"{part}_groups")
            if isinstance(value, str):
                raise ValueError(f"{part}_groups must be a sequence of group names, not one string")
            value = tuple(str(g) for g in value)
            object.__setattr__(self, f"{part}_groups", value)
            parts[part] = value
        if not parts["train"] or not parts["test"]:
            raise ValueError("a GroupPartition needs at least one train group and one test group")
        seen: dict[str, str] = {}
        for part, groups in parts.items():
            for g in groups:
                if g in seen:
                    raise ValueError(f"group {g!r} is in both {seen[g]} and {part}")
                seen[g] = part

    @property
    def groups(self) -> tuple[str, ...]:
        """All groups: train, then val, then test."""
        return self.train_groups + self.val_groups + self.test_groups

    def part_of(self, group: str) -> str:
        """``"train"``, ``"val"`` or ``"test"``.

        Raises:
            KeyError: the group is in no part.
        """
        for part in PARTS:
            if group in getattr(self, f"{part}_groups"):
                return part
        raise KeyError(group)

    def to_dict(self) -> dict[str, list[str]]:
        return {f"{p}_groups": list(getattr(self, f"{p}_groups")) for p in PARTS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroupPartition:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: missing or unexpected keys, or overlapping parts.
        """
        keys = {f"{p}_groups" for p in PARTS}
        if set(data) != keys:
            raise ValueError(f"a GroupPartition needs exactly the keys {sorted(keys)}, got {sorted(data)}")
        return cls(**{k: tuple(data[k]) for k in keys})


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def _part_sizes(n: int, fractions: Sequence[float] | None, counts: Sequence[int] | None) -> tuple[int, int, int]:
    if counts is not None:
        if len(counts) != 3:
            raise ValueError(f"counts must be (n_train, n_val, n_test), got {counts!r}")
        sizes = tuple(_check_int(f"counts[{i}]", c, 0) for i, c in enumerate(counts))
        if sum(sizes) != n:
            raise ValueError(f"counts {sizes} must add up to the number of groups {n}")
        if sizes[0] < 1 or sizes[2] < 1:
            raise ValueError(f"counts {sizes} need at least one train and one test group")
        return sizes  # type: ignore[return-value]
    assert fractions is not None
    if len(fractions) != 3 or any(not (f >= 0) for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be three non-negative numbers adding up to 1, got {fractions!r}")
    if fractions[0] == 0 or fractions[2] == 0:
        raise ValueError(f"fractions {fractions!r} need a non-zero train and test share")
    needed = 2 + (fractions[1] > 0)
    if n < needed:
        raise ValueError(f"{n} group(s) cannot be split into {needed} non-empty parts")
    n_val = _round_half_up(fractions[1] * n)
    n_test = _round_half_up(fractions[2] * n)
    if fractions[1] > 0:
        n_val = max(n_val, 1)
    n_test = max(n_test, 1)
    # give back to train if it was starved
    while n - n_val - n_test < 1:
        if n_val >= n_test and n_val > (1 if fractions[1] > 0 else 0):
            n_val -= 1
        else:
            n_test -= 1
    return n - n_val - n_test, n_val, n_test


def group_partition(
    groups: Iterable[str],
    fractions: Sequence[float] = (0.6, 0.2, 0.2),
    *,
    counts: Sequence[int] | None = None,
    strata: Mapping[str, str] | None = None,
    seed: int = 0,
) -> GroupPartition:
    """Divide groups (speakers, actors) at random into train / val / test.

    The distinct groups are sorted, shuffled with ``numpy.random.default_rng(seed)`` and cut into
    three parts, so the result depends only on the *set* of groups and the seed. Each part's groups
    are listed sorted.

    Args:
        groups: group names; repeats are fine (e.g. one entry per sample).
        fractions: (train, val, test) shares of the groups, rounded half up; train and test get at
            least one group, val at least one when its share is non-zero.
        counts: (n_train, n_val, n_test) group counts instead of ``fractions``.
        strata: optional group -> stratum (e.g. speaker -> gender). Each stratum is divided on its
            own with ``fractions``/``counts`` (counts then apply *per stratum*), so every part gets
            the same mix of strata.
        seed: seed of the shuffle.

    Returns:
        The :class:`GroupPartition`.

    Raises:
        ValueError: empty or too few groups, bad fractions/counts, a group without a stratum.
    """
    distinct = sorted({str(g) for g in groups})
    if not distinct:
        raise ValueError("no groups to partition")
    rng = np.random.default_rng(_check_int("seed", seed, 0))
    if strata is None:
        blocks = {"": distinct}
    else:
        missing = [g for g in distinct if g not in strata]
        if missing:
            raise ValueError(f"groups {missing[:5]} have no stratum")
        blocks = {}
        for g in distinct:
            blocks.setdefault(str(strata[g]), []).append(g)
    parts: dict[str, list[str]] = {p: [] for p in PARTS}
    for stratum in sorted(blocks):
        members = blocks[stratum]
        n_train, n_val, _ = _part_sizes(len(members), fractions, counts)
        order = [members[i] for i in rng.permutation(len(members))]
        parts["train"] += order[:n_train]
        parts["val"] += order[n_train : n_train + n_val]
        parts["test"] += order[n_train + n_val :]
    return GroupPartition(*(tuple(sorted(parts[p])) for p in PARTS))


def partition_indices(groups_per_sample: Sequence[str | None], partition: GroupPartition) -> dict[str, np.ndarray]:
    """Sample indices of each part.

    Args:
        groups_per_sample: the group of every sample, e.g. ``manifest.groups``.
        partition: the division of groups.

    Returns:
        ``{"train": idx, "val": idx, "test": idx}``, each (n,) int64 sorted ascending.

    Raises:
        DataError: a sample has no group or a group that the partition does not contain.
    """
    where = {g: p for p in PARTS for g in getattr(partition, f"{p}_groups")}
    out: dict[str, list[int]] = {p: [] for p in PARTS}
    unknown: set[str] = set()
    for i, g in enumerate(groups_per_sample):
        if g is None or g == "":
            raise DataError(None, f"sample {i} has no group; a group-aware partition needs one for every sample")
        part = where.get(str(g))
        if part is None:
            unknown.add(str(g))
        else:
            out[part].append(i)
    if unknown:
        raise DataError(
            None, f"group(s) {sorted(unknown)[:10]} are not in the partition (which has {sorted(where)[:10]}...)"
        )
    return {p: np.asarray(v, dtype=np.int64) for p, v in out.items()}


def open_set_subsets(
    labels: Sequence[str | None],
    groups: Sequence[str | None],
    split: OpenSetSplit,
    partition: GroupPartition,
) -> dict[str, np.ndarray]:
    """Train / val / test indices of one open-set experiment, and its integer labels.

    Args:
        labels: class name of every sample (N,).
        groups: group of every sample (N,).
        split: which classes are known (labels ``0..K-1`` in ``split.known_classes`` order).
        partition: which groups are train, val, test.

    Returns:
        ``{"train": idx, "val": idx, "test": idx, "labels": y}``. ``train`` and ``val`` hold only
        samples of known classes (unknown classes are removed); ``test`` holds the known- and
        unknown-class samples of the test groups. ``y`` is (N,) int64 over *all* samples: known
        classes ``0..K-1``, unknown classes :data:`openmer.UNKNOWN`. Index the arrays with the
        indices, e.g. ``y[out["test"]]``. Index arrays are int64, sorted ascending.

    Raises:
        DataError: lengths differ, a label is missing or outside the split's classes, a group is
            missing or outside the partition, or a known class has no training sample.
    """
    if len(labels) != len(groups):
        raise DataError(None, f"{len(labels)} labels but {len(groups)} groups")
    missing = [i for i, lab in enumerate(labels) if lab is None or lab == ""]
    if missing:
        raise DataError(None, f"samples {missing[:5]} have no label; an open-set protocol needs labelled data")
    try:
        y = split.encode(labels)  # type: ignore[arg-type]
    except ValueError as exc:
        raise DataError(None, str(exc)) from None
    parts = partition_indices(groups, partition)
    known = y >= 0
    out = {
        "train": parts["train"][known[parts["train"]]],
        "val": parts["val"][known[parts["val"]]],
        "test": parts["test"],
        "labels": y,
    }
    counts = np.bincount(y[out["train"]], minlength=split.n_known)
    empty = [split.known_classes[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        raise DataError(None, f"known class(es) {empty} have no training sample in split {split.label} #{split.index}")
    if partition.val_groups:
        val_counts = np.bincount(y[out["val"]], minlength=split.n_known)
        no_val = [split.known_classes[i] for i in np.flatnonzero(val_counts == 0)]
        if no_val:
            logger.warning(
                "known class(es) %s have no validation sample in split %s #%d", no_val, split.label, split.index
            )
    return out


# ---------------------------------------------------------------------------------- protocol files
@dataclass(frozen=True)
class Protocol:
    """A dataset's open-set protocol: one group partition and several splits per openness level.

    Attributes:
        dataset: dataset name, e.g. ``"ravdess"``.
        version: version of *this protocol* (bumped whenever its splits change).
        classes: all classes of the dataset, in their canonical order.
        partition: the train / val / test groups.
        levels: openness label (``"O(6:2)"``) -> its splits, in file order.
        seed: the seed the splits were drawn with.
        note: how the partition was made, in words.
    """

    dataset: str
    version: int
    classes: tuple[str, ...]
    partition: GroupPartition
    levels: dict[str, list[OpenSetSplit]] = field(default_factory=dict)
    seed: int = 0
    note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", _check_classes(self.classes))
        universe = set(self.classes)
        for label, splits in self.levels.items():
            seen: set[frozenset[str]] = set()
            for s in splits:
                if s.label != label:
                    raise ValueError(f"split #{s.index} of level {label} is {s.label}")
                if set(s.classes) != universe or len(s.classes) != len(self.classes):
                    raise ValueError(f"split {label} #{s.index} does not divide exactly the classes {self.classes}")
                key = frozenset(s.known_classes)
                if key in seen:
                    raise ValueError(f"level {label} has the same known classes twice ({sorted(key)})")
                seen.add(key)

    def splits(self, level: str | None = None) -> list[OpenSetSplit]:
        """The splits of one level (``"O(6:2)"``), or of all levels in order when ``None``.

        Raises:
            ConfigError: unknown level (the message lists the levels).
        """
        if level is None:
            return [s for splits in self.levels.values() for s in splits]
        if level not in self.levels:
            raise ConfigError(f"protocol {self.dataset!r} has no level {level!r}; choose from {list(self.levels)}")
        return list(self.levels[level])

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "dataset": self.dataset,
            "version": self.version,
            "seed": self.seed,
            "note": self.note,
            "classes": list(self.classes),
            "partition": self.partition.to_dict(),
            "levels": {
                label: {
                    "n_known": splits[0].n_known if splits else None,
                    "n_unknown": splits[0].n_unknown if splits else None,
                    "openness": round(splits[0].openness, 4) if splits else None,
                    "splits": [s.to_dict() for s in splits],
                }
                for label, splits in self.levels.items()
            },
        }

    def to_json(self) -> str:
        """The file contents :func:`write_protocol` writes (lists of names on one line, trailing newline)."""
        return _dumps(self.to_dict()) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Protocol:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: wrong ``schema_version``, missing keys or inconsistent splits.
        """
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {data.get('schema_version')!r} is not supported (expected {SCHEMA_VERSION})"
            )
        try:
            levels = {
                label: [OpenSetSplit.from_dict(s) for s in level["splits"]] for label, level in data["levels"].items()
            }
            return cls(
                dataset=str(data["dataset"]),
                version=_check_int("version", data["version"], 1),
                classes=tuple(data["classes"]),
                partition=GroupPartition.from_dict(data["partition"]),
                levels=levels,
                seed=_check_int("seed", data["seed"], 0),
                note=str(data.get("note", "")),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed protocol: {exc!r}") from exc


def stratified_cap(indices: np.ndarray, labels: np.ndarray, cap: int | None, seed: int) -> np.ndarray:
    """At most ``cap`` of ``indices``, drawn per class in proportion to its share (seeded).

    Args:
        indices: (n,) candidate rows (a trial's training rows).
        labels: (N,) label of every row, indexed by ``indices``.
        cap: the most rows to keep (``None`` or >= n: all of them).
        seed: the draw's seed (a trial's ``seed + split``, the same for every method of the trial).

    Returns:
        The kept rows, sorted.
    """
    if cap is None or len(indices) <= cap:
        return indices
    rng = np.random.default_rng(seed)
    y = labels[indices]
    keep = []
    for c in np.unique(y):
        members = indices[y == c]
        n = max(1, round(cap * len(members) / len(indices)))
        keep.append(rng.choice(members, size=min(n, len(members)), replace=False))
    return np.sort(np.concatenate(keep))


def _dumps(obj: Any, indent: int = 0) -> str:
    """JSON with lists of scalars on one line (readable diffs of the split files)."""
    pad = "  " * indent
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f'{pad}  {json.dumps(k)}: {_dumps(v, indent + 1)}' for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        items = [f"{pad}  {_dumps(v, indent + 1)}" for v in obj]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(obj, ensure_ascii=False)


def save_protocol(
    path: str | Path,
    dataset: str,
    classes: Sequence[str],
    partition: GroupPartition,
    levels: Mapping[str, Sequence[OpenSetSplit]],
    seed: int,
    *,
    note: str = "",
    version: int = 1,
) -> Path:
    """Write a protocol JSON file (validated first; deterministic bytes, UTF-8, trailing newline).

    Raises:
        ValueError: the splits do not match ``classes`` or a level label.
    """
    proto = Protocol(
        dataset=dataset, version=version, classes=tuple(classes), partition=partition,
        levels={k: list(v) for k, v in levels.items()}, seed=seed, note=note,
    )
    return write_protocol(proto, path)


def write_protocol(protocol: Protocol, path: str | Path) -> Path:
    """Write ``protocol`` as JSON to ``path``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(protocol.to_json(), encoding="utf-8")
    return path


def available_protocols() -> list[str]:
    """Names of the protocols shipped in ``openmer/splits/``."""
    folder = resources.files("openmer") / "splits"
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


def load_protocol(name_or_path: str | Path) -> Protocol:
    """Read a protocol by built-in name (``"ravdess"``, ``"emodb"``, ``"meld"``) or from a JSON file.

    Raises:
        ConfigError: not a file and not a built-in name (the message lists the names).
        DataError: the file is not valid JSON or not a valid protocol.
    """
    path = Path(name_or_path)
    if path.is_file():
        text = path.read_text(encoding="utf-8")
    else:
        name = str(name_or_path)
        if name.endswith(".json") or "/" in name or "\\" in name:
            raise DataError(path, "protocol file not found")
        if name not in available_protocols():
            raise ConfigError(f"unknown protocol {name!r}; choose from {available_protocols()} or give a JSON file")
        res = resources.files("openmer") / "splits" / f"{name}.json"
        path = Path(str(res))
        text = res.read_text(encoding="utf-8")
    try:
        return Protocol.from_dict(json.loads(text))
    except json.JSONDecodeError as exc:
        raise DataError(path, f"protocol file is not valid JSON: {exc}") from exc
    except ValueError as exc:
        raise DataError(path, f"invalid protocol file: {exc}") from exc


def make_protocol(
    dataset: str,
    classes: Sequence[str],
    groups: Iterable[str] | None,
    level_sizes: Sequence[int],
    n_splits: int = 4,
    seed: int = 0,
    partition: GroupPartition | None = None,
    *,
    note: str = "",
    version: int = 1,
) -> Protocol:
    """Build a :class:`Protocol`: a group partition plus ``n_splits`` splits per ``K`` in ``level_sizes``.

    Args:
        dataset: dataset name.
        classes: all classes, canonical order (known classes keep this order in every split).
        groups: the dataset's groups (repeats fine); partitioned with :func:`group_partition`
            (default fractions, ``seed``) unless ``partition`` is given, in which case they are only
            checked to lie in it (``None`` skips the check).
        level_sizes: the ``K`` of each openness level, e.g. ``[6, 4, 2]``.
        n_splits: splits per level.
        seed: seed of the partition and of every level's splits.
        partition: a fixed partition (e.g. the dataset's official speaker division).
        note: how the partition was made, stored in the file.
        version: protocol version.

    Raises:
        ValueError: as :func:`known_unknown_splits` / :func:`group_partition`, a repeated ``K``,
            or (with ``partition``) groups outside it.
    """
    classes = _check_classes(classes)
    if partition is None:
        if groups is None:
            raise ValueError("give the groups to partition or a fixed partition")
        partition = group_partition(groups, seed=seed)
    elif groups is not None:
        outside = sorted({str(g) for g in groups} - set(partition.groups))
        if outside:
            raise ValueError(f"groups {outside[:10]} are not in the given partition")
    if len(set(level_sizes)) != len(level_sizes):
        raise ValueError(f"repeated K in level_sizes {list(level_sizes)}")
    levels = {}
    for k in level_sizes:
        splits = known_unknown_splits(classes, k, n_splits=n_splits, seed=seed)
        levels[splits[0].label] = splits
    return Protocol(
        dataset=dataset, version=version, classes=classes, partition=partition, levels=levels, seed=seed, note=note
    )


def select_levels(levels: Sequence[str] | None, protocol: Protocol) -> tuple[str, ...]:
    """The openness levels to run: ``levels`` (e.g. ``("O(5:2)",)``), or every level of ``protocol``.

    Raises:
        ConfigError: a level that ``protocol`` does not have (the message lists those it has).
    """
    if not levels:
        return tuple(protocol.levels)
    missing = [lv for lv in levels if lv not in protocol.levels]
    if missing:
        raise ConfigError(f"openness level(s) {', '.join(missing)} not in the {protocol.dataset} protocol; "
                          f"it has {', '.join(protocol.levels)}")
    return tuple(levels)


# ------------------------------------------------------------------ settings built on their data
#: official part marker: train groups of which a seeded share becomes validation
TRAINVAL = "trainval"


def stratified_group_split(groups: Sequence[str], strata: Sequence[str], val: float, test: float,
                           seed: int) -> dict[str, list[str]]:
    """Seeded split of groups into train / val / test, per stratum.

    Args:
        groups: the groups (a group may repeat; its first stratum counts).
        strata: (len(groups),) the stratum of each entry (e.g. its known class).
        val, test: the shares of each stratum's groups for val and test.
        seed: the draw's seed.

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``: a stratum of 2+ groups gives 1+ to each
        non-zero share and keeps 1+ for train.
    """
    rng = np.random.default_rng(seed)
    by: dict[str, list[str]] = {}
    for g, s in sorted(set(zip(groups, strata, strict=True))):
        by.setdefault(s, []).append(g)
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for stratum in sorted(by):
        members = [by[stratum][i] for i in rng.permutation(len(by[stratum]))]
        n = len(members)
        n_test = max(round(test * n), 1 if test > 0 and n >= 2 else 0)
        n_val = max(round(val * n), 1 if val > 0 and n - n_test >= 2 else 0)
        while n_test + n_val > n - 1 and (n_test or n_val):  # keep one for train
            if n_val >= n_test and n_val:
                n_val -= 1
            else:
                n_test -= 1
        out["test"] += members[:n_test]
        out["val"] += members[n_test:n_test + n_val]
        out["train"] += members[n_test + n_val:]
    return out


@dataclass(frozen=True)
class SettingRule:
    """What an open-set setting is, declared: enough to build its protocol on its data
    (:func:`setting_protocol`).

    Attributes:
        name: the setting's name (the protocol's ``dataset``).
        classes: the class universe known before reading the data (for an ``open_universe``
            setting: its known classes).
        level_sizes: the paper's ``(K, U)`` per openness level.
        known: the fixed known classes, or ``None`` when each split draws them.
        open_universe: the unknown classes are every label the data holds beyond ``classes``
            (compound labels, open vocabulary); otherwise a label outside ``classes`` is an error.
        group_split: ``(train, val, test)`` shares of a seeded group split stratified by known
            class (a dataset without an official split); ``None``: the datasets' official parts.
        val_fraction: share of an official ``trainval`` part's groups held out for validation.
        parts_note: how the official parts are read (the protocol's note).
    """

    name: str
    classes: tuple[str, ...]
    level_sizes: tuple[tuple[int, int], ...]
    known: tuple[str, ...] | None = None
    open_universe: bool = False
    group_split: tuple[float, float, float] | None = None
    val_fraction: float = 0.1
    parts_note: str = "official parts"

    @property
    def fixed_known(self) -> bool:
        """True when the known classes are fixed (one split per level, seed-repeated training)."""
        return self.known is not None

    @property
    def levels(self) -> list[str]:
        """The paper's level labels, e.g. ``["O(8:2)", ...]``."""
        return [openness_label(k, u) for k, u in self.level_sizes]


def setting_protocol(rule: SettingRule, labels: Sequence[str | None], groups: Sequence[str], *,
                     parts: Mapping[str, str] | None = None, n_splits: int = 4, seed: int = 0,
                     source: Any = None) -> Protocol:
    """The open-set protocol of a setting on its data.

    Args:
        rule: the setting's declaration.
        labels, groups: (N,) each clip's label and group.
        parts: group -> ``"train"``, ``"val"``, ``"test"`` or :data:`TRAINVAL` (the datasets' own
            division); required unless ``rule.group_split``.
        n_splits: known/unknown splits per level (settings with drawn known classes).
        seed: seed of the splits and of the seeded partitions.
        source: the data's file, named in errors.

    Returns:
        The :class:`Protocol`. A fixed-known setting has one level (its ``U`` counted in the data)
        with one split.

    Raises:
        ConfigError: ``parts`` missing where needed.
        DataError: a label outside the setting's classes, a group without a part, or a known class
            without clips.
    """
    names = [lab or "" for lab in labels]
    present = sorted(set(names))
    classes = rule.classes
    if rule.open_universe:
        classes = classes + tuple(c for c in present if c not in classes)
    else:
        outside = [c for c in present if c not in classes]
        if outside:
            raise DataError(source, f"labels {outside[:10]} are not classes of setting {rule.name} {list(classes)}")
    known = set(rule.known or classes)
    absent = [c for c in rule.classes if c not in present]
    if absent:
        raise DataError(source, f"setting {rule.name}: class(es) {absent} have no clip")

    strata: dict[str, str] = {}  # group -> its (first) known label, or "(unknown)"
    for g, lab in zip(groups, names, strict=True):
        strata.setdefault(g, lab if lab in known else "(unknown)")
    if rule.group_split is not None:
        _, val, test = rule.group_split
        train_val_test = stratified_group_split(list(strata), list(strata.values()), val, test, seed)
        note = f"seeded group split {rule.group_split} stratified by known class (seed {seed})"
    else:
        if parts is None:
            raise ConfigError(f"setting {rule.name} needs the datasets' official parts: use load_setting(...).parts")
        missing = sorted({g for g in groups if g not in parts})
        if missing:
            raise DataError(source, f"group(s) {missing[:5]} have no official part")
        train_val_test = {p: sorted(g for g in set(groups) if parts[g] == p) for p in ("train", "val", "test")}
        pool = sorted(g for g in set(groups) if parts[g] == TRAINVAL)
        if pool:
            held = stratified_group_split(pool, [strata[g] for g in pool], rule.val_fraction, 0.0, seed)
            train_val_test["train"] += held["train"]
            train_val_test["val"] += held["val"]
        note = f"{rule.parts_note}, seed {seed}"
    partition = GroupPartition(*(tuple(sorted(train_val_test[p])) for p in ("train", "val", "test")))

    levels: dict[str, list[OpenSetSplit]] = {}
    if rule.known is not None:
        split = OpenSetSplit(rule.known, tuple(c for c in classes if c not in known), seed=seed, index=0)
        if split.label != rule.levels[0]:
            logger.info("setting %s: the data give %s (paper: %s)", rule.name, split.label, rule.levels[0])
        levels[split.label] = [split]
    else:
        for k, u in rule.level_sizes:
            if k + u != len(classes):
                raise DataError(None, f"level O({k}:{u}) does not divide the {len(classes)} classes of {rule.name}")
            splits = known_unknown_splits(classes, k, n_splits=n_splits, seed=seed)
            levels[splits[0].label] = splits
    return Protocol(dataset=rule.name, version=1, classes=classes, partition=partition, levels=levels,
                    seed=seed, note=note)


# ------------------------------------------------------------------ one corpus against another
def corpus_of(group: str) -> str:
    """The corpus of a group named ``"<corpus>/<speaker>"``."""
    return group.split("/", 1)[0]


def direction_protocol(protocol: Protocol, source: str, target: str, levels: Sequence[str] | None, n_splits: int,
                       *, classes: Mapping[str, Sequence[str]]) -> Protocol:
    """The protocol of one direction of a cross-corpus protocol (groups ``"<corpus>/<speaker>"``).

    Train and val: ``source``'s groups of ``protocol``'s partition. Test: ``source``'s and
    ``target``'s test groups together. The classes are every class of either corpus
    (``classes``: corpus -> its classes, in shared names): each known set of ``levels`` (first
    ``n_splits``) keeps its known classes, and all the others are unknown.

    Raises:
        ConfigError: a level the protocol does not have.
    """
    def groups(part: str, corpus: str) -> tuple[str, ...]:
        return tuple(g for g in getattr(protocol.partition, f"{part}_groups") if corpus_of(g) == corpus)

    partition = GroupPartition(groups("train", source), groups("val", source),
                               groups("test", source) + groups("test", target))
    universe = list(protocol.classes)
    universe += [c for corpus in (source, target) for c in classes[corpus] if c not in universe]
    out: dict[str, list[OpenSetSplit]] = {}
    for level in select_levels(levels, protocol):
        for s in protocol.levels[level][:n_splits]:
            split = OpenSetSplit(s.known_classes, tuple(c for c in universe if c not in s.known_classes),
                                 seed=s.seed, index=s.index)
            out.setdefault(split.label, []).append(split)
    return Protocol(dataset=f"{protocol.dataset}:{source}->{target}", version=protocol.version,
                    classes=tuple(universe), partition=partition, levels=out, seed=protocol.seed, note=protocol.note)


def corpus_test_split(known: Sequence[str], corpus_classes: Sequence[str], index: int, seed: int = 0) -> OpenSetSplit:
    """The known/unknown split of one corpus's test set: ``known``, and every other class of the
    corpus (``corpus_classes``)."""
    return OpenSetSplit(tuple(known), tuple(c for c in corpus_classes if c not in known), seed=seed, index=index)
