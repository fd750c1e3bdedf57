"""The one trial loop of every benchmark: (openness level, split, modality set, method) -> records.

A benchmark is a *plan* over this loop (:class:`TrialPlan`: which protocol and levels, which
methods, each with the training config the plan gives it) and its data (:class:`TrialData`:
cached feature vectors, clips through the encoders, or both). For every trial the loop takes the
split's training / validation / test rows (:func:`openmer.protocol.open_set_subsets`, training
capped per method with :func:`openmer.protocol.stratified_cap`), the inputs the method's
``consumes`` declares, builds the method with the one factory
(:func:`openmer.training.trial.build_method`, under the trial's seed ``plan.seed + split.index``),
runs one :func:`openmer.training.trial.run_trial` (fit, deployable threshold from known-class
validation confidences, test set scored once), scores its head with the plan's post-hoc scores
and records it all (:func:`openmer.benchmarks.records.trial_records`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from typing import Protocol as TypingProtocol

import numpy as np

from openmer.backbones.base import Modality
from openmer.backbones.factory import ProfileConfig, load_encoders, profile_config
from openmer.benchmarks.cost import machine_description
from openmer.benchmarks.journal import TrialJournal, rows_digest
from openmer.benchmarks.records import budget_note, trial_records, trial_result  # noqa: F401  (re-exported)
from openmer.config import OpenmerConfig
from openmer.data.clips import ClipDataset, vision_preprocess
from openmer.data.feature_cache import encode_features
from openmer.errors import ConfigError
from openmer.methods.base import OpenSetMethod
from openmer.methods.inputs import ClipInputs, FeatureInputs, MethodInputs
from openmer.methods.posthoc import posthoc_scores
from openmer.paths import default_cache_dir
from openmer.protocol import Protocol, open_set_subsets, select_levels, stratified_cap
from openmer.reporting.scores import RunScores
from openmer.training import TrainConfig
from openmer.training.trial import Builder, build_method, method_config, run_trial

#: ``progress(done, total, message)``
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class MethodPlan:
    """One method of a plan.

    Attributes:
        cls: the method's class (resolved once from the registry; ``cls.name`` names its records).
        options: extra fields of its config, laid over what the data gives
            (:func:`openmer.training.trial.method_config`).
        train: the training config the plan gives it (its seed is replaced by the trial's; per-group
            learning-rate scales of groups it does not have are dropped).
        max_train: train on at most this many class-stratified, seeded training rows per trial
            (:func:`stratified_cap`); ``None`` = all.
        posthoc: post-hoc scores on its classifier head, one record each (:func:`posthoc_records`).
        build: a model to train instead of ``cls``'s own (:data:`~openmer.training.trial.Builder`).
    """

    cls: type[OpenSetMethod]
    options: dict[str, Any]
    train: TrainConfig
    max_train: int | None = None
    posthoc: tuple[str, ...] = ()
    build: Builder | None = None


@dataclass(frozen=True)
class TrialGroup:
    """Methods that run on the same modality sets, trial after trial.

    Attributes:
        methods: the methods, in the order their records come.
        modality_sets: each a tuple of modalities (feature names of :attr:`TrialData.features`,
            or the clips' modalities for a method on clips).
        shown_as: a modality's name in the records, where it differs (RAVDESS: the clips' ``audio``
            is the feature set ``audio_wav``).
    """

    methods: tuple[MethodPlan, ...]
    modality_sets: tuple[tuple[str, ...], ...]
    shown_as: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TrialContext:
    """What a plan's trial hook (:attr:`TrialPlan.hooks`) is given after a trial: the fitted ``method``,
    its ``inputs`` (``inputs.parts(rows, labels=...)`` builds any rows), the trial's ``rows`` (train / val /
    test), ``y`` (N,) open-set labels (-1 unknown), the ``data``, the ``split``, ``seed``, scoring
    ``batch_size``, the :class:`~openmer.training.trial.TrialOutcome` and the ``modalities``."""

    method: OpenSetMethod
    inputs: MethodInputs
    rows: dict[str, Any]
    y: np.ndarray
    data: TrialData
    split: Any
    seed: int
    batch_size: int | None
    outcome: Any
    modalities: tuple[str, ...]


class TrialHook(TypingProtocol):
    """A plan's measurement after each trial (e.g. :class:`openmer.discovery.benchmark.DiscoveryHook`)."""

    def __call__(self, ctx: TrialContext) -> dict[str, Any]:
        """The trial's measurement: its fields are added to every record of the trial."""

    def sections(self, records: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[str]]]:
        """Its ``results.md`` sections ``(heading, markdown lines)`` over all the records (none: ``[]``)."""


class TrainingTransform(TypingProtocol):
    """A plan's change to the training part of every trial (e.g. the robustness benchmark's
    ``--augment``: :class:`openmer.benchmarks.robustness.TrainingAugmentation`). Its ``repr`` is part
    of a trial's identity in the journal."""

    def training_set(self, inputs: MethodInputs, rows: Mapping[str, Any], y: np.ndarray, clean: Any,
                     seed: int) -> Any:
        """The trial's training set (``clean``: the one ``inputs.parts`` built; ``seed``: the trial's)."""


@dataclass(frozen=True)
class TrialPlan:
    """What a benchmark runs: ``groups`` on every (level, split) of ``protocol``.

    Attributes:
        protocol: the openness levels, splits and group partition.
        levels: the levels to run (``None``: all of them; :func:`select_levels`).
        n_splits: splits per level (at most the protocol's).
        seed: the trials' base seed: trial seed = ``seed + split.index`` (+ the repeat).
        groups: the methods and their modality sets; records come group by group, each group's
            ordered by level, split, modality set and method.
        repeats: ``None``: one trial per split. ``R``: a protocol with a fixed known set (one split
            per level) trains ``R`` times with seeds ``seed + r`` and reports repeat ``r`` as split
            ``r`` (records carry ``train_seed``); repeats are the outer loop.
        hooks: measurements after each trial (:class:`TrialHook`).
        augment: the training part of every trial changed (:class:`TrainingTransform`, e.g. ``--augment``);
            ``None``: clean training.
    """

    protocol: Protocol
    levels: tuple[str, ...] | None
    n_splits: int
    seed: int
    groups: tuple[TrialGroup, ...]
    repeats: int | None = None
    hooks: tuple[TrialHook, ...] = ()
    augment: TrainingTransform | None = None


@dataclass
class TrialData:
    """The rows every trial draws from, aligned.

    Attributes:
        labels: (N,) class names.
        groups: (N,) speaker / actor ids, partitioned by the protocol.
        features: feature name -> (N, D) float array (the methods on features); ``None``: none.
        present: feature name -> (N,) bool, False where a clip lacks the modality (``None``: all
            present); absent blocks get the trial's training mean
            (:func:`~openmer.data.feature_blocks.fill_absent_blocks`).
        clips: the clips (:class:`~openmer.data.clips.ClipDataset`, the methods on clips).
        encoders: the profile's frozen encoders handed to every method's factory.
        profile: their profile (:class:`~openmer.backbones.factory.ProfileConfig`), the
            ``profile`` of the configs of the methods on clips.
    """

    labels: list[str]
    groups: list[str]
    features: dict[str, np.ndarray] | None = None
    present: dict[str, np.ndarray] | None = None
    clips: Any = None
    encoders: dict[str, Any] = field(default_factory=dict)
    profile: Any = None


@dataclass(frozen=True)
class ClipSource:
    """The clips of a manifest as a plan's data, read by :func:`run_trials` (:func:`clip_data`).

    Attributes:
        manifest: the clips (labels, groups).
        modalities: the modalities read from each clip.
        profile: the encoder profile's name; ``encoder_options``: per modality, extra loader options
            (:func:`resolve_profile`).
        encoders: the profile's encoders, already loaded (``None``: loaded for ``modalities`` and text).
    """

    manifest: Any
    modalities: tuple[str, ...]
    profile: str
    encoder_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    encoders: dict[str, Any] | None = None


@dataclass
class TrialRecords:
    """What :func:`run_trials` returns: records (one per trial and post-hoc score), the raw scores
    per trial, the methods left out (``"<method> <modalities>"`` -> reason), seconds per method, the
    profile, and the plan's hooks' ``results.md`` sections (:meth:`TrialHook.sections`)."""

    records: list[dict[str, Any]] = field(default_factory=list)
    runs: list[RunScores] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    profile: Any = None
    sections: list[tuple[str, list[str]]] = field(default_factory=list)


def resolve_profile(name: str, encoder_options: Mapping[str, Mapping[str, Any]]) -> ProfileConfig:
    """Encoder profile ``name`` with ``encoder_options`` (per modality, extra loader options) applied.

    Raises:
        ConfigError: unknown profile, or options for a modality the profile has no encoder for.
    """
    prof = profile_config(name)
    for modality, options in encoder_options.items():
        prof = prof.with_options(cast(Modality, modality), **options)  # an unknown modality: a ConfigError
    return prof


def encoded_modalities(modalities: Sequence[str]) -> tuple[Modality, ...]:
    """The encoders a benchmark on ``modalities`` loads: those, and text (HCEP's CUEP sentences)."""
    return tuple(cast(Modality, m) for m in sorted(set(modalities) | {"text"}))


def clip_data(plan: TrialPlan, source: ClipSource, *, progress: Progress | None = None) -> TrialData:
    """The rows of ``source``: its clips through the profile's frozen encoders (the methods on
    clips) and, when ``plan`` has methods on features, the clips' unprompted features, encoded once
    and cached on disk (:func:`~openmer.data.feature_cache.encode_features`).

    Raises:
        ConfigError / SharedDataMissing: as :func:`openmer.backbones.factory.load_encoders`.
    """
    modalities = encoded_modalities(source.modalities)
    prof = resolve_profile(source.profile, source.encoder_options)
    loaded = source.encoders or load_encoders(prof.specs(modalities))
    encoders = cast(dict[str, Any], loaded)
    man = source.manifest
    clips = ClipDataset(man, [-1] * len(man), source.modalities, vision_preprocess=vision_preprocess(encoders))
    data = TrialData(list(man.labels), [s.group or s.id for s in man], clips=clips, encoders=encoders, profile=prof)
    if any(mp.cls.consumes == "features" for g in plan.groups for mp in g.methods):
        data.features, data.present = encode_features(
            clips, encoders, cache_dir=default_cache_dir(),
            progress=(lambda d, n, msg: progress(0, 1, f"{msg} {d}/{n}")) if progress else None)
    return data




def run_trials(plan: TrialPlan, data: TrialData | ClipSource, *, progress: Progress | None = None,
               journal: TrialJournal | None = None) -> TrialRecords:
    """Run every trial of ``plan`` on ``data`` (module docstring; a :class:`ClipSource` is read
    with :func:`clip_data` first).

    With ``journal``, each trial's records and scores are written as it finishes, and a trial the
    journal already holds with the same fingerprint is read back instead of trained again
    (:mod:`openmer.benchmarks.journal`).

    Returns:
        :class:`TrialRecords`; metrics are fractions in [0, 1]. A method that cannot run on a
        modality set (:meth:`~openmer.methods.base.OpenSetMethod.unavailable`) is left out, with
        the reason.

    Raises:
        ConfigError: an unknown level, a method whose inputs the data does not have, a bad option.
        DataError: as :func:`openmer.protocol.open_set_subsets`.
    """
    if isinstance(data, ClipSource):
        data = clip_data(plan, data, progress=progress)
    levels = select_levels(plan.levels, plan.protocol)
    trials = [(r, group, split, mods, mp) for r in range(plan.repeats or 1) for group in plan.groups
              for lv in levels for split in plan.protocol.levels[lv][: plan.n_splits]
              for mods in group.modality_sets for mp in group.methods]
    out = TrialRecords(profile=data.profile)
    rows_id = rows_digest(data.labels, data.groups) if journal is not None else ""
    for i, (r, group, split, mods, mp) in enumerate(trials):
        t = time.perf_counter()
        name, shown, seed = mp.cls.name, tuple(group.shown_as.get(m, m) for m in mods), plan.seed + split.index + r
        sub = open_set_subsets(data.labels, data.groups, split, plan.protocol.partition)
        y = sub["labels"]
        rows = {"train": stratified_cap(sub["train"], y, mp.max_train, seed), "val": sub["val"], "test": sub["test"]}
        if mp.cls.consumes == "features":  # the input pipeline of the method's ``consumes`` (methods/inputs.py)
            if data.features is None:
                raise ConfigError(f"{name} trains on feature vectors; the data has none")
            features = FeatureInputs(data.features, data.present, mods, y)
            inputs: MethodInputs = features
            blocks, batch_size = features.blocks, None  # scored in the feature sets' large batches
        else:
            if data.clips is None:
                raise ConfigError(f"{name} trains on clips; the data has none")
            inputs, blocks, batch_size = ClipInputs(data.clips), [], mp.train.batch_size
        sets = inputs.parts(rows, labels=y)
        clean_train, val, test = sets["train"], sets["val"], sets["test"]
        train = clean_train if plan.augment is None else plan.augment.training_set(inputs, rows, y, clean_train, seed)
        identity = {} if journal is None else {
            "protocol": [plan.protocol.dataset, plan.protocol.version, plan.protocol.seed,
                         plan.protocol.partition.to_dict()],
            "split": [split.label, split.index, split.known_classes, split.unknown_classes], "repeat": r,
            "method": name, "modalities": shown, "options": mp.options, "blocks": blocks, "seed": seed,
            "train": mp.train.to_dict(), "max_train": mp.max_train, "posthoc": mp.posthoc,
            "build": None if mp.build is None else getattr(mp.build, "__qualname__", type(mp.build).__qualname__),
            "profile": None if data.profile is None else data.profile.to_dict(), "rows": rows_id,
            **({"hooks": [repr(h) for h in plan.hooks]} if plan.hooks else {}),
            **({"augment": repr(plan.augment)} if plan.augment is not None else {})}
        done = journal.get(identity) if journal is not None else None
        if done is not None:
            out.records += done[0]
            out.runs.append(done[1])
            continue
        mcfg = method_config(mp.cls, mp.options, seed=seed, blocks=blocks, profile=data.profile, modalities=mods)
        reason = mp.cls.unavailable(mcfg, encoders=data.encoders, text_encoder=data.encoders.get("text"))
        if reason:
            out.left_out[f"{name} {'+'.join(shown)}"] = reason
            continue
        if progress:
            progress(i, len(trials), f"{name} {'+'.join(shown)} {split.label} split {split.index}")
        method = build_method(mp.cls, mcfg, split.known_classes, seed=seed, encoders=data.encoders, build=mp.build)
        groups_of = method.parameter_groups()  # per-group lr scales name one method's groups (HCEP's prompts)
        scales = {g: v for g, v in mp.train.lr_scales.items() if g in groups_of}
        tcfg = mp.train.model_copy(update={"seed": seed, "lr_scales": scales})
        # F_M for t-SNE (Figs. 6, 8) from the scoring pass of the methods on clips
        trial = run_trial(method, train, val, tcfg, test=test, batch_size=batch_size,
                          test_features=batch_size is not None, clean_train=clean_train)
        posthoc = {}
        if mp.posthoc and method.has_head():  # fitted on the clean training clips, as the threshold
            posthoc = posthoc_scores(method, clean_train.batches(batch_size) if batch_size else clean_train.batches(),
                                     test.batches(batch_size) if batch_size else test.batches(), mp.posthoc)
        records, run = trial_records(name, shown, split, trial, method.score_name, posthoc, y[rows["test"]],
                                     [data.labels[j] for j in rows["test"]], train_config=tcfg, max_train=mp.max_train)
        for hook in plan.hooks:  # e.g. --discover / --enrol (openmer.discovery.benchmark)
            extra = hook(TrialContext(method, inputs, rows, y, data, split, seed, batch_size, trial, mods))
            for rec in records:
                rec.update(extra)
        if plan.repeats is not None:  # a fixed known set: repeat r is reported as split r
            for rec in records:
                rec.update(split=r, train_seed=plan.seed + r)
            run.split = r
        if journal is not None:
            journal.add(identity, records, run)
        out.records += records
        out.runs.append(run)
        out.seconds[name] = out.seconds.get(name, 0.0) + time.perf_counter() - t
    out.sections = [s for hook in plan.hooks for s in hook.sections(out.records)]
    if progress:
        progress(len(trials), len(trials), "done")
    return out


def benchmark_meta(cfg: OpenmerConfig, protocol: Protocol, t0: float, **extra: Any) -> dict[str, Any]:
    """How a benchmark was made: dataset, protocol (version, seed, partition), config, machine, time."""
    return {
        "dataset": getattr(cfg, "dataset", protocol.dataset),
        "protocol": {"name": protocol.dataset, "version": protocol.version, "seed": protocol.seed,
                     "partition": protocol.partition.to_dict(), "note": protocol.note},
        "config": cfg.to_dict(),
        "machine": machine_description(),
        "seconds": round(time.perf_counter() - t0, 1),
        **extra,
    }
