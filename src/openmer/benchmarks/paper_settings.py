"""The five O-MER settings of the HCEP paper as named, runnable configurations.

====================  ==========================================  ==============================
name                  classes (known / unknown)                   openness levels (paper values)
====================  ==========================================  ==============================
``mafw``              MAFW's 10 emotions, K drawn per split       O(8:2)=0.11 O(6:4)=0.23
                                                                  O(4:6)=0.37 O(2:8)=0.55
``mosei``             CMU-MOSEI's 6 emotions, K drawn per split   O(5:1)=0.09 O(4:2)=0.18
                                                                  O(3:3)=0.29 O(2:4)=0.42
``mafw-compound``     MAFW's 10 single emotions known, its        O(10:32)=0.51
                      compound labels unknown
``ov-merd``           the six basic emotions known, every other   O(6:236)=0.84
                      OV-MERD label unknown
``cross``             MAFW + CMU-MOSEI: the six shared emotions   O(6:4)=0.23
                      known, MAFW's other four unknown
====================  ==========================================  ==============================

Data and partitions (decided here; the paper's Sec. 4.1 could not be read, see the caveats below):

* ``mafw`` / ``mafw-compound``: the official fold 1 (``set_1``) of the ``single`` / ``compound``
  split files. Test = fold-1 test clips; a seeded, class-stratified 10 % of the fold-1 train clips
  is the validation part (MAFW has no official validation list). Neutral clips are left out (they
  are not among HCEP's 10 classes). ``mafw-compound``: labels with one member are the known
  classes, ``_``-joined combinations the unknown ones.
* ``mosei``: the SDK's standard train / valid / test folds (group = video id).
* ``ov-merd``: the release has no official split: a seeded group split (60/20/20, stratified by
  known class; all unknown-class clips form one stratum). U is the number of distinct unknown
  label names actually present (236 in the paper).
* ``cross``: train and validation from *both* datasets' known-class clips (MAFW fold-1 train
  with its 10 % validation, CMU-MOSEI train / valid); test on both (MAFW fold-1 test + CMU-MOSEI
  test). Only MAFW supplies unknown-class clips (contempt, anxiety, helplessness,
  disappointment). Ids and groups are prefixed ``mafw/`` and ``mosei/``.

Known/unknown splits: ``mafw`` and ``mosei`` draw 4 known sets per level
(:func:`openmer.protocol.known_unknown_splits`, seed 0). ``mafw-compound``, ``ov-merd`` and
``cross`` have a *fixed* known set, hence one split per level; :func:`run_paper_setting` then
repeats training ``n_splits`` times with seeds ``seed + r`` and reports repeat ``r`` as split ``r``.
Unknown classes never reach training or validation (:func:`openmer.protocol.open_set_subsets`).

Caveats: the class lists, the MAFW fold, the OV-MERD split and the ``cross`` design are openmer's
reading, not confirmed from the paper text. The ``table`` numbers are inferred from the reference
file's note ("Tables 2-4"), not confirmed either.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from openmer.benchmarks.media import BASELINE_TRAIN, MediaBenchmarkConfig, run_media_benchmark
from openmer.benchmarks.journal import TrialJournal
from openmer.benchmarks.registry import BenchmarkPlan, register_benchmark
from openmer.benchmarks.runner import BenchmarkResult, Progress
from openmer.data.manifest import Manifest, Sample, concat_manifests
from openmer.datasets.mafw import COMPOUND_SEPARATOR, HCEP_MAFW_CLASSES, load_mafw
from openmer.datasets.mosei import MOSEI_EMOTIONS, load_mosei
from openmer.datasets.ovmerd import OVMERD_KNOWN, load_ovmerd
from openmer.errors import ConfigError, DataError
from openmer.protocol import (
    GroupPartition,
    OpenSetSplit,
    Protocol,
    known_unknown_splits,
    openness,
    openness_label,
)
from openmer.training import TrainConfig

logger = logging.getLogger(__name__)

#: seed of the known/unknown splits and of the seeded partitions (``--seed`` changes training only)
PROTOCOL_SEED = 0
#: share of MAFW's fold-1 train clips held out for validation
MAFW_VAL_FRACTION = 0.1
#: OV-MERD group split (train, val, test)
OVMERD_FRACTIONS = (0.6, 0.2, 0.2)
#: the six emotions shared by MAFW and CMU-MOSEI, in MOSEI's order
SHARED_EMOTIONS = MOSEI_EMOTIONS
#: official part marker: train clips of which a seeded share becomes validation
TRAINVAL = "trainval"


@dataclass(frozen=True)
class PaperSetting:
    """One O-MER setting of the paper.

    Attributes:
        name: the setting's name (``openmer benchmark NAME``).
        dataset_adapter: the :data:`openmer.datasets.ADAPTERS` name(s) it reads, ``+``-joined.
        classes: the class universe known before reading the data. For ``mafw-compound`` and
            ``ov-merd`` these are the known classes; the unknown ones come from the data.
        level_sizes: the paper's ``(K, U)`` per openness level.
        table: the paper table reporting it (not confirmed, see the module docstring).
        description: one line.
        known: the fixed known classes, or ``None`` when each split draws them.
    """

    name: str
    dataset_adapter: str
    classes: tuple[str, ...]
    level_sizes: tuple[tuple[int, int], ...]
    table: str
    description: str
    known: tuple[str, ...] | None = None
    adapters: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "adapters", tuple(self.dataset_adapter.split("+")))

    @property
    def fixed_known(self) -> bool:
        """True when the known classes are fixed (one split per level, seed-repeated training)."""
        return self.known is not None

    @property
    def levels(self) -> list[str]:
        """The paper's level labels, e.g. ``["O(8:2)", ...]``."""
        return [openness_label(k, u) for k, u in self.level_sizes]


_MAFW_OTHER = tuple(c for c in HCEP_MAFW_CLASSES if c not in SHARED_EMOTIONS)

SETTINGS: dict[str, PaperSetting] = {
    s.name: s for s in (
        PaperSetting(
            "mafw", "mafw", HCEP_MAFW_CLASSES, ((8, 2), (6, 4), (4, 6), (2, 8)), "Table 2",
            "MAFW, 10 emotions, official fold 1; 4 known/unknown splits per level",
        ),
        PaperSetting(
            "mosei", "cmu-mosei", MOSEI_EMOTIONS, ((5, 1), (4, 2), (3, 3), (2, 4)), "Table 3",
            "CMU-MOSEI, 6 emotions (argmax rule), standard folds; 4 known/unknown splits per level",
        ),
        PaperSetting(
            "mafw-compound", "mafw", HCEP_MAFW_CLASSES, ((10, 32),), "Table 4",
            "MAFW compound split, fold 1: 10 single emotions known, compound labels unknown",
            known=HCEP_MAFW_CLASSES,
        ),
        PaperSetting(
            "ov-merd", "ov-merd", OVMERD_KNOWN, ((6, 236),), "Table 4",
            "OV-MERD: six basic emotions known, every other open-vocabulary label unknown; seeded group split",
            known=OVMERD_KNOWN,
        ),
        PaperSetting(
            "cross", "mafw+cmu-mosei", SHARED_EMOTIONS + _MAFW_OTHER, ((6, 4),), "Table 4",
            "cross-dataset MAFW + CMU-MOSEI: six shared emotions known, MAFW's other four unknown",
            known=SHARED_EMOTIONS,
        ),
    )
}


def get_setting(name: str) -> PaperSetting:
    """The setting called ``name``.

    Raises:
        ConfigError: unknown name (the message lists the names).
    """
    try:
        return SETTINGS[name]
    except KeyError:
        raise ConfigError(f"unknown paper setting {name!r}; choose one of {list(SETTINGS)}") from None


def openness_table() -> list[dict[str, Any]]:
    """One row per (setting, level): ``setting``, ``level``, ``n_known``, ``n_unknown``, ``openness``
    (rounded to 2 decimals, as the paper prints it) and ``table``."""
    return [
        {"setting": s.name, "level": openness_label(k, u), "n_known": k, "n_unknown": u,
         "openness": round(openness(k, u), 2), "table": s.table}
        for s in SETTINGS.values() for k, u in s.level_sizes
    ]


# ------------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class SettingData:
    """A setting's manifest and the datasets' own division of its groups.

    Attributes:
        manifest: the clips of the setting (labels in the setting's universe).
        parts: group -> ``"train"``, ``"val"``, ``"test"`` or ``"trainval"`` (train clips of
            which a seeded 10 % becomes validation); empty when the dataset has no official split.
    """

    manifest: Manifest
    parts: dict[str, str] = field(default_factory=dict)


def parse_roots(name: str, roots: str | Path | Sequence[str | Path] | Mapping[str, str | Path] | None
                ) -> Path | dict[str, Path]:
    """The dataset folder(s) of a setting from what a user typed.

    A one-dataset setting takes one folder. ``cross`` takes ``{"mafw": DIR, "mosei": DIR}`` or the
    strings ``["mafw=DIR", "mosei=DIR"]`` (what ``--root mafw=DIR --root mosei=DIR`` gives).

    Raises:
        ConfigError: nothing given, or not the form the setting needs (one line, with an example).
    """
    setting = get_setting(name)
    if roots is None or (not isinstance(roots, (str, Path, Mapping)) and len(roots) == 0):
        example = "--root mafw=MAFW_DIR --root mosei=MOSEI_DIR" if name == "cross" else "--root DIR"
        raise ConfigError(f"benchmark {name} needs its dataset folder: {example}")
    if name != "cross":
        if not isinstance(roots, (str, Path)):
            items = list(roots.values()) if isinstance(roots, Mapping) else list(roots)
            if len(items) != 1:
                raise ConfigError(f"benchmark {name} takes one dataset folder, got {len(items)}")
            roots = items[0]
        return Path(roots)
    if isinstance(roots, Mapping):
        found = {str(k): Path(v) for k, v in roots.items()}
    else:
        items = [roots] if isinstance(roots, (str, Path)) else list(roots)
        found = {}
        for item in items:
            key, sep, value = str(item).partition("=")
            if not sep or not value:
                raise ConfigError(f"benchmark cross needs --root mafw=MAFW_DIR --root mosei=MOSEI_DIR, got {item!r}")
            found[key.strip().lower()] = Path(value)
    if set(found) != {"mafw", "mosei"}:
        raise ConfigError(f"benchmark cross needs the folders of mafw and mosei, got {sorted(found)} "
                          f"({setting.dataset_adapter})")
    return found


def load_setting(name: str, root: str | Path | Mapping[str, str | Path] | Sequence[str]) -> SettingData:
    """Read a setting's data from the datasets' native layouts (module docstring).

    Args:
        name: a key of :data:`SETTINGS`.
        root: the dataset folder; for ``cross`` see :func:`parse_roots`.

    Raises:
        ConfigError: unknown name or a bad ``root``.
        DataError: as the adapters (missing files, folds, ...).
    """
    setting = get_setting(name)
    roots = parse_roots(name, root)
    if name in ("mafw", "mafw-compound"):
        return _mafw(Path(roots), compound=name == "mafw-compound")  # type: ignore[arg-type]
    if name == "mosei":
        return _mosei(Path(roots))  # type: ignore[arg-type]
    if name == "ov-merd":
        return SettingData(load_ovmerd(Path(roots)))  # type: ignore[arg-type]
    assert isinstance(roots, dict) and setting.name == "cross"
    data = {"mafw": _mafw(roots["mafw"], compound=False), "mosei": _mosei(roots["mosei"])}
    manifest = concat_manifests({k: d.manifest for k, d in data.items()}, name="cross-mafw-mosei", root=roots["mafw"])
    parts = {f"{prefix}/{g}": p for prefix, d in data.items() for g, p in d.parts.items()}
    return SettingData(manifest, parts)


def _mafw(root: Path, *, compound: bool) -> SettingData:
    label_set = "compound" if compound else "single"
    known = set(HCEP_MAFW_CLASSES)
    samples: list[Sample] = []
    parts: dict[str, str] = {}
    for part, marker in (("train", TRAINVAL), ("test", "test")):
        m = load_mafw(root, label_set=label_set, fold=1, part=part)
        for s in m:
            keep = s.label in known or (compound and COMPOUND_SEPARATOR in (s.label or ""))
            if keep:
                samples.append(s)
                parts[s.group or s.id] = marker
    name = f"mafw-{label_set}-set1"
    return SettingData(Manifest(samples, root=root, name=name), parts)


def _mosei(root: Path) -> SettingData:
    samples: list[Sample] = []
    parts: dict[str, str] = {}
    for split, part in (("train", "train"), ("valid", "val"), ("test", "test")):
        for s in load_mosei(root, split=split):
            g = s.group or s.id
            if parts.setdefault(g, part) != part:
                raise DataError(root, f"CMU-MOSEI video {g!r} is in two standard folds")
            samples.append(s)
    return SettingData(Manifest(samples, root=root, name="cmu-mosei-std-folds"), parts)


# ------------------------------------------------------------------------------------- protocol
def _stratified_split(groups: Sequence[str], strata: Sequence[str], val: float, test: float,
                      seed: int) -> dict[str, list[str]]:
    """Seeded split of groups into train/val/test, per stratum (a stratum of 2+ groups gives 1+ to
    each non-zero share, keeping 1+ for train)."""
    rng = np.random.default_rng(seed)
    by: dict[str, list[str]] = {}
    for g, s in sorted(set(zip(groups, strata))):
        by.setdefault(s, []).append(g)
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for stratum in sorted(by):
        members = [by[stratum][i] for i in rng.permutation(len(by[stratum]))]
        n = len(members)
        n_test = max(int(round(test * n)), 1 if test > 0 and n >= 2 else 0)
        n_val = max(int(round(val * n)), 1 if val > 0 and n - n_test >= 2 else 0)
        while n_test + n_val > n - 1 and (n_test or n_val):  # keep one for train
            if n_val >= n_test and n_val:
                n_val -= 1
            else:
                n_test -= 1
        out["test"] += members[:n_test]
        out["val"] += members[n_test:n_test + n_val]
        out["train"] += members[n_test + n_val:]
    return out


def _stratum_of(groups: Sequence[str], labels: Sequence[str], known: set[str]) -> dict[str, str]:
    """group -> its (first) known label, or ``"(unknown)"``."""
    out: dict[str, str] = {}
    for g, lab in zip(groups, labels):
        out.setdefault(g, lab if lab in known else "(unknown)")
    return out


def setting_protocol(setting: str | PaperSetting, manifest: Manifest, n_splits: int = 4, seed: int = PROTOCOL_SEED,
                     *, parts: Mapping[str, str] | None = None) -> Protocol:
    """The open-set protocol of a setting on its data (module docstring).

    Args:
        setting: a setting or its name.
        manifest: the setting's clips (:func:`load_setting`).
        n_splits: known/unknown splits per level (settings with drawn known classes).
        seed: seed of the splits and of the seeded partitions.
        parts: the datasets' own division (:attr:`SettingData.parts`); required for ``mafw``,
            ``mafw-compound``, ``mosei`` and ``cross``.

    Returns:
        The :class:`Protocol`. A fixed-known setting has one level (its ``U`` counted in the
        data) with one split.

    Raises:
        ConfigError: ``parts`` missing where needed.
        DataError: a label outside the setting's classes, a group without a part, or a known
            class without clips.
    """
    st = setting if isinstance(setting, PaperSetting) else get_setting(setting)
    labels = [s.label or "" for s in manifest]
    groups = [s.group or s.id for s in manifest]
    present = sorted(set(labels))
    if st.name in ("mafw-compound", "ov-merd"):
        classes = st.classes + tuple(c for c in present if c not in st.classes)
    else:
        classes = st.classes
        outside = [c for c in present if c not in classes]
        if outside:
            raise DataError(manifest.source, f"labels {outside[:10]} are not classes of setting {st.name} {list(classes)}")
    known = set(st.known or classes)
    absent = [c for c in st.classes if c not in present]
    if absent:
        raise DataError(manifest.source, f"setting {st.name}: class(es) {absent} have no clip")

    strata = _stratum_of(groups, labels, known)
    if st.name == "ov-merd":
        train_val_test = _stratified_split(list(strata), list(strata.values()), OVMERD_FRACTIONS[1],
                                           OVMERD_FRACTIONS[2], seed)
        note = f"seeded group split {OVMERD_FRACTIONS} stratified by known class (seed {seed})"
    else:
        if parts is None:
            raise ConfigError(f"setting {st.name} needs the datasets' official parts: use load_setting(...).parts")
        missing = sorted({g for g in groups if g not in parts})
        if missing:
            raise DataError(manifest.source, f"group(s) {missing[:5]} have no official part")
        train_val_test = {p: sorted(g for g in set(groups) if parts[g] == p) for p in ("train", "val", "test")}
        pool = sorted(g for g in set(groups) if parts[g] == TRAINVAL)
        if pool:
            held = _stratified_split(pool, [strata[g] for g in pool], MAFW_VAL_FRACTION, 0.0, seed)
            train_val_test["train"] += held["train"]
            train_val_test["val"] += held["val"]
        note = ("official parts (MAFW fold 1 train/test with a seeded, class-stratified "
                f"{MAFW_VAL_FRACTION:.0%} of train as val; CMU-MOSEI standard train/valid/test), seed {seed}")
    partition = GroupPartition(*(tuple(sorted(train_val_test[p])) for p in ("train", "val", "test")))

    levels: dict[str, list[OpenSetSplit]] = {}
    if st.known is not None:
        split = OpenSetSplit(st.known, tuple(c for c in classes if c not in known), seed=seed, index=0)
        nominal = st.levels[0]
        if split.label != nominal:
            logger.info("setting %s: the data give %s (paper: %s)", st.name, split.label, nominal)
        levels[split.label] = [split]
    else:
        for k, u in st.level_sizes:
            if k + u != len(classes):
                raise DataError(None, f"level O({k}:{u}) does not divide the {len(classes)} classes of {st.name}")
            splits = known_unknown_splits(classes, k, n_splits=n_splits, seed=seed)
            levels[splits[0].label] = splits
    return Protocol(dataset=st.name, version=1, classes=classes, partition=partition, levels=levels,
                    seed=seed, note=note)


# ------------------------------------------------------------------------------------- running
def paper_setting_config(name: str, *, profile: str = "paper", quick: bool = False, seed: int = 0
                         ) -> MediaBenchmarkConfig:
    """The benchmark configuration of a setting: HCEP, ARPL and MSP on text + video + audio.

    The full preset is the paper's schedule (HCEP Sec. 4.1.4: 150 epochs, SGD lr 5e-4, momentum
    0.9, batch 32; :class:`openmer.training.TrainConfig` defaults), 4 splits (or seed repeats) per
    level; meant for a GPU. ``quick``: the first level only, 1 split, HCEP 1 epoch (Adam lr 1e-3)
    on at most 64 clips with 1 s CUEP waveforms, baselines 15 epochs: a smoke run.
    """
    st = get_setting(name)
    hcep = (TrainConfig(epochs=1, optimizer="adam", lr=1e-3, batch_size=16, seed=seed) if quick
            else TrainConfig(seed=seed))
    levels = (st.levels[0],) if quick and not st.fixed_known else None
    return MediaBenchmarkConfig(
        dataset=name, profile=profile, modalities=("text", "video", "audio"), hcep_train=hcep, seed=seed,
        levels=levels, n_splits=1 if quick else 4, max_train_per_trial=64 if quick else None,
        hcep_options={"cuep_audio_samples": 16000} if quick else {},
        baseline_train=BASELINE_TRAIN.model_copy(update={"epochs": 15 if quick else 60}),
        preset_note=(
            f"quick preset ({name}): first level, 1 split, HCEP 1 epoch Adam on <= 64 clips, CUEP waveforms 1 s"
            if quick else
            f"paper preset ({name}): HCEP 150 epochs SGD lr 5e-4 batch 32, "
            + ("4 seed repeats of the fixed known set" if st.fixed_known else "4 known/unknown splits per level")
            + "; baselines: heads on cached unprompted features, Adam lr 1e-3, 60 epochs"),
    )


def run_paper_setting(name: str, root: str | Path | Mapping[str, str | Path] | Sequence[str], *,
                      profile: str = "paper", quick: bool = False, seed: int = 0,
                      config: MediaBenchmarkConfig | None = None,
                      progress: Progress | None = None, journal: TrialJournal | None = None) -> BenchmarkResult:
    """Run a paper setting on the user's copy of its dataset(s).

    Args:
        name: a key of :data:`SETTINGS`.
        root: the dataset folder as distributed; for ``cross`` ``{"mafw": DIR, "mosei": DIR}`` or
            ``["mafw=DIR", "mosei=DIR"]``.
        profile, quick, seed: as :func:`paper_setting_config` (ignored when ``config`` is given).
        config: a configuration to use instead of the preset.
        progress: ``progress(done, total, message)``.

    Returns:
        The records (one per method x level x split / repeat) and scores. For a fixed-known
        setting, repeat ``r`` (training seed ``seed + r``) is reported as split ``r``.

    Raises:
        ConfigError: unknown name or a bad ``root``.
        DataError: as :func:`load_setting` / :func:`setting_protocol`.
    """
    st = get_setting(name)
    cfg = config or paper_setting_config(name, profile=profile, quick=quick, seed=seed)
    data = load_setting(name, root)
    protocol = setting_protocol(st, data.manifest, n_splits=cfg.n_splits, parts=data.parts)
    repeats = cfg.n_splits if st.fixed_known else None
    result = run_media_benchmark(cfg.model_copy(update={"n_splits": 1}) if repeats else cfg, data.manifest, protocol,
                                 progress=progress, repeats=repeats, journal=journal)
    if repeats:
        result.meta.update(config=cfg.to_dict(), repeats=repeats)
    result.meta["setting"] = {"name": st.name, "table": st.table, "description": st.description,
                              "paper_levels": st.levels, "levels": list(protocol.levels),
                              "n_clips": len(data.manifest)}
    return result


def plan_paper_setting(name: str, *, seed: int = 0, quick: bool = False, profile: str | None = None,
                       roots: Sequence[str] = ()) -> BenchmarkPlan:
    """``openmer benchmark <setting>``: :func:`paper_setting_config` (profile ``paper`` unless
    given) and :func:`run_paper_setting` on the dataset folders ``roots`` (:func:`parse_roots`).

    Raises:
        ConfigError: missing or malformed roots.
    """
    root = parse_roots(name, list(roots) or None)
    cfg = paper_setting_config(name, profile=profile or "paper", quick=quick, seed=seed)

    def run(cfg: MediaBenchmarkConfig, *, progress: Progress | None = None,
            journal: TrialJournal | None = None) -> BenchmarkResult:
        return run_paper_setting(name, root, config=cfg, progress=progress, journal=journal)

    return BenchmarkPlan(cfg, run)


for _name in SETTINGS:  # one benchmark per paper setting
    register_benchmark(_name)(partial(plan_paper_setting, _name))


__all__ = [
    "PROTOCOL_SEED", "SETTINGS", "PaperSetting", "SettingData", "get_setting", "load_setting", "openness_table",
    "paper_setting_config", "parse_roots", "plan_paper_setting", "run_paper_setting", "setting_protocol",
]
