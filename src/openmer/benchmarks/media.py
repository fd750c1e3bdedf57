"""Benchmarks on media datasets (EmoDB speech + transcript, MELD transcripts): HCEP vs baselines.

Every method sees the same frozen encoders: HCEP trains its prompts through them; the ARPL
baseline (HCEP's "Baseline") and MSP train heads on the concatenated *unprompted* features,
which are encoded once and cached on disk (:mod:`openmer.data.feature_cache`). A clip that lacks
a modality is the same clip, with the same presence mask, for every method: HCEP leaves the
block out, the heads get the training mean of the block
(:func:`~openmer.data.feature_blocks.fill_absent_blocks`). Every trial records its deployable
threshold, chosen from known-class validation data (:func:`~openmer.training.trial.run_trial`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, cast

from pydantic import Field

from openmer.backbones.factory import ProfileConfig, load_profile
from openmer.benchmarks.journal import TrialJournal
from openmer.benchmarks.registry import BenchmarkPlan, on_profile, refuse_roots, register_benchmark
from openmer.benchmarks.runner import BenchmarkResult
from openmer.benchmarks.trials import (
    ClipSource,
    MethodPlan,
    Progress,
    TrialGroup,
    TrialPlan,
    benchmark_meta,
    budget_note,
    encoded_modalities,
    resolve_profile,
    run_trials,
)
from openmer.config import OpenmerConfig
from openmer.data.manifest import Manifest
from openmer.discovery.benchmark import DiscoveryHook
from openmer.errors import ConfigError
from openmer.methods.hcep import HCEPConfig
from openmer.methods.posthoc import POSTHOC_SCORES
from openmer.methods.registry import get_method, list_methods
from openmer.protocol import Protocol
from openmer.training import TrainConfig, presets
from openmer.training.presets import (  # one definition with `openmer train --preset cpu`
    BASELINE_TRAIN,
    CPU_ENCODER_OPTIONS,
    CPU_HCEP_OPTIONS,
    CPU_LR_SCALES,
    METHOD_TRAIN,
    TrainField,
)
from openmer.training.trial import Builder

#: ``build(config, known_classes, encoders)`` -> the prompted model of a trial (default :class:`HCEP`)
PromptedBuilder = Builder

class MediaBenchmarkConfig(OpenmerConfig):
    """What a media benchmark runs (see :func:`emodb_config`, :func:`meld_config`).

    Attributes:
        max_train_per_trial: the methods on clips train on at most this many (class-stratified,
            seeded) training clips per trial (``None`` = all); the methods on features use all,
            except under ``matched_budget``.
        hcep_options: extra :class:`HCEPConfig` fields (presets, ablations), for every method
            whose config is an ``HCEPConfig``, laid over its ``method_options``.
        method_options: extra config fields per method name, for the methods on features and on
            clips alike (e.g. ``{"arpl": {"confidence": "softmax"}}``).
        encoder_options: per modality, extra encoder loader options, e.g.
            ``{"audio": {"prompt_entry": "features"}}`` (HCEP's cheaper audio prompt entry).
        posthoc: post-hoc scores computed on the feature methods' trained heads as well
            (:attr:`openmer.benchmarks.runner.FeatureBenchmarkConfig.posthoc`); ``()`` = none.
        clip_posthoc: the same for the methods on clips that have a classifier head (HCEP: its
            DPOL logits and F_M); each costs another pass over the test clips (and, for the scores
            fitted on training data, over the training clips), so the default is the two that need
            no fit, the natural scores of HCEP's DPOL logits besides Algorithm 1's max probability.
        matched_budget: every method trains on HCEP's budget (:func:`with_matched_budget`):
            ``hcep_train``'s optimiser, learning rate, schedule, epochs, batch size and selection
            rule, and the same ``max_train_per_trial`` clips; ``baseline_train`` is then unused.
        method_train: which training config each method on clips trains with, by method name:
            ``"hcep_train"`` or ``"baseline_train"``; a method not named here (the methods on
            features, the heads) trains on ``baseline_train``. HESP shares HCEP's: both prompt
            the same frozen encoders, so on a CPU preset HESP gets HCEP's CPU schedule.
    """

    dataset: str
    profile: str = "offline"
    modalities: tuple[str, ...]
    methods: tuple[str, ...] = Field(default_factory=list_methods)
    levels: tuple[str, ...] | None = None
    n_splits: int = Field(default=4, gt=0)
    hcep_train: TrainConfig
    baseline_train: TrainConfig = BASELINE_TRAIN
    hcep_options: dict[str, Any] = Field(default_factory=dict)
    method_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    encoder_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    max_train_per_trial: int | None = None
    posthoc: tuple[str, ...] = tuple(POSTHOC_SCORES)
    clip_posthoc: tuple[str, ...] = ("max_logit", "energy")
    matched_budget: bool = False
    method_train: dict[str, TrainField] = Field(default_factory=lambda: dict(METHOD_TRAIN))
    preset_note: str = ""
    seed: int = 0
    #: ``--discover``: cluster and name each trial's unknown test clips; ``--enrol N,...``: enrol each
    #: unknown class from N training-speaker clips (:mod:`openmer.discovery.benchmark`)
    discover: bool = False
    enrol: tuple[int, ...] = ()


def feature_train_config(cfg: MediaBenchmarkConfig) -> TrainConfig:
    """How the methods on cached features train: ``baseline_train``, or under a matched budget
    ``hcep_train`` without its per-group learning-rate scales (they name HCEP's prompt groups;
    every other setting is the same)."""
    return cfg.hcep_train.model_copy(update={"lr_scales": {}}) if cfg.matched_budget else cfg.baseline_train


def with_matched_budget(cfg: MediaBenchmarkConfig) -> MediaBenchmarkConfig:
    """``cfg`` with every method on HCEP's training budget (HCEP vs its baseline, like for like).

    The feature methods get HCEP's optimiser, learning rate and schedule, epochs, batch size and
    model selection rule (:func:`feature_train_config`) and train on the same class-stratified
    ``max_train_per_trial`` clips of each trial (same seed). Each record's ``budget`` says what it got.
    """
    matched = cfg.model_copy(update={"matched_budget": True})
    hcep_note = cfg.preset_note.split("; baselines:")[0]  # the preset's own schedule of the heads no longer applies
    note = (f"matched budget: every method {budget_note(feature_train_config(matched), cfg.max_train_per_trial)} "
            f"(HCEP's per-group lr scales {dict(cfg.hcep_train.lr_scales) or 'none'} apply to its prompt groups only); "
            f"{hcep_note}")
    return matched.model_copy(update={"preset_note": note})


def benchmark_profile(cfg: MediaBenchmarkConfig) -> ProfileConfig:
    """The encoder profile of ``cfg``: ``cfg.profile`` with ``cfg.encoder_options`` applied
    (:func:`openmer.benchmarks.trials.resolve_profile`).

    Raises:
        ConfigError: unknown profile, or options for a modality the profile has no encoder for.
    """
    return resolve_profile(cfg.profile, cfg.encoder_options)


def benchmark_encoders(cfg: MediaBenchmarkConfig, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """The frozen encoders of :func:`benchmark_profile` for ``cfg.modalities``, text (HCEP's CUEP
    sentences need it) and the ``extra`` modalities.

    Raises:
        ConfigError / SharedDataMissing: as :func:`openmer.backbones.factory.load_profile`.
    """
    loaded = load_profile(benchmark_profile(cfg), modalities=encoded_modalities((*cfg.modalities, *extra)))
    return cast(dict[str, Any], loaded)


def media_plan(cfg: MediaBenchmarkConfig, protocol: Protocol, *, build: Builder | None = None,
               feature_sets: Sequence[Sequence[str]] | None = None, shown_as: dict[str, str] | None = None,
               repeats: int | None = None) -> TrialPlan:
    """The trial plan of ``cfg`` on ``protocol``: its methods (classes resolved once), each with its
    options (``method_options``, and ``hcep_options`` for a method whose config is an
    :class:`HCEPConfig`) and the training config the preset names for it (``method_train``;
    under ``matched_budget`` every method's is ``hcep_train``).

    The methods on features run first, as one group on ``feature_sets`` (default: the clips'
    modalities, ``cfg.modalities``); then each method on clips on ``cfg.modalities`` (``build``:
    the model it trains instead of its class's own; ``shown_as``: the clips' modality names in its
    records, where they differ; ``repeats``: :attr:`~openmer.benchmarks.trials.TrialPlan.repeats`).

    Raises:
        ConfigError: an unknown method.
    """
    classes = [get_method(m) for m in cfg.methods]
    plans = {c.name: MethodPlan(
        c, {**cfg.method_options.get(c.name, {}),
            **(cfg.hcep_options if issubclass(c.config_class, HCEPConfig) else {})},
        cfg.hcep_train if cfg.matched_budget else getattr(cfg, cfg.method_train.get(c.name, "baseline_train")),
        cfg.max_train_per_trial if cfg.matched_budget or c.consumes == "clips" else None,
        cfg.posthoc if c.consumes == "features" else cfg.clip_posthoc, build if c.consumes == "clips" else None)
        for c in classes}
    on_features = tuple(mp for mp in plans.values() if mp.cls.consumes == "features")
    groups = [TrialGroup(on_features, tuple(tuple(m) for m in feature_sets or [cfg.modalities]))] if on_features else []
    groups += [TrialGroup((mp,), (cfg.modalities,), dict(shown_as or {})) for mp in plans.values()
               if mp.cls.consumes == "clips"]
    hooks = (DiscoveryHook(discover=cfg.discover, enrol=cfg.enrol),) if cfg.discover or cfg.enrol else ()
    return TrialPlan(protocol, cfg.levels, cfg.n_splits, cfg.seed, tuple(groups), repeats=repeats, hooks=hooks)


def run_media_benchmark(cfg: MediaBenchmarkConfig, manifest: Manifest, protocol: Protocol, *,
                        progress: Progress | None = None, encoders: dict[str, Any] | None = None,
                        build: Builder | None = None, repeats: int | None = None,
                        journal: TrialJournal | None = None) -> BenchmarkResult:
    """Run the methods of ``cfg.methods`` on every (openness level, split) of ``protocol``: those on
    cached features and those on clips (HCEP, HESP) through the encoders, each on the training
    config the preset names for it, in the one trial loop (:func:`openmer.benchmarks.trials.run_trials`,
    plan :func:`media_plan`, data :func:`openmer.benchmarks.trials.clip_data`). A method that
    cannot run on the data's modalities or encoders (:meth:`~openmer.methods.base.OpenSetMethod.unavailable`)
    is left out, with the reason in ``meta["left_out"]``.

    Args:
        encoders: already loaded encoders of ``cfg.profile`` (e.g. shared by an ablation grid);
            loaded here when ``None``.
        build: what each method on clips trains, ``build(config, known_classes, encoders)``
            (default: the registered class); the ablation grid, which runs one method, passes models
            that HCEPConfig has no option for (:mod:`openmer.benchmarks.ablation_models`).
        repeats: a protocol with a fixed known set trains ``repeats`` times with seeds
            ``cfg.seed + r`` (:attr:`~openmer.benchmarks.trials.TrialPlan.repeats`).
        journal: where finished trials are recorded and read back (:mod:`openmer.benchmarks.journal`).
    """
    t0 = time.perf_counter()
    plan = media_plan(cfg, protocol, build=build, repeats=repeats)
    source = ClipSource(manifest, cfg.modalities, cfg.profile, cfg.encoder_options, encoders)
    meta = benchmark_meta(cfg, protocol, t0)  # what was asked for, written down before the trials run
    out = run_trials(plan, source, progress=progress, journal=journal)
    meta.update(seconds=round(time.perf_counter() - t0, 1), encoders=out.profile.to_dict(),
                timings_s={f"{k}_s": round(v, 1) for k, v in out.seconds.items()}, left_out=out.left_out)
    return BenchmarkResult(records=out.records, runs=out.runs, meta=meta, sections=out.sections)


def _levels(protocol_name: str, quick: bool) -> tuple[str, ...] | None:
    from openmer.protocol import load_protocol

    levels = tuple(load_protocol(protocol_name).levels)
    return (levels[0], levels[-1]) if quick else None


def emodb_config(*, seed: int = 0, quick: bool = False) -> MediaBenchmarkConfig:
    """EmoDB preset: speech + transcript, offline encoders, O(5:2) O(4:3) O(3:4) O(2:5), 4 splits.

    Changed from the paper's schedule (HCEP Sec. 4.1.4) to fit a 2-core CPU in about an hour:
    HCEP trains 15 epochs with Adam (lr 1e-3, batch 16; CUEP's inputs at 30x) instead of 150
    epochs of SGD (lr 5e-4), with late prompt entry (the encoders' last layer over cached lower
    layers, :data:`CPU_ENCODER_OPTIONS`) and CUEP started from class clips
    (:data:`CPU_HCEP_OPTIONS`), with learned weights of the text and audio blocks' DPOL distances
    (the transcripts carry no emotion here), blocks standardised per dimension and dropout 0.3 on
    the samples' blocks in training.
    :func:`with_paper_schedule` gives the paper's reading back.
    ``quick``: 2 levels x 1 split, 2 epochs on at most 96 training clips.
    """
    hcep = presets.CPU_HCEP_TRAIN.model_copy(update={"seed": seed, **({"epochs": 2} if quick else {})})
    return MediaBenchmarkConfig(
        dataset="emodb", modalities=("text", "audio"), hcep_train=hcep, seed=seed,
        levels=_levels("emodb", quick), n_splits=1 if quick else 4,
        hcep_options=dict(CPU_HCEP_OPTIONS), encoder_options=CPU_ENCODER_OPTIONS,
        max_train_per_trial=96 if quick else None,
        baseline_train=BASELINE_TRAIN.model_copy(update={"epochs": 15 if quick else 60}),
        preset_note=(f"quick preset: 2 levels x 1 split; HCEP {hcep.epochs} epochs on <= 96 clips, late prompt entry"
                     if quick
                     else "HCEP: 15 epochs, Adam lr 1e-3 (CUEP and block weights x30), batch 16, late prompt entry "
                     "(audio, text), CUEP from class clips, learned DPOL block weights, blocks standardised, "
                     "block dropout 0.3, DPOL logit scale 30 (paper: 150 epochs SGD lr 5e-4, input entry, noise CUEP, "
                     "equal blocks, L2 only, no dropout); "
                     "baselines: heads on cached unprompted features, Adam lr 1e-3, 60 epochs, batch 64"),
    )


#: HCEP's options for a text-only corpus (MELD): the fixed CUEP sentences leave DPOL no learnable
#: class feature, so CUEP's text prompts are learnable tokens per class (Table 6 bottom's
#: "learnable tokens w/o labels", ``cuep_text``), at 30x the base learning rate
TEXT_ONLY_HCEP_OPTIONS: dict[str, Any] = {"cuep_text": "learnable_tokens"}


def meld_config(*, seed: int = 0, quick: bool = False) -> MediaBenchmarkConfig:
    """MELD preset: transcripts only (MiniLM), MELD's own train/dev/test, O(5:2) ... O(2:5), 4 splits.

    Changed from the paper's schedule to fit a 2-core CPU: HCEP trains 10 epochs with Adam
    (lr 1e-3, CUEP x30, batch 32) on at most 1000 class-stratified training utterances per trial,
    with late prompt entry (MiniLM's last layer over cached lower layers) and learnable CUEP text
    tokens (:data:`TEXT_ONLY_HCEP_OPTIONS`); the baseline heads train 20 epochs on all ~10k
    (``--budget matched``: the same clips and schedule as HCEP). ``quick``: 2 levels x 1 split,
    HCEP 2 epochs on at most 300 utterances, baselines 10 epochs.
    """
    hcep = TrainConfig(epochs=2 if quick else 10, optimizer="adam", lr=1e-3, batch_size=32, seed=seed,
                       lr_scales=CPU_LR_SCALES)
    cap = 300 if quick else 1000
    return MediaBenchmarkConfig(
        dataset="meld", modalities=("text",), hcep_train=hcep, seed=seed, hcep_options=TEXT_ONLY_HCEP_OPTIONS,
        levels=_levels("meld", quick), n_splits=1 if quick else 4, max_train_per_trial=cap,
        encoder_options={"text": CPU_ENCODER_OPTIONS["text"]},
        baseline_train=BASELINE_TRAIN.model_copy(update={"epochs": 10 if quick else 20}),
        preset_note=(f"{'quick preset: 2 levels x 1 split; ' if quick else ''}HCEP: {hcep.epochs} epochs, Adam lr 1e-3 "
                     f"(CUEP x30), batch 32, <= {cap} training utterances per trial, late prompt entry, learnable CUEP "
                     "text tokens per class, DPOL logit scale 30 (paper: 150 epochs SGD lr 5e-4, input entry, fixed "
                     f"sentences); baselines: heads on cached unprompted features, Adam lr 1e-3, "
                     f"{10 if quick else 20} epochs, batch 64, all ~10k training utterances"),
    )


def with_paper_schedule(cfg: MediaBenchmarkConfig) -> MediaBenchmarkConfig:
    """The same benchmark with HCEP trained on the paper's schedule and reading instead of the CPU preset.

    HCEP Sec. 4.1.4: SGD with momentum 0.9, lr 5e-4 multiplied by 0.1 every 30 epochs, 150
    epochs, batch 32 (:class:`openmer.training.TrainConfig` defaults, one learning rate for every
    prompt), on all training clips; prompts at the encoders' inputs (no ``encoder_options``), CUEP
    from noise with 5 s waveforms (Sec. 3.4). Meant for a GPU; the baselines keep the preset's
    heads. Levels and splits are unchanged (restrict them with ``levels`` / ``n_splits``).
    """
    options = {k: v for k, v in cfg.hcep_options.items()
               if k not in ("cuep_audio_samples", *CPU_HCEP_OPTIONS, *TEXT_ONLY_HCEP_OPTIONS)}
    base = cfg.baseline_train
    note = ("paper schedule (HCEP Sec. 4.1.4): HCEP 150 epochs SGD lr 5e-4 momentum 0.9, x0.1 every 30 epochs, "
            f"batch 32, all training clips, prompts at the inputs, CUEP from noise, waveforms 5 s; baselines: heads "
            f"on cached unprompted features, {base.optimizer} lr {base.lr:g}, {base.epochs} epochs")
    return cfg.model_copy(update={"hcep_train": TrainConfig(seed=cfg.seed), "max_train_per_trial": None,
                                  "hcep_options": options, "encoder_options": {}, "preset_note": note})


def dataset_preset(data: str, *, seed: int = 0, quick: bool = False) -> MediaBenchmarkConfig:
    """The media preset for a built-in dataset of clips, chosen by the modalities it declares
    (:data:`openmer.datasets.DATASETS`): transcripts only, MELD's (:func:`meld_config`), else
    speech, EmoDB's (:func:`emodb_config`); on the dataset's own protocol and levels (``quick``:
    its first and last level, one split).

    Raises:
        ConfigError: ``data`` is not a registered dataset.
    """
    from openmer.datasets import DATASETS

    spec = DATASETS.get(data)
    base = (meld_config if spec.modalities == ("text",) else emodb_config)(seed=seed, quick=quick)
    if data == base.dataset:
        return base
    note = f"{data} on {base.dataset}'s preset: {base.preset_note}"
    return base.model_copy(update={"dataset": data, "levels": _levels(spec.protocol or data, quick),
                                   "preset_note": note})


def _media_with_protocol(name: str) -> tuple[Manifest, Protocol]:
    """A built-in media dataset's manifest and protocol (:func:`openmer.datasets.load_with_protocol`).

    Raises:
        ConfigError: the dataset is features-only (no clips to run on).
    """
    from openmer.datasets import load_with_protocol

    data, protocol = load_with_protocol(name)
    if not isinstance(data, Manifest):
        raise ConfigError(f"dataset {name!r} holds feature tables, not clips: the media benchmark cannot run on it")
    return data, protocol


def run_emodb(cfg: MediaBenchmarkConfig | None = None, *, progress: Progress | None = None,
              journal: TrialJournal | None = None) -> BenchmarkResult:
    """EmoDB benchmark (see :func:`emodb_config`). Raises SharedDataMissing without ../shared."""
    return run_media_benchmark(cfg or emodb_config(), *_media_with_protocol("emodb"), progress=progress,
                               journal=journal)


def run_meld(cfg: MediaBenchmarkConfig | None = None, *, progress: Progress | None = None,
              journal: TrialJournal | None = None) -> BenchmarkResult:
    """MELD benchmark (see :func:`meld_config`). Raises SharedDataMissing without ../shared."""
    return run_media_benchmark(cfg or meld_config(), *_media_with_protocol("meld"), progress=progress,
                               journal=journal)


def run_dataset(cfg: MediaBenchmarkConfig, *, progress: Progress | None = None,
                journal: TrialJournal | None = None) -> BenchmarkResult:
    """The media benchmark ``cfg`` on the built-in dataset it names (``cfg.dataset``) and its protocol.

    Raises:
        SharedDataMissing: without ../shared; ConfigError: a features-only dataset.
    """
    return run_media_benchmark(cfg, *_media_with_protocol(cfg.dataset), progress=progress, journal=journal)


@register_benchmark("emodb")
def plan_emodb(*, seed: int = 0, quick: bool = False, profile: str | None = None,
               roots: Sequence[str] = ()) -> BenchmarkPlan:
    """``openmer benchmark emodb``: :func:`emodb_config` and :func:`run_emodb`."""
    refuse_roots("emodb", roots)
    return BenchmarkPlan(on_profile(emodb_config(seed=seed, quick=quick), profile), run_emodb, cpu_preset=True)


@register_benchmark("meld")
def plan_meld(*, seed: int = 0, quick: bool = False, profile: str | None = None,
              roots: Sequence[str] = ()) -> BenchmarkPlan:
    """``openmer benchmark meld``: :func:`meld_config` and :func:`run_meld`."""
    refuse_roots("meld", roots)
    return BenchmarkPlan(on_profile(meld_config(seed=seed, quick=quick), profile), run_meld, cpu_preset=True)


@register_benchmark("ravdess-speech")
def plan_ravdess_speech(*, seed: int = 0, quick: bool = False, profile: str | None = None,
                        roots: Sequence[str] = ()) -> BenchmarkPlan:
    """``openmer benchmark ravdess-speech``: the RAVDESS speech clips (audio + the spoken statement)
    on the preset of their modalities (:func:`dataset_preset`: EmoDB's), O(6:2) O(4:4) O(2:6), 4 splits;
    ``openmer benchmark ravdess`` is the AU/MFCC feature sets."""
    refuse_roots("ravdess-speech", roots)
    return BenchmarkPlan(on_profile(dataset_preset("ravdess-speech", seed=seed, quick=quick), profile), run_dataset,
                         cpu_preset=True)
