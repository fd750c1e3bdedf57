"""``openmer train``: train one method on a dataset's known classes and save a run folder.

A run folder holds ``config.json`` + ``model.safetensors`` (the method, see
:meth:`OpenSetMethod.save`), ``run.json`` (data, known classes, modalities, profile, training
config, deployable threshold, selected epoch, openmer version), ``metrics.json`` (validation
history) and ``last/`` (the per-epoch checkpoint that ``--resume`` continues from).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from openmer import UNKNOWN, __version__
from openmer.backbones.factory import ProfileConfig, load_profile, profile_config
from openmer.data.clips import ClipDataset
from openmer.data.feature_cache import encode_features
from openmer.data.manifest import MODALITIES, Manifest
from openmer.data.tensors import FeatureDataset
from openmer.errors import ConfigError, DataError
from openmer.methods.base import OpenSetMethod
from openmer.methods.feature_method import feature_blocks
from openmer.methods.registry import get_method
from openmer.protocol import GroupPartition, load_protocol, partition_indices
from openmer.training.config import TrainConfig
from openmer.training.engine import ProgressFn, fit

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"
DEFAULT_ACCEPTANCE = 0.90


def default_cache_dir() -> Path:
    """``$OPENMER_CACHE`` or ``~/.cache/openmer`` (encoder features)."""
    import os

    return Path(os.environ.get("OPENMER_CACHE", Path.home() / ".cache" / "openmer")) / "features"


def resolve_data(data: str | Path) -> tuple[Manifest, GroupPartition | None]:
    """A built-in dataset name (``emodb``, ``meld``) or a manifest file.

    Returns:
        ``(manifest, partition)``: the built-in protocol's group partition, or ``None`` for a
        user manifest (then :func:`train` partitions its groups 80/20 into train/val).

    Raises:
        ConfigError: ``ravdess`` (features only, no media: use ``openmer benchmark ravdess``).
        DataError / SharedDataMissing: the manifest or the shared data is missing.
    """
    from openmer.data.builtin import load_emodb, load_meld

    name = str(data)
    if name == "emodb":
        return load_emodb(), load_protocol("emodb").partition
    if name == "meld":
        return load_meld(split="all"), load_protocol("meld").partition
    if name == "ravdess":
        raise ConfigError("the shared RAVDESS copy holds precomputed features, not media: use `openmer benchmark ravdess`")
    path = Path(data)
    if not path.exists():
        raise DataError(path, "no such manifest file (and not a built-in dataset name: emodb, meld)")
    return Manifest.read(path).validate(), None


def vision_preprocess(encoders: dict[str, Any]):
    """The vision encoder's ``preprocess(frames, path)``, or ``None`` without a vision encoder."""
    enc = encoders.get("video")
    return None if enc is None else enc.preprocess


def train_val_by_group(groups: Sequence[str], *, val_fraction: float = 0.2, seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
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


def choose_threshold(known_confidence: np.ndarray, acceptance: float = DEFAULT_ACCEPTANCE) -> float:
    """Deployable threshold from known-class data only (HCEP Sec. 4.4.6).

    The threshold accepts (``confidence >= threshold``) a fraction ``acceptance`` of the given
    known-class confidences (training or validation samples, never test). The paper reports that
    known-acceptance rates of 0.60-0.66 worked best on MAFW; openmer's default is 0.90.

    Raises:
        ValueError: ``acceptance`` outside (0, 1] or no confidence given.
    """
    if not 0 < acceptance <= 1:
        raise ValueError(f"acceptance must be in (0, 1], got {acceptance}")
    conf = np.asarray(known_confidence, dtype=np.float64)
    if conf.size == 0:
        raise ValueError("no known-class confidence to choose a threshold from")
    return float(np.quantile(conf, 1.0 - acceptance, method="lower"))


def build_method(method: str, known: Sequence[str], *, profile: ProfileConfig, modalities: Sequence[str],
                 input_dim: int | None = None, encoders: dict[str, Any] | None = None,
                 options: dict[str, Any] | None = None, seed: int = 0,
                 blocks: Sequence[tuple[str, int]] | None = None) -> OpenSetMethod:
    """A registered method for the given encoders (HCEP) or for their concatenated features (baselines).

    ``blocks``: the feature methods' modality layout of the concatenated features (``(name, width)``).
    """
    cls = get_method(method)
    options = dict(options or {})
    if method == "hcep":
        cfg = cls.config_class.from_dict({"profile": profile.to_dict(), "modalities": list(modalities), "seed": seed, **options})
        return cls.build(cfg, known, encoders=encoders)
    cfg = cls.config_class.from_dict({"input_dim": input_dim, **({"blocks": list(blocks)} if blocks else {}), **options})
    return cls(cfg, known)


def train(
    data: str | Path,
    known: Sequence[str],
    *,
    method: str = "hcep",
    profile: str | ProfileConfig = "offline",
    out: str | Path,
    train_config: TrainConfig | None = None,
    modalities: Sequence[str] | None = None,
    method_options: dict[str, Any] | None = None,
    acceptance: float = DEFAULT_ACCEPTANCE,
    resume: bool = False,
    cache_dir: str | Path | None = None,
    progress: ProgressFn | None = None,
) -> Path:
    """Train ``method`` on the known classes of ``data`` and write a run folder.

    Samples of other classes are removed from training and validation (they are unknown). With
    a built-in dataset, training and validation use the protocol's train/val groups (the test
    groups are left for ``openmer evaluate``); with a manifest, its groups are split 80/20.

    Args:
        data: ``emodb``, ``meld`` or a manifest file.
        known: the known classes, in class-index order.
        method: a registered method name (``hcep``, or a feature method: ``msp``, ``arpl``, ``cssr``, ...).
        profile: ``offline``, ``paper`` or a :class:`ProfileConfig`.
        out: the run folder.
        modalities: defaults to the modalities present in the data that the profile encodes.
        acceptance: known-class acceptance rate for the deployable threshold.

    Returns:
        The run folder.

    Raises:
        ConfigError: unknown method/profile, fewer than 2 known classes, a known class absent.
    """
    out = Path(out)
    cfg = train_config or TrainConfig()
    manifest, partition = resolve_data(data)
    known = list(known)
    absent = [k for k in known if k not in manifest.classes]
    if absent:
        raise ConfigError(f"known class(es) {absent} do not occur in {data}; its classes are {manifest.classes}")
    prof = profile_config(profile) if isinstance(profile, str) else profile
    available = set(manifest.modalities) | ({"audio"} if "video" in manifest.modalities else set())  # a video's audio track
    mods = [m for m in (modalities or [m for m in MODALITIES if m in available]) if m in prof.specs()]
    if not mods:
        raise ConfigError(f"{data} has modalities {manifest.modalities}, none of which profile {prof.name!r} encodes")
    known_rows = [i for i, s in enumerate(manifest) if s.label in known]
    man = manifest.subset(known_rows)
    labels = np.array([known.index(s.label) for s in man], dtype=np.int64)
    groups = [s.group or s.id for s in man]
    if partition is not None:
        parts = partition_indices(groups, partition)
        split_groups = {"train": list(partition.train_groups), "val": list(partition.val_groups)}
    else:
        parts, split_groups = train_val_by_group(groups, val_fraction=0.2, seed=cfg.seed)
    encoders = load_profile(prof, modalities=tuple(set(mods) | ({"text"} if method == "hcep" else set())))
    clips = ClipDataset(man, labels, mods, vision_preprocess=vision_preprocess(encoders))
    if method == "hcep":
        train_set, val_set = clips.subset(parts["train"]), clips.subset(parts["val"])
        m = build_method(method, known, profile=prof, modalities=mods, encoders=encoders, options=method_options, seed=cfg.seed)
        val_batches = val_set.batches(cfg.batch_size) if len(val_set) else None
    else:
        feats, _ = encode_features(clips, encoders, cache_dir=cache_dir or default_cache_dir())
        x = np.concatenate([feats[mm] for mm in mods], axis=1)
        train_set = FeatureDataset(x[parts["train"]], labels[parts["train"]])
        val_set = FeatureDataset(x[parts["val"]], labels[parts["val"]])
        m = build_method(method, known, profile=prof, modalities=mods, input_dim=x.shape[1], options=method_options,
                         blocks=feature_blocks(feats, mods))
        val_batches = val_set.batches() if len(val_set) else None
    result = fit(m, train_set, val_batches, cfg, run_dir=out, resume=resume, progress=progress)
    # Threshold from known-class validation data (training data when there is no validation split).
    ref = val_batches if val_batches else (train_set.batches() if hasattr(train_set, "batches") else None)
    conf = m.score_all(ref).confidence.numpy()
    m.threshold = choose_threshold(conf, acceptance)
    m.save(out)
    run = {
        "openmer_version": __version__, "data": str(data), "method": method, "known_classes": known,
        "modalities": mods, "profile": prof.to_dict(), "train_config": cfg.to_dict(),
        "groups": split_groups, "threshold": m.threshold, "acceptance": acceptance,
        "threshold_source": "validation" if val_batches else "training",
        "best_epoch": result.best_epoch, "select_metric": result.select_metric,
        "n_train": len(parts["train"]), "n_val": len(parts["val"]),
    }
    (out / RUN_FILE).write_text(json.dumps(run, indent=2) + "\n", encoding="utf-8")
    return out


def unknown_label_vector(labels: Sequence[str | None], known: Sequence[str]) -> np.ndarray:
    """Class index per label, ``UNKNOWN`` (-1) for any other label."""
    return np.array([known.index(lb) if lb in known else UNKNOWN for lb in labels], dtype=np.int64)
