"""``openmer train``: train one method on a dataset's known classes and write a run folder.

The run folder (``run.json``, ``model.safetensors``, ``metrics.json``, ``last/``) is written and
read by :mod:`openmer.runs` alone. This module chooses the data (the protocol's groups, a
manifest's ``split`` column, or an 80/20 split of its groups), builds the method under the run's
seed, and trains it and chooses the deployable threshold in one
:func:`openmer.training.trial.run_trial` (:mod:`openmer.methods.threshold`).
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from openmer.backbones.factory import ProfileConfig, load_profile, profile_config
from openmer.data.augment import augmented_training
from openmer.data.clips import ClipDataset, vision_preprocess
from openmer.data.manifest import MODALITIES, Manifest, near_known_labels
from openmer.datasets import resolve_data
from openmer.errors import ConfigError, DataError, OpenmerWarning
from openmer.media.corruptions import CORRUPTIONS, Augmentation
from openmer.methods.base import OpenSetMethod
from openmer.methods.inputs import ClipInputs, FeatureInputs, MethodInputs
from openmer.methods.registry import get_method
from openmer.methods.threshold import DEFAULT_ACCEPTANCE, ThresholdSource, check_acceptance
from openmer.model_card import CardNotes, write_model_card
from openmer.paths import default_cache_dir
from openmer.protocol import partition_indices
from openmer.runs import DataInfo, RunInfo, check_resume, prepare_out, save_run
from openmer.training.config import TrainConfig
from openmer.training.engine import ProgressFn
from openmer.training.guards import check_known_classes_trained, locks_run_folder
from openmer.training.presets import DEFAULT_PRESET, resolve_preset, with_encoder_options
from openmer.training.trial import ThresholdRule, method_config, run_trial
from openmer.training.trial import build_method as build_trial_method

logger = logging.getLogger(__name__)


def train_val_by_group(groups: Sequence[str], *, val_fraction: float = 0.2,
                       seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """Group-disjoint train/val indices for a user manifest (a seeded 80/20 split of its groups).

    With a single group there is no validation split (the last epoch is kept).
    """
    distinct = sorted(set(groups))
    order = np.random.default_rng(seed).permutation(len(distinct))
    n_val = int(round(val_fraction * len(distinct))) if len(distinct) > 1 else 0
    val = {distinct[i] for i in order[:max(n_val, 1 if len(distinct) > 1 else 0)]}
    g = np.asarray(groups)
    is_val = np.isin(g, sorted(val))
    return ({"train": np.flatnonzero(~is_val), "val": np.flatnonzero(is_val)},
            {"train": sorted(set(distinct) - val), "val": sorted(val)})


def build_method(method: str | type[OpenSetMethod], known: Sequence[str], *, profile: ProfileConfig,
                 modalities: Sequence[str], input_dim: int | None = None, encoders: dict[str, Any] | None = None,
                 options: dict[str, Any] | None = None, seed: int = 0,
                 blocks: Sequence[tuple[str, int]] | None = None) -> OpenSetMethod:
    """A method (a registered name or its class), its initial parameters drawn from ``seed`` (so
    equal seeds give equal runs): its config from the data (:func:`openmer.training.trial.method_config`)
    and the one factory :func:`openmer.training.trial.build_method`.

    A method on features gets ``blocks`` (the modality layout ``(name, width)`` of the
    concatenated features; without them one block of ``input_dim``) and the text encoder of
    ``encoders`` when there is one (Open-VCLIP's zero-shot class weights); a method on clips gets
    the profile, the modalities, the seed and ``encoders`` (loaded from the profile by its
    ``build`` when ``None``). The global RNG state is left as it was.

    Raises:
        ConfigError: an unknown method, a bad option, or a method that cannot run here.
    """
    cls = get_method(method) if isinstance(method, str) else method
    cfg = method_config(cls, options or {}, seed=seed, input_dim=input_dim, blocks=blocks or (), profile=profile,
                        modalities=modalities)
    return build_trial_method(cls, cfg, known, seed=seed, encoders=encoders)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_options(known: Sequence[str], acceptance: float, threshold_from: str) -> None:
    try:
        check_acceptance(acceptance)
    except ValueError as exc:
        raise ConfigError(f"--acceptance: {exc}") from None
    if threshold_from not in ("train", "val"):
        raise ConfigError("--threshold-from must be 'train' (the paper, HCEP Sec. 4.4.6) or 'val', "
                          f"not {threshold_from!r}")
    if len(known) < 2:
        raise ConfigError(f"--known needs at least 2 classes, got {list(known)}")
    dup = sorted({k for k in known if list(known).count(k) > 1})
    if dup:
        raise ConfigError(f"--known lists {dup} more than once")


def _parts(man: Manifest, partition: Any, seed: int) -> tuple[dict[str, np.ndarray], dict[str, list[str]], str]:
    """Train/val row indices of the known-class rows, the groups of each part and the rule used."""
    groups = [s.group or s.id for s in man]
    if man.has_splits:
        parts = man.split_indices()
        rule = "manifest split column"
    elif partition is not None:
        parts = partition_indices(groups, partition)
        return ({p: parts[p] for p in ("train", "val")},
                {"train": list(partition.train_groups), "val": list(partition.val_groups)}, "protocol")
    else:
        parts, split_groups = train_val_by_group(groups, val_fraction=0.2, seed=seed)
        return parts, split_groups, f"groups 80/20 (seed {seed})"
    return ({p: parts[p] for p in ("train", "val")},
            {p: sorted({groups[i] for i in parts[p]}) for p in ("train", "val")}, rule)


@locks_run_folder
def train(
    data: str | Path,
    known: Sequence[str],
    *,
    method: str = "hcep",
    profile: str | ProfileConfig = "offline",
    out: str | Path,
    train_config: TrainConfig | None = None,
    preset: str = DEFAULT_PRESET,
    modalities: Sequence[str] | None = None,
    method_options: dict[str, Any] | None = None,
    acceptance: float = DEFAULT_ACCEPTANCE,
    threshold_from: ThresholdSource = "train",
    resume: bool = False,
    overwrite: bool = False,
    allow_outside_root: bool = False,
    cache_dir: str | Path | None = None,
    progress: ProgressFn | None = None,
    augment: Augmentation | None = None,
) -> Path:
    """Train ``method`` on the known classes of ``data`` and write a run folder (:mod:`openmer.runs`).

    Rows of other classes are left out of training and validation (they are unknown); how many
    per label is logged and recorded in ``run.json``. Training and validation clips come from a
    built-in dataset's protocol groups, a manifest's ``split`` column (``test`` rows are left for
    ``openmer evaluate``), or a seeded 80/20 split of the manifest's groups. Every option is
    checked, and the output folder tested for writing, before any clip is decoded.

    Args:
        data: ``emodb``, ``meld`` or a manifest file.
        known: the known classes, in class-index order.
        method: a registered method name (``hcep``, or a feature method: ``msp``, ``arpl``, ``cssr``, ...).
        profile: ``offline``, ``paper`` or a :class:`ProfileConfig`.
        out: the run folder.
        train_config: the schedule and ``seed`` (initial parameters, shuffling and dropout all
            follow it: the same seed gives byte-identical ``model.safetensors``); default: the preset's.
        preset: ``"cpu"`` (default) or ``"paper"`` (:mod:`openmer.training.presets`): the schedule
            when ``train_config`` is not given, method options under ``method_options`` and encoder
            options the profile does not set; recorded in ``run.json`` (``preset``).
        modalities: defaults to the modalities present in the data that the profile encodes.
        method_options: extra fields of the method's config.
        acceptance: known-class acceptance rate of the deployable threshold, in (0, 1].
        threshold_from: ``"train"`` (HCEP Sec. 4.4.6) or ``"val"``: whose known-class
            confidences set the threshold.
        resume: continue the run in ``out`` (refused when it was started with other settings).
        overwrite: replace the run in ``out``.
        allow_outside_root: accept manifest paths that leave the manifest's folder.
        cache_dir: feature cache of the methods on features (default :func:`openmer.paths.default_cache_dir`).
        progress: called after each epoch (see :func:`openmer.training.fit`).
        augment: corruptions applied to the *training* clips only (``--augment``,
            :mod:`openmer.data.augment`): a method on clips reads them corrupted on the fly (a new
            draw per clip and epoch, seeded by ``train_config.seed``), a method on features trains
            on one augmented copy per clip, encoded once; validation clips and the clips the
            threshold is chosen on stay clean. Recorded in ``run.json`` (``augmentation``); loading
            or applying the run never applies it.

    Returns:
        The run folder.

    Raises:
        ConfigError: an invalid option, fewer than 2 known classes, a known class absent, an
            ``augment`` corruption of a modality the run does not read, ``out``
            holding a run without ``resume``/``overwrite``, ``threshold_from="val"`` without
            validation clips.
        CheckpointError: ``resume`` without a checkpoint of the same run (naming the field that differs).
        DataError: an invalid manifest (e.g. a path leaving its root), no training clip, or a
            known class without one.
        OutputError: ``out`` cannot be written (naming the file), or another ``openmer train``
            holds it (:func:`openmer.training.guards.locks_run_folder`).
    """
    out = Path(out)
    known = list(known)
    _check_options(known, acceptance, threshold_from)
    method_cls = get_method(method)  # resolved once; an unknown name fails here, listing the choices
    chosen = resolve_preset(preset, method_cls)
    cfg = train_config or chosen.train
    method_options = {**chosen.method_options, **(method_options or {})}
    prof = with_encoder_options(profile_config(profile) if isinstance(profile, str) else profile, chosen)

    manifest, partition = resolve_data(data, allow_outside_root=allow_outside_root)
    absent = [k for k in known if k not in manifest.classes]
    if absent:
        raise ConfigError(f"known class(es) {absent} do not occur in {data}; its classes are {manifest.classes}")
    for label, match in near_known_labels(manifest.labels, known).items():
        warnings.warn(OpenmerWarning(f"{manifest.source or data}: label {label!r} differs from the known class "
                                     f"{match!r} only in case or spaces; its rows are left out as an unknown class"),
                      stacklevel=2)
    # a video's audio track
    available = set(manifest.modalities) | ({"audio"} if "video" in manifest.modalities else set())
    mods = [m for m in (modalities or [m for m in MODALITIES if m in available]) if m in prof.specs()]
    if not mods:
        raise ConfigError(f"{data} has modalities {manifest.modalities}, none of which profile {prof.name!r} encodes")
    unread = [n for n in (augment.names if augment else ()) if CORRUPTIONS[n].modality not in mods]
    if unread:
        raise ConfigError(f"--augment {','.join(unread)} corrupts "
                          f"{' and '.join(sorted({CORRUPTIONS[n].modality for n in unread}))}, which this run does not "
                          f"read (its modalities: {', '.join(mods)})")
    if manifest.has_splits:
        manifest.split_indices()  # refuses a partly filled split column
    usable = [i for i, s in enumerate(manifest) if s.split != "test"]
    known_rows = [i for i in usable if manifest[i].label in known]
    dropped = dict(sorted(Counter(str(manifest[i].label) for i in usable if manifest[i].label not in known).items()))
    if dropped:
        logger.info("left out %d row(s) whose label is not a known class: %s", sum(dropped.values()),
                    ", ".join(f"{k} {v}" for k, v in dropped.items()))
    man = manifest.subset(known_rows)
    labels = np.array([known.index(str(s.label)) for s in man], dtype=np.int64)
    parts, split_groups, split_rule = _parts(man, partition, cfg.seed)
    if len(parts["train"]) == 0:
        raise DataError(manifest.source or data, f"no training clip of the known classes {known} ({split_rule})")
    check_known_classes_trained(manifest, known, labels[parts["train"]], split_rule, source=manifest.source or data)
    if threshold_from == "val" and len(parts["val"]) == 0:
        raise ConfigError(f"--threshold-from val: {data} gives no validation clip ({split_rule}); "
                          "use --threshold-from train")

    is_file = partition is None  # a manifest file (a built-in dataset comes with its protocol's partition)
    data_info = DataInfo(source=str(data), sha256=_sha256(Path(data)) if is_file else None, split_rule=split_rule,
                         n_rows=len(manifest), dropped_labels=dropped)
    augmentation = None if augment is None else {**augment.to_dict(), "seed": cfg.seed}
    identity = {"profile": prof.to_dict(), "modalities": mods,
                "data": {"sha256": data_info.sha256} if is_file else {"dataset": str(data)},
                **({"augmentation": augmentation} if augmentation else {})}
    prepare_out(out, resume=resume, overwrite=overwrite)
    if resume:
        check_resume(out, {"method": method, "known_classes": known, "num_classes": len(known), **identity}, cfg)

    encoders: dict[str, Any] = {}
    if method_cls.consumes == "features":
        encoders = cast(dict[str, Any], load_profile(prof, modalities=tuple(mods)))
        clips = ClipDataset(man, labels, mods, vision_preprocess=vision_preprocess(encoders))
        features = FeatureInputs.from_clips(clips, encoders, cache_dir=cache_dir or default_cache_dir())
        inputs: MethodInputs = features
        m = build_method(method_cls, known, profile=prof, modalities=mods, input_dim=features.input_dim,
                         options=method_options, seed=cfg.seed, blocks=features.blocks, encoders=encoders)
        batch_size = None  # scoring passes in the feature set's large batches
    else:  # a method on clips loads the encoders it needs from the profile
        m = build_method(method_cls, known, profile=prof, modalities=mods, options=method_options, seed=cfg.seed)
        clips = ClipDataset(man, labels, mods, vision_preprocess=vision_preprocess(m.input_encoders()))
        inputs = ClipInputs(clips)
        batch_size = cfg.batch_size
    sets = inputs.parts({"train": parts["train"], "val": parts["val"]})
    clean_train, val_set = sets["train"], sets["val"]
    train_set: Any = clean_train
    if augment is not None:  # the training rows only; val_set and clean_train (the threshold's) stay clean
        fi = inputs if isinstance(inputs, FeatureInputs) else None  # one augmented copy per clip, encoded once
        train_set, feats, present = augmented_training(
            clips, [s.group or s.id for s in man], parts["train"], augment, seed=cfg.seed,
            features=None if fi is None else fi.features, present=None if fi is None else fi.present,
            encoders=encoders)
        if fi is not None and feats is not None:
            train_set = FeatureInputs(feats, present, fi.modalities, fi.labels).parts(
                {"train": parts["train"]})["train"]
    # Deployable threshold from known-class training (paper) or validation clips, never test clips.
    rule = ThresholdRule(acceptance=acceptance, source=threshold_from)
    trial = run_trial(m, train_set, val_set, cfg, threshold=rule, batch_size=batch_size, run_dir=out, resume=resume,
                      progress=progress, identity=identity, clean_train=clean_train)
    result, threshold = trial.fit, trial.threshold
    m.threshold = threshold.value
    info = RunInfo(
        method=method, method_config=m.config.to_dict(), method_extra=m.extra_state(), known_classes=known,
        modalities=[str(m_) for m_ in mods], profile=prof.to_dict(), train_config=cfg.to_dict(), threshold=threshold,
        data=data_info,
        samples={p: [man[int(i)].id for i in parts[p]] for p in ("train", "val")}, groups=split_groups,
        best_epoch=result.best_epoch, select_metric=result.select_metric,
        n_train=len(parts["train"]), n_val=len(parts["val"]), preset=chosen.name, augmentation=augmentation,
    )
    save_run(out, m, info)
    write_model_card(out, notes=CardNotes())  # a fresh card: no held-out rows yet (`openmer evaluate` adds them)
    return out
