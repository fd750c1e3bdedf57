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
encoders) runs on ``text+audio_wav`` through the media benchmark's trial loop
(:func:`openmer.benchmarks.media.run_media_benchmark`).

Protocol: ``src/openmer/splits/ravdess.json``: actor-independent partition (train actors 01-16,
val 17-20, test 21-24), 8 classes, openness O(6:2), O(4:4), O(2:6), 4 known/unknown splits each.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from openmer.benchmarks.media import (
    MediaBenchmarkConfig, benchmark_encoders, benchmark_profile, emodb_config, feature_benchmark_config,
    run_media_benchmark,
)
from openmer.benchmarks.registry import BenchmarkPlan, on_profile, register_benchmark
from openmer.benchmarks.runner import (
    BenchmarkResult, Progress, benchmark_meta, consumes_features, registered_methods,
    run_feature_benchmark,
)
from openmer.datasets import load_ravdess_features, load_ravdess_speech
from openmer.errors import ConfigError, DataError
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


def _encoded_name(modalities: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(ENCODED.get(m, m) for m in modalities)


def run_ravdess(cfg: RavdessBenchmarkConfig | None = None, *, root: str | Path | None = None,
                speech_root: str | Path | None = None, progress: Progress | None = None) -> BenchmarkResult:
    """Run the RAVDESS benchmark (module docstring).

    Args:
        cfg: what to run (default :func:`ravdess_config`).
        root: the ``ravdess-au-mfcc`` folder (default: the shared copy).
        speech_root: the ``ravdess-speech`` folder (default: the shared copy); read only when a
            feature set uses ``audio_wav`` / ``text`` or an encoder-level method runs.
        progress: ``progress(done, total, message)``.

    Raises:
        SharedDataMissing: a needed shared folder is absent.
        DataError: the two folders do not hold the same clips.
        ConfigError: a feature set names an unknown feature (the message lists them).
    """
    from openmer.data.clips import ClipDataset
    from openmer.data.feature_cache import encode_features
    from openmer.paths import default_cache_dir

    t0 = time.perf_counter()
    cfg = cfg or ravdess_config()
    table = load_ravdess_features(root)
    protocol = load_protocol("ravdess")
    feature_methods = tuple(m for m in cfg.methods if consumes_features(m))
    encoder_methods = tuple(m for m in cfg.methods if m not in feature_methods)
    wanted = {m for s in cfg.feature_sets for m in s} if feature_methods else set()
    known = (*table.features, *ENCODED.values())
    if wanted - set(known):
        raise ConfigError(f"unknown RAVDESS feature set(s) {sorted(wanted - set(known))}; choose from {list(known)}")
    to_encode = tuple(m for m, name in ENCODED.items() if name in wanted)
    features: dict[str, np.ndarray] = dict(table.features)
    timings: dict[str, float] = {}
    meta_extra: dict[str, Any] = {}
    records: list[dict[str, Any]] = []
    runs = []
    manifest = encoders = None
    if to_encode or encoder_methods:
        manifest = load_ravdess_speech(speech_root)
        if manifest.ids != table.ids:
            raise DataError(manifest.source, "the RAVDESS speech clips (av_clip_id) are not the clips of the "
                                             f"AU/MFCC features ({table.meta.get('source')}), in the same order")
        encoders = benchmark_encoders(cfg, to_encode)
        meta_extra["encoders"] = benchmark_profile(cfg).to_dict()
    if to_encode:
        t = time.perf_counter()
        clips = ClipDataset(manifest, np.full(len(manifest), -1), to_encode)
        encoded, _ = encode_features(clips, encoders, cache_dir=default_cache_dir(),
                                     progress=(lambda d, n, msg: progress(0, 1, f"{msg} {d}/{n}")) if progress else None)
        features.update({ENCODED[m]: x for m, x in encoded.items()})
        timings["encode_features_s"] = time.perf_counter() - t
    if feature_methods:
        t = time.perf_counter()
        fcfg = feature_benchmark_config(cfg, feature_methods, cfg.feature_sets)
        base = run_feature_benchmark(fcfg, features, table.labels, table.groups, protocol, progress=progress,
                                     text_encoder=(encoders or {}).get("text"))
        if base.meta.get("left_out"):
            meta_extra["left_out"] = base.meta["left_out"]
        records += base.records
        runs += base.runs
        timings["feature_methods_s"] = time.perf_counter() - t
    if encoder_methods:
        t = time.perf_counter()
        media = run_media_benchmark(cfg.model_copy(update={"methods": encoder_methods}), manifest, protocol,
                                    progress=progress, encoders=encoders)
        for run in media.runs:
            run.modalities = _encoded_name(run.modalities)
        for rec in media.records:  # the methods' own records and their post-hoc ones
            rec["modalities"] = "+".join(_encoded_name(tuple(rec["modalities"].split("+"))))
        if media.meta.get("left_out"):
            meta_extra["left_out"] = {**meta_extra.get("left_out", {}), **media.meta["left_out"]}
        records += media.records
        runs += media.runs
        timings["encoder_methods_s"] = time.perf_counter() - t
    meta = benchmark_meta(cfg, protocol, t0, **meta_extra, timings_s={k: round(v, 1) for k, v in timings.items()})
    return BenchmarkResult(records=records, runs=runs, meta=meta)


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

    def run(cfg: RavdessBenchmarkConfig, *, progress: Progress | None = None) -> BenchmarkResult:
        return run_ravdess(cfg, root=root, progress=progress)

    return BenchmarkPlan(on_profile(ravdess_config(seed=seed, quick=quick), profile), run, cpu_preset=True)
