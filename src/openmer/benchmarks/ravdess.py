"""``openmer benchmark ravdess``: RAVDESS face action units, MFCC contours and real speech audio.

Data: the 1440 RAVDESS speech clips (24 actors x 60), the same clips in two shared folders,
joined on the clip id (:func:`openmer.datasets.builtin.load_ravdess_speech`):

=============  ===============================================================================
feature set    what it is
=============  ===============================================================================
``face_au``    35 OpenFace action-unit values per clip (``ravdess-au-mfcc``, see its FORMAT.md)
``audio``      the 259-step MFCC-derived audio contour of the same folder
``audio_wav``  the clip's real audio (``ravdess-speech``, 16 kHz FLAC) through the profile's
               frozen audio encoder (offline: Whisper-base), unprompted, cached on disk
``text``       the spoken statement through the text encoder (offline: MiniLM), cached; both
               statements are spoken in every emotion, so text carries no emotion
=============  ===============================================================================

Methods: every method that trains on feature vectors runs on every modality set
(``feature_sets``); a method that runs through the encoders (HCEP: prompts through the frozen
encoders) runs on ``text+audio_wav``; all in the one trial loop
(:func:`openmer.benchmarks.trials.run_trials`).

Protocol: ``src/openmer/splits/ravdess.json``: actor-independent partition (train actors 01-16,
val 17-20, test 21-24), 8 classes, openness O(6:2), O(4:4), O(2:6), 4 known/unknown splits each.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from openmer.benchmarks.journal import TrialJournal
from openmer.benchmarks.media import (
    MediaBenchmarkConfig,
    benchmark_encoders,
    benchmark_profile,
    emodb_config,
    media_plan,
)
from openmer.benchmarks.registry import BenchmarkPlan, on_profile, register_benchmark
from openmer.benchmarks.runner import BenchmarkResult, registered_methods
from openmer.benchmarks.trials import Progress, TrialData, benchmark_meta, run_trials
from openmer.data.clips import ClipDataset, vision_preprocess
from openmer.data.feature_cache import encode_features
from openmer.datasets import load_ravdess_features, load_ravdess_speech
from openmer.errors import ConfigError, DataError
from openmer.paths import default_cache_dir
from openmer.protocol import load_protocol

#: manifest modality -> its name as an encoded feature set (``audio`` is the MFCC contour)
ENCODED = {"audio": "audio_wav", "text": "text"}
#: HCEP's training clips per trial in the default preset (a CPU budget: prompts run through the
#: encoders at every step; the feature-level methods use every training clip)
HCEP_TRAIN_CLIPS = 120
MODALITY_SETS = (
    ("face_au",), ("audio",), ("face_au", "audio"),
    ("audio_wav",), ("face_au", "audio_wav"), ("text", "audio_wav"),
)


C = TypeVar("C", bound=MediaBenchmarkConfig)


class RavdessBenchmarkConfig(MediaBenchmarkConfig):
    """What ``openmer benchmark ravdess`` runs.

    Attributes:
        feature_sets: the modality sets of the feature-level methods, by feature-set name
            (module docstring); the encoder-level methods run on ``modalities`` (manifest names,
            ``("text", "audio")`` = ``text+audio_wav``).
        (the other fields as :class:`~openmer.benchmarks.media.MediaBenchmarkConfig`;
        ``baseline_train`` trains the feature-level methods.)
    """

    feature_sets: tuple[tuple[str, ...], ...] = MODALITY_SETS


def speech_preset(config_class: type[C], *, seed: int, quick: bool, scope: str, **fields: Any) -> C:
    """A speech benchmark's preset built on the EmoDB preset (:func:`openmer.benchmarks.media.emodb_config`).

    HCEP's training options and the feature-level methods' head schedule come from there (one
    place for them, quick or not); every registered method runs; HCEP trains on at most
    :data:`HCEP_TRAIN_CLIPS` class-stratified clips per trial (``quick``: the EmoDB quick cap).

    Args:
        config_class: the benchmark's config class (a :class:`MediaBenchmarkConfig`).
        seed, quick: as the EmoDB preset.
        scope: what runs (levels, splits...), the start of ``preset_note``.
        **fields: the benchmark's own fields (``dataset``, ``levels``, ``n_splits``, ...).
    """
    base = emodb_config(seed=seed, quick=quick)
    cap = base.max_train_per_trial if quick else HCEP_TRAIN_CLIPS
    h, b = base.hcep_train, base.baseline_train
    note = (f"{'quick preset: ' if quick else ''}{scope}; HCEP: the EmoDB {'quick ' if quick else ''}preset's "
            f"training ({h.epochs} epoch(s), {h.optimizer} lr {h.lr:g}, batch {h.batch_size}, options "
            f"{base.hcep_options}) on <= {cap} training clips per trial; feature-level methods: heads on cached "
            f"unprompted features, {b.optimizer} lr {b.lr:g}, {b.epochs} epochs, batch {b.batch_size}, selection "
            f"on val accuracy every {b.eval_every} epochs")
    return config_class.model_validate({**base.model_dump(), "methods": registered_methods(),
                                        "max_train_per_trial": cap, "preset_note": note, **fields})


def ravdess_config(*, seed: int = 0, quick: bool = False) -> RavdessBenchmarkConfig:
    """The default preset (or ``quick``), built by :func:`speech_preset`.

    Default: 3 levels x 4 splits; HCEP on <= :data:`HCEP_TRAIN_CLIPS` training clips per trial
    (RAVDESS clips are 3.7 s on average, EmoDB's 2 s). ``quick`` (a smoke run, under 5 minutes
    on a 2-core CPU once the features are cached): O(2:6), 1 split, HCEP as the EmoDB quick
    preset (1 epoch on at most 96 clips), heads 15 epochs.
    """
    levels = ("O(2:6)",) if quick else None
    scope = "O(2:6), 1 split" if quick else "3 levels x 4 splits"
    return speech_preset(RavdessBenchmarkConfig, seed=seed, quick=quick, scope=scope, dataset="ravdess",
                         modalities=("text", "audio"), levels=levels, n_splits=1 if quick else 4)


def run_ravdess(cfg: RavdessBenchmarkConfig | None = None, *, root: str | Path | None = None,
                speech_root: str | Path | None = None, progress: Progress | None = None,
                journal: TrialJournal | None = None) -> BenchmarkResult:
    """Run the RAVDESS benchmark (module docstring): a plan over the one trial loop
    (:func:`openmer.benchmarks.media.media_plan` with the feature sets, then
    :func:`openmer.benchmarks.trials.run_trials`).

    Args:
        cfg: what to run (default :func:`ravdess_config`).
        root: the ``ravdess-au-mfcc`` folder (default: the shared copy).
        speech_root: the ``ravdess-speech`` folder (default: the shared copy); read only when a
            feature set uses ``audio_wav`` / ``text`` or an encoder-level method runs.
        progress: ``progress(done, total, message)``.
        journal: where finished trials are recorded and read back (:mod:`openmer.benchmarks.journal`).

    Raises:
        SharedDataMissing: a needed shared folder is absent.
        DataError: the two folders do not hold the same clips.
        ConfigError: a feature set names an unknown feature (the message lists them).
    """
    t0 = time.perf_counter()
    cfg = cfg or ravdess_config()
    table = load_ravdess_features(root)
    protocol = load_protocol("ravdess")
    plan = media_plan(cfg, protocol, feature_sets=cfg.feature_sets, shown_as=ENCODED)
    on_clips = any(mp.cls.consumes == "clips" for g in plan.groups for mp in g.methods)
    wanted = {m for g in plan.groups for mp in g.methods if mp.cls.consumes == "features"
              for s in g.modality_sets for m in s}
    known = (*table.features, *ENCODED.values())
    if wanted - set(known):
        raise ConfigError(f"unknown RAVDESS feature set(s) {sorted(wanted - set(known))}; choose from {list(known)}")
    to_encode = tuple(m for m, name in ENCODED.items() if name in wanted)
    data = TrialData(list(table.labels), list(table.groups), features=dict(table.features))
    timings: dict[str, float] = {}
    meta_extra: dict[str, Any] = {}
    if to_encode or on_clips:
        manifest = load_ravdess_speech(speech_root)
        if (manifest.ids, list(manifest.labels), [s.group or s.id for s in manifest]) != (
                table.ids, data.labels, data.groups):
            raise DataError(manifest.source, "the RAVDESS speech clips (av_clip_id, label, actor) are not the clips of "
                                             f"the AU/MFCC features ({table.meta.get('source')}), in the same order")
        data.encoders, data.profile = benchmark_encoders(cfg, to_encode), benchmark_profile(cfg)
        meta_extra["encoders"] = data.profile.to_dict()
        if on_clips:
            data.clips = ClipDataset(manifest, np.full(len(manifest), -1), cfg.modalities,
                                     vision_preprocess=vision_preprocess(data.encoders))
    if to_encode:
        t = time.perf_counter()
        clips = ClipDataset(manifest, np.full(len(manifest), -1), to_encode)
        step = (lambda d, n, msg: progress(0, 1, f"{msg} {d}/{n}")) if progress else None
        encoded, _ = encode_features(clips, data.encoders, cache_dir=default_cache_dir(), progress=step)
        data.features.update({ENCODED[m]: x for m, x in encoded.items()})  # type: ignore[union-attr]
        timings["encode_features_s"] = time.perf_counter() - t
    out = run_trials(plan, data, progress=progress, journal=journal)
    timings.update({f"{k}_s": v for k, v in out.seconds.items()})
    meta = benchmark_meta(cfg, protocol, t0, **meta_extra, left_out=out.left_out,
                          timings_s={k: round(v, 1) for k, v in timings.items()})
    return BenchmarkResult(records=out.records, runs=out.runs, meta=meta, sections=out.sections)


@register_benchmark("ravdess")
def plan_ravdess(*, seed: int = 0, quick: bool = False, profile: str | None = None,
                 roots: Sequence[str] = ()) -> BenchmarkPlan:
    """``openmer benchmark ravdess``: :func:`ravdess_config` and :func:`run_ravdess`; one ``--root``
    may name the AU/MFCC feature folder (default: ``../shared``).

    Raises:
        ConfigError: more than one root.
    """
    if len(roots) > 1:
        raise ConfigError(f"benchmark ravdess takes one --root (the AU/MFCC feature folder), got {len(roots)}")
    root = roots[0] if roots else None

    def run(cfg: RavdessBenchmarkConfig, *, progress: Progress | None = None,
            journal: TrialJournal | None = None) -> BenchmarkResult:
        return run_ravdess(cfg, root=root, progress=progress, journal=journal)

    return BenchmarkPlan(on_profile(ravdess_config(seed=seed, quick=quick), profile), run, cpu_preset=True)
