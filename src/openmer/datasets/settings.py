"""The five O-MER settings of the HCEP paper, declared: their datasets, classes, levels, split rule
and how their data is read (:data:`SETTINGS`, each entry a :class:`PaperSetting`).

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

Data and partitions (decided here; the paper's Sec. 4.1 could not be read, see the caveats in
:mod:`openmer.benchmarks.paper_settings`):

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

A setting's protocol is built on its data by :func:`openmer.protocol.setting_protocol`
(:meth:`SettingData.protocol`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openmer.data.manifest import Manifest, Sample, concat_manifests
from openmer.datasets.mafw import COMPOUND_SEPARATOR, HCEP_MAFW_CLASSES, load_mafw
from openmer.datasets.mosei import MOSEI_EMOTIONS, load_mosei
from openmer.datasets.ovmerd import OVMERD_KNOWN, load_ovmerd
from openmer.errors import ConfigError, DataError
from openmer.protocol import TRAINVAL, Protocol, SettingRule, openness, openness_label, setting_protocol
from openmer.registry import Registry

#: seed of the known/unknown splits and of the seeded partitions (``--seed`` changes training only)
PROTOCOL_SEED = 0
#: share of MAFW's fold-1 train clips held out for validation
MAFW_VAL_FRACTION = 0.1
#: OV-MERD group split (train, val, test)
OVMERD_FRACTIONS = (0.6, 0.2, 0.2)
#: the six emotions shared by MAFW and CMU-MOSEI, in MOSEI's order
SHARED_EMOTIONS = MOSEI_EMOTIONS
#: how the settings with official parts read them (the protocols' note)
OFFICIAL_PARTS = ("official parts (MAFW fold 1 train/test with a seeded, class-stratified "
                  f"{MAFW_VAL_FRACTION:.0%} of train as val; CMU-MOSEI standard train/valid/test)")


@dataclass(frozen=True)
class SettingData:
    """A setting's manifest and the datasets' own division of its groups.

    Attributes:
        manifest: the clips of the setting (labels in the setting's universe).
        parts: group -> ``"train"``, ``"val"``, ``"test"`` or ``"trainval"`` (train clips of
            which a seeded 10 % becomes validation); empty when the dataset has no official split.
        setting: the setting the data was read for (``None``: not read through :func:`load_setting`).
    """

    manifest: Manifest
    parts: dict[str, str] = field(default_factory=dict)
    setting: PaperSetting | None = None

    def protocol(self, n_splits: int = 4, seed: int = PROTOCOL_SEED) -> Protocol:
        """The setting's open-set protocol on this data (:func:`openmer.protocol.setting_protocol`).

        Raises:
            ConfigError: data read without its setting, or without the official parts it needs.
            DataError: as :func:`openmer.protocol.setting_protocol`.
        """
        if self.setting is None:
            raise ConfigError("this data was not read for a paper setting; use load_setting(name, root)")
        return setting_protocol(self.setting, list(self.manifest.labels), [s.group or s.id for s in self.manifest],
                                parts=self.parts or None, n_splits=n_splits, seed=seed, source=self.manifest.source)


#: reads a setting's data from its folder(s): one folder, or {root name: folder}
SettingLoader = Callable[[Any], SettingData]


@dataclass(frozen=True)
class PaperSetting(SettingRule):
    """One O-MER setting of the paper, declared (its :class:`~openmer.protocol.SettingRule` and
    where its data comes from).

    Attributes:
        dataset_adapter: the :data:`openmer.datasets.ADAPTERS` name(s) it reads, ``+``-joined.
        table: the paper table reporting it (not confirmed).
        description: one line.
        roots: the names of the dataset folders it reads when it reads several
            (``--root NAME=DIR``); ``()``: one folder (``--root DIR``).
        load: reads its data from the folder(s) (:data:`SettingLoader`).
    """

    dataset_adapter: str = ""
    table: str = ""
    description: str = ""
    roots: tuple[str, ...] = ()
    load: SettingLoader | None = field(default=None, repr=False, compare=False)

    @property
    def adapters(self) -> tuple[str, ...]:
        """The adapters it reads."""
        return tuple(self.dataset_adapter.split("+"))


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


def _cross(roots: Mapping[str, Path]) -> SettingData:
    data = {"mafw": _mafw(roots["mafw"], compound=False), "mosei": _mosei(roots["mosei"])}
    manifest = concat_manifests({k: d.manifest for k, d in data.items()}, name="cross-mafw-mosei", root=roots["mafw"])
    return SettingData(manifest, {f"{prefix}/{g}": p for prefix, d in data.items() for g, p in d.parts.items()})


_MAFW_OTHER = tuple(c for c in HCEP_MAFW_CLASSES if c not in SHARED_EMOTIONS)

#: the paper's settings by name (``openmer benchmark NAME``), in the paper's order
SETTINGS: Registry[PaperSetting] = Registry("paper setting")
for _setting in (
    PaperSetting(
        "mafw", HCEP_MAFW_CLASSES, ((8, 2), (6, 4), (4, 6), (2, 8)), parts_note=OFFICIAL_PARTS,
        val_fraction=MAFW_VAL_FRACTION, dataset_adapter="mafw", table="Table 2",
        description="MAFW, 10 emotions, official fold 1; 4 known/unknown splits per level",
        load=lambda root: _mafw(Path(root), compound=False),
    ),
    PaperSetting(
        "mosei", MOSEI_EMOTIONS, ((5, 1), (4, 2), (3, 3), (2, 4)), parts_note=OFFICIAL_PARTS,
        val_fraction=MAFW_VAL_FRACTION, dataset_adapter="cmu-mosei", table="Table 3",
        description="CMU-MOSEI, 6 emotions (argmax rule), standard folds; 4 known/unknown splits per level",
        load=lambda root: _mosei(Path(root)),
    ),
    PaperSetting(
        "mafw-compound", HCEP_MAFW_CLASSES, ((10, 32),), known=HCEP_MAFW_CLASSES, open_universe=True,
        parts_note=OFFICIAL_PARTS, val_fraction=MAFW_VAL_FRACTION, dataset_adapter="mafw", table="Table 4",
        description="MAFW compound split, fold 1: 10 single emotions known, compound labels unknown",
        load=lambda root: _mafw(Path(root), compound=True),
    ),
    PaperSetting(
        "ov-merd", OVMERD_KNOWN, ((6, 236),), known=OVMERD_KNOWN, open_universe=True, group_split=OVMERD_FRACTIONS,
        dataset_adapter="ov-merd", table="Table 4",
        description="OV-MERD: six basic emotions known, every other open-vocabulary label unknown; seeded group split",
        load=lambda root: SettingData(load_ovmerd(Path(root))),
    ),
    PaperSetting(
        "cross", SHARED_EMOTIONS + _MAFW_OTHER, ((6, 4),), known=SHARED_EMOTIONS, parts_note=OFFICIAL_PARTS,
        val_fraction=MAFW_VAL_FRACTION, dataset_adapter="mafw+cmu-mosei", table="Table 4",
        description="cross-dataset MAFW + CMU-MOSEI: six shared emotions known, MAFW's other four unknown",
        roots=("mafw", "mosei"), load=_cross,
    ),
):
    SETTINGS.register(_setting.name)(_setting)


def get_setting(name: str) -> PaperSetting:
    """The setting called ``name``.

    Raises:
        ConfigError: unknown name (the message lists the names).
    """
    return SETTINGS.get(name)


def openness_table() -> list[dict[str, Any]]:
    """One row per (setting, level): ``setting``, ``level``, ``n_known``, ``n_unknown``, ``openness``
    (rounded to 2 decimals, as the paper prints it) and ``table``."""
    return [
        {"setting": s.name, "level": openness_label(k, u), "n_known": k, "n_unknown": u,
         "openness": round(openness(k, u), 2), "table": s.table}
        for _, s in SETTINGS.items() for k, u in s.level_sizes
    ]


def parse_roots(name: str, roots: str | Path | Sequence[str | Path] | Mapping[str, str | Path] | None
                ) -> Path | dict[str, Path]:
    """The dataset folder(s) of a setting from what a user typed.

    A setting that reads one dataset takes one folder. One that reads several (its declared
    ``roots``, e.g. ``cross``: ``mafw``, ``mosei``) takes ``{"mafw": DIR, "mosei": DIR}`` or the
    strings ``["mafw=DIR", "mosei=DIR"]`` (what ``--root mafw=DIR --root mosei=DIR`` gives).

    Raises:
        ConfigError: nothing given, or not the form the setting needs (one line, with an example).
    """
    setting = get_setting(name)
    named = " ".join(f"--root {r}={r.upper()}_DIR" for r in setting.roots)
    if roots is None or (not isinstance(roots, (str, Path, Mapping)) and len(roots) == 0):
        raise ConfigError(f"benchmark {name} needs its dataset folder: {named or '--root DIR'}")
    if not setting.roots:
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
                raise ConfigError(f"benchmark {name} needs {named}, got {item!r}")
            found[key.strip().lower()] = Path(value)
    if set(found) != set(setting.roots):
        raise ConfigError(f"benchmark {name} needs the folders of {' and '.join(setting.roots)}, got {sorted(found)} "
                          f"({setting.dataset_adapter})")
    return found


def load_setting(name: str, root: str | Path | Mapping[str, str | Path] | Sequence[str]) -> SettingData:
    """Read a setting's data from the datasets' native layouts (module docstring), by its
    declared loader.

    Args:
        name: a name of :data:`SETTINGS`.
        root: the dataset folder; for a setting with several, see :func:`parse_roots`.

    Raises:
        ConfigError: unknown name or a bad ``root``.
        DataError: as the adapters (missing files, folds, ...).
    """
    setting = get_setting(name)
    if setting.load is None:
        raise ConfigError(f"setting {name} declares no loader")
    data = setting.load(parse_roots(name, root))
    return SettingData(data.manifest, data.parts, setting)


__all__ = [
    "MAFW_VAL_FRACTION", "OVMERD_FRACTIONS", "PROTOCOL_SEED", "SETTINGS", "SHARED_EMOTIONS", "PaperSetting",
    "SettingData", "get_setting", "load_setting", "openness_table", "parse_roots",
]
