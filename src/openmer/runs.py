"""The run folder: the one module that writes and reads what ``openmer train`` leaves behind.

Layout (``docs/training.md``, "Run folders")::

    RUN/
      run.json                       RunInfo: method + config, known classes, modalities, encoders
                                     (profile name and encoder ids), training config, threshold and
                                     how it was chosen, data, training/validation sample ids, openmer version
      model.safetensors              the selected trainable tensors (prompts, heads, reciprocal points);
                                     its header repeats what defines the model (method, known classes,
                                     encoder ids, a hash of the method config), checked against run.json
      metrics.json                   validation history; the selected epoch and the selection metric
      last/latest                    names the newest complete checkpoint (for --resume)
      last/epoch-NNNN/model.safetensors         the tensors after epoch NNNN
      last/epoch-NNNN/trainer_state.safetensors optimiser / scheduler / best-epoch tensors
      last/epoch-NNNN/trainer_state.json        epoch, history, the rest of the trainer state,
                                     the training config, and what defines the run (method,
                                     classes, profile, data...)

Nothing in a run folder is ever unpickled: tensors are safetensors, everything else strict JSON
(no ``NaN``/``Infinity``). Every file is written to a temporary name and renamed
(:mod:`openmer.files`); a checkpoint is one unit (its folder is renamed into place, then
``last/latest`` switched: :func:`save_last`). ``run.json`` is written last, so its presence marks
a finished run.

A run folder never chooses which encoder files are loaded: it records its profile's name and
each encoder's id (kind + hub id, or ``${SHARED_DIR}/...`` for the shared models,
:func:`openmer.paths.portable_path`); the loader resolves the profile itself (the registered
profile of that name, or one the caller passes) and refuses a run whose encoder ids differ from
it (:func:`trusted_profile`). So a run folder and the shared folder can each be moved, and a
run folder cannot make openmer load a file from a path it names. Frozen encoders are referenced,
never copied. :func:`openmer.inference.load_run` turns a run folder into a loaded run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from pydantic import Field, ValidationError

from openmer import __version__
from openmer.config import OpenmerConfig
from openmer.errors import CheckpointError, ConfigError, OutputError
from openmer.files import (
    atomic_path,
    atomic_write_json,
    atomic_write_text,
    check_writable,
    io_failure,
    read_safetensors,
)
from openmer.methods.base import OpenSetMethod
from openmer.methods.threshold import Threshold, threshold_source
from openmer.paths import SHARED_MARK, portable_path

if TYPE_CHECKING:
    from openmer.backbones.specs import ProfileConfig

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"
WEIGHTS_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"
LAST_DIR = "last"
TRAINER_TENSORS = "trainer_state.safetensors"
TRAINER_STATE = "trainer_state.json"
#: ``last/latest`` names the newest complete checkpoint folder ``last/epoch-NNNN``
LATEST_FILE = "latest"
EPOCH_PREFIX = "epoch-"
#: the method description of openmer before run-folder schema 2; read (never written) to load such a folder
LEGACY_CONFIG_FILE = "config.json"
#: the pickled trainer state of openmer before run-folder schema 2; refused, never read
PICKLED_TRAINER_STATE = "trainer_state.pt"
RUN_SCHEMA_VERSION = 2
#: the header key of ``model.safetensors`` that says what defines the model (:func:`weights_header`)
WEIGHTS_HEADER_KEY = "openmer_run"
#: what that header says it is
WEIGHTS_FORMAT = "openmer run weights"
#: entries of a folder that make it a run folder
RUN_ENTRIES = (RUN_FILE, WEIGHTS_FILE, METRICS_FILE, LAST_DIR, LEGACY_CONFIG_FILE)
#: what ``--overwrite`` removes: the run's files and ``openmer evaluate``'s default output, nothing else
#: the run's model card and the rows it is written from (:mod:`openmer.model_card`)
CARD_FILE = "README.md"
CARD_ROWS_FILE = "card.json"
OVERWRITE_ENTRIES = (*RUN_ENTRIES, "eval", CARD_FILE, CARD_ROWS_FILE)

__all__ = [
    "LAST_DIR", "METRICS_FILE", "RUN_FILE", "WEIGHTS_FILE", "DataInfo", "LoadedMethod", "RunInfo", "check_resume",
    "checkpoint_dir",
    "holds_run", "load_last", "load_method", "method_identity", "prepare_out", "read_json", "read_run_info",
    "save_last", "save_metrics", "save_run", "trusted_profile", "weights_header",
]


# ----------------------------------------------------------------------------- what run.json holds
class DataInfo(OpenmerConfig):
    """Which data a run was trained on.

    Attributes:
        source: a built-in dataset name or the manifest path as given.
        sha256: of the manifest file (``None`` for a built-in dataset).
        split_rule: how training and validation clips were chosen: ``"protocol"`` (the built-in
            protocol's groups), ``"manifest split column"`` or ``"groups 80/20 (seed S)"``.
        n_rows: rows read; ``dropped_labels``: rows left out per label (not a known class).
    """

    source: str
    sha256: str | None = None
    split_rule: str
    n_rows: int = Field(ge=0)
    dropped_labels: dict[str, int] = Field(default_factory=dict)


class RunInfo(OpenmerConfig):
    """Everything ``run.json`` records; the single description of a run (see the module docstring).

    Every number is checked when read: the threshold finite, acceptances in (0, 1], counts >= 0
    (and ``run.json`` holds no ``NaN``/``Infinity`` at all, :func:`read_run_info`).
    """

    schema_version: int = RUN_SCHEMA_VERSION
    openmer_version: str = __version__
    method: str
    method_config: dict[str, Any]
    method_extra: dict[str, Any] = Field(default_factory=dict)
    known_classes: list[str] = Field(min_length=2)
    modalities: list[str] = Field(min_length=1)
    profile: dict[str, Any]
    train_config: dict[str, Any]
    threshold: Threshold
    data: DataInfo
    #: sample ids per part ("train", "val"): ``openmer evaluate`` refuses to score them as test clips
    samples: dict[str, list[str]] = Field(default_factory=dict)
    groups: dict[str, list[str]] = Field(default_factory=dict)
    #: classes added after training (``openmer enrol``, :mod:`openmer.discovery.enrol`), oldest first
    enrolments: list[dict[str, Any]] = Field(default_factory=list)
    best_epoch: int = Field(ge=-1)
    select_metric: str
    n_train: int = Field(ge=0)
    n_val: int = Field(ge=0)
    #: the training preset (``"cpu"``, ``"paper"``: :mod:`openmer.training.presets`); "" for older runs
    preset: str = ""
    #: the corruptions applied to the training clips (``openmer train --augment``: ``names``, ``p``,
    #: ``max_severity``, ``seed``; :mod:`openmer.data.augment`); ``None``: clean training. Loading or
    #: applying the run never applies it
    augmentation: dict[str, Any] | None = None

    def method_description(self) -> dict[str, Any]:
        """The dict :meth:`OpenSetMethod.from_description` takes."""
        return {"method": self.method, "config": self.method_config, "known_classes": self.known_classes,
                "threshold": self.threshold.value, "extra": self.method_extra}

    @property
    def seen_ids(self) -> set[str]:
        """Ids of every clip the run was trained or selected on."""
        return {i for part in self.samples.values() for i in part}


# ----------------------------------------------------------------------------- checked reading
def _refuse_constant(path: Path) -> Callable[[str], Any]:
    def refuse(token: str) -> Any:
        raise CheckpointError(f"{path}: not valid JSON ({token} is not a JSON number; openmer writes strict JSON)")
    return refuse


def _finite_float(path: Path) -> Callable[[str], float]:
    def parse(token: str) -> float:
        value = float(token)
        if not math.isfinite(value):
            raise CheckpointError(f"{path}: the number {token} is out of range (not finite)")
        return value
    return parse


def read_json(path: str | Path, *, what: str = "file", strict: bool = False) -> dict[str, Any]:
    """A JSON object from a file of a run folder.

    Args:
        strict: refuse ``NaN``, ``Infinity``, ``-Infinity`` (which Python's json accepts) and numbers
            too large to be finite (``1e999``).

    Raises:
        CheckpointError: ``PATH: not found`` / ``not valid JSON (...)`` / ``not a JSON object``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: {what} not found")
    try:
        text = path.read_text(encoding="utf-8")
        data = (json.loads(text, parse_constant=_refuse_constant(path), parse_float=_finite_float(path)) if strict
                else json.loads(text))
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"{path}: not valid JSON (not UTF-8 at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from exc
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: not a JSON object (found {type(data).__name__})")
    return data


def _map_specs(obj: Any, fn: Callable[[str], str]) -> Any:
    """``obj`` with ``fn`` applied to the ``name_or_path`` of every encoder spec inside it."""
    if isinstance(obj, dict):
        out = {k: _map_specs(v, fn) for k, v in obj.items()}
        if isinstance(out.get("name_or_path"), str) and "kind" in out:
            out["name_or_path"] = fn(out["name_or_path"])
        return out
    if isinstance(obj, list):
        return [_map_specs(v, fn) for v in obj]
    return obj


def _portable(obj: Any) -> Any:
    return _map_specs(obj, portable_path)


def encoder_id(name_or_path: str) -> str:
    """How a run folder names an encoder's weights: a hub id, or ``${SHARED_DIR}/<relative>`` for a
    folder of the shared models (an absolute path with a ``shared`` component, from a run folder of
    another machine, reads the same). A shared model folder that a model mirror names for a hub id
    (``${SHARED_DIR}/models/whisper-base-encoder``: :data:`openmer.backbones.resolve.MIRROR_ALIASES`)
    is that hub id, so run folders written before encoders were named by hub id still match their
    profile. An id to compare, never a path to open."""
    from openmer.backbones.resolve import MIRROR_ALIASES

    stored = portable_path(name_or_path)
    p = Path(stored)
    if p.is_absolute() and "shared" in p.parts:
        rel = p.parts[len(p.parts) - p.parts[::-1].index("shared"):]
        stored = f"{SHARED_MARK}/{'/'.join(rel)}"
    prefix = f"{SHARED_MARK}/models/"
    if stored.startswith(prefix):
        folder = stored[len(prefix):]
        for hub_id, aliases in MIRROR_ALIASES.items():
            if folder in (hub_id, hub_id.rsplit("/", 1)[-1], *aliases):
                return hub_id
    return stored


def _legacy_info(run_dir: Path, run: dict[str, Any]) -> RunInfo:
    """A run folder of openmer before schema 2 (``config.json`` + ``run.json``), checked for agreement."""
    cfg_path, run_path = run_dir / LEGACY_CONFIG_FILE, run_dir / RUN_FILE
    cfg = read_json(cfg_path, what="method config", strict=True)
    for key in ("method", "known_classes", "threshold"):
        if key in cfg and key in run and cfg[key] != run[key]:
            raise CheckpointError(
                f"{run_path}: says {key} {run[key]!r} but {cfg_path} says {cfg[key]!r}; the folder mixes two runs")
    try:
        return RunInfo(
            schema_version=1, openmer_version=str(run.get("openmer_version", "?")), method=cfg["method"],
            method_config=cfg["config"], method_extra=cfg.get("extra", {}), known_classes=cfg["known_classes"],
            modalities=run["modalities"], profile=run["profile"], train_config=run.get("train_config", {}),
            threshold=Threshold(value=float(cfg.get("threshold", run.get("threshold", "nan"))),
                                acceptance=float(run.get("acceptance", 0.9)),
                                source=threshold_source(run.get("threshold_source", "train"))),
            data=DataInfo(source=str(run.get("data", "?")), split_rule="unrecorded", n_rows=0),
            groups=run.get("groups", {}), best_epoch=int(run.get("best_epoch", -1)),
            select_metric=str(run.get("select_metric", "?")), n_train=int(run.get("n_train", 0)),
            n_val=int(run.get("n_val", 0)))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{run_path}: incomplete run description ({_problems(exc)})") from exc


def _problems(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'top level'}: {e['msg'].lower()}" for e in exc.errors()[:3])
    return str(exc)


def read_run_info(run_dir: str | Path) -> RunInfo:
    """The :class:`RunInfo` of a finished run folder, every field and number checked.

    Encoder ids stay as stored (``${SHARED_DIR}/...``, hub ids): they name encoders, and are
    never opened as paths (:func:`trusted_profile`).

    Raises:
        CheckpointError: ``run.json`` missing, not strict JSON (``NaN``...), incomplete or invalid
            (naming the file and the field: e.g. a non-finite threshold, an acceptance outside
            (0, 1]), or (an older run folder) disagreeing with ``config.json``.
    """
    run_dir = Path(run_dir)
    path = run_dir / RUN_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: not found; is {run_dir} a finished `openmer train` run?")
    raw = read_json(path, what="run description", strict=True)
    if "schema_version" not in raw and (run_dir / LEGACY_CONFIG_FILE).is_file():
        return _legacy_info(run_dir, raw)
    version = raw.get("schema_version")
    if isinstance(version, int) and version > RUN_SCHEMA_VERSION:
        raise CheckpointError(f"{path}: written by a newer openmer (schema {raw['schema_version']}, "
                              f"openmer {raw.get('openmer_version')}); this is openmer {__version__}")
    try:
        return RunInfo.model_validate(raw)
    except ValidationError as exc:
        raise CheckpointError(f"{path}: invalid run description ({_problems(exc)})") from exc


# ----------------------------------------------------------------------------- what defines the weights
def _config_sha256(method_config: Mapping[str, Any]) -> str:
    """SHA-256 of the method config as stored (portable encoder ids, keys sorted)."""
    text = json.dumps(_portable(dict(method_config)), sort_keys=True, allow_nan=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _encoder_ids(profile: Mapping[str, Any], modalities: list[str]) -> dict[str, str]:
    out = {}
    for m in modalities:
        spec = profile.get(m)
        if isinstance(spec, dict):
            out[m] = f"{spec.get('kind')}:{encoder_id(str(spec.get('name_or_path')))}"
    return out


def weights_header(info: RunInfo) -> dict[str, Any]:
    """What defines the model (method, known classes in order, encoder ids, SHA-256 of the method
    config), as ``model.safetensors`` carries it in its header: one key, :data:`WEIGHTS_HEADER_KEY`,
    holding sorted JSON (one key, so that the same run gives byte-identical files).
    :func:`load_method` refuses weights whose header disagrees with ``run.json``."""
    return {"format": WEIGHTS_FORMAT, "method": info.method, "known_classes": info.known_classes,
            "encoders": _encoder_ids(info.profile, info.modalities),
            "method_config_sha256": _config_sha256(info.method_config)}


def _header_metadata(info: RunInfo) -> dict[str, str]:
    return {WEIGHTS_HEADER_KEY: json.dumps(weights_header(info), sort_keys=True, allow_nan=False)}


def _check_header(path: Path, metadata: Mapping[str, str], info: RunInfo, source: Path) -> None:
    """Refuse weights whose header says another model than ``run.json`` (weights written before the
    header existed carry none and pass)."""
    if WEIGHTS_HEADER_KEY not in metadata:
        return
    try:
        header = json.loads(metadata[WEIGHTS_HEADER_KEY])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: its header ({WEIGHTS_HEADER_KEY}) is not valid JSON ({exc.msg})") from exc
    if not isinstance(header, dict) or header.get("format") != WEIGHTS_FORMAT:
        raise CheckpointError(f"{path}: its header ({WEIGHTS_HEADER_KEY}) is not an openmer run header")
    expected = weights_header(info)
    for key, words in (("method", "method"), ("known_classes", "known classes (in class-index order)"),
                       ("encoders", "encoders"), ("method_config_sha256", "method config (SHA-256)")):
        if header.get(key) != expected[key]:
            raise CheckpointError(
                f"{path}: was trained with {words} {json.dumps(header.get(key))} but {source} says "
                f"{json.dumps(expected[key])}; the two files do not belong together (copy the run folder again, "
                "do not edit run.json)")


def _check_finite(path: Path, state: Mapping[str, torch.Tensor]) -> None:
    """Refuse weights holding NaN or infinity, naming the tensor (a damaged or diverged run)."""
    for name, t in state.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise CheckpointError(f"{path}: tensor {name!r} holds {bad} non-finite value(s) (NaN or infinity) of "
                                  f"{t.numel()}; the weights are damaged or training diverged")


# ----------------------------------------------------------------------------- encoders of a run
def _needed_modalities(info: RunInfo, consumes: str) -> list[str]:
    """The encoders a run's method needs: its modalities; a method on clips also encodes the class
    names with the text encoder of its profile (HCEP's prompts, HESP's class sentences)."""
    needed = set(info.modalities)
    cfg_profile = info.method_config.get("profile")
    if consumes == "clips" and isinstance(cfg_profile, dict) and isinstance(cfg_profile.get("text"), dict):
        needed.add("text")
    return sorted(needed)


def _recorded_specs(info: RunInfo, modalities: list[str], source: Path) -> dict[str, dict[str, Any]]:
    """The encoder entries the run records for ``modalities`` (``profile``, and the method config's
    ``profile`` of a method on clips, which must agree with it)."""
    cfg_profile = info.method_config.get("profile")
    out: dict[str, dict[str, Any]] = {}
    for m in modalities:
        for where in (info.profile, cfg_profile if isinstance(cfg_profile, dict) else {}):
            rec = where.get(m)
            if rec is None:
                continue
            if not isinstance(rec, dict) or not isinstance(rec.get("name_or_path"), str):
                raise CheckpointError(f"{source}: the {m} encoder entry is not a {{kind, name_or_path}} object")
            if m in out and (out[m].get("kind"), encoder_id(out[m]["name_or_path"])) != \
                    (rec.get("kind"), encoder_id(rec["name_or_path"])):
                raise CheckpointError(f"{source}: profile and method_config.profile name different {m} encoders")
            out.setdefault(m, rec)
    return out


def trusted_profile(info: RunInfo, *, source: str | Path, profile: ProfileConfig | None = None,
                    consumes: str = "features") -> tuple[ProfileConfig, bool]:
    """The profile a run's encoders load from: resolved by openmer, never a path from the run folder.

    The run records its profile's name and each encoder's id (kind + :func:`encoder_id`). Its
    encoders load from, in this order:

    1. ``profile``, when the caller gives one (the profile the run was trained with, e.g.
       ``--profile FILE.json``): each encoder id the run needs must equal that profile's;
    2. the registered profile of the recorded name (``paper``, ``light``...), the same check;
    3. otherwise, when every id is a hub id, the ids themselves, resolved only from the model
       mirrors and the hub (never a folder: :func:`openmer.backbones.resolve.resolve_encoder` with
       ``allow_paths=False``).

    Every encoder the run records is checked, whether the method reads it or not (a later step,
    e.g. naming unknown clusters with the text encoder, may load it). The loader options the run
    recorded (e.g. ``prompt_entry``) are kept: settings, not paths.

    Returns:
        ``(profile, allow_paths)``: the profile of the run's encoders, and whether its
        names may be local paths (only when they come from a profile the caller gave or one
        registered in openmer, never from the run folder alone).

    Raises:
        CheckpointError: an encoder id that differs from the given or registered profile's, or a
            path where only a given profile may name one (one line naming ``source`` and the rule).
    """
    from openmer.backbones.factory import PROFILES, profile_config
    from openmer.backbones.resolve import is_hub_id
    from openmer.backbones.specs import ProfileConfig

    name = str(info.profile.get("name"))
    rule = ("openmer loads a run's encoders only from its profile, never from a path in the run folder; "
            "pass the profile it was trained with (--profile FILE.json)")
    cfg_profile = info.method_config.get("profile")
    present = [m for m in ("video", "audio", "text")
               if info.profile.get(m) is not None or (isinstance(cfg_profile, dict) and cfg_profile.get(m) is not None)]
    recorded = _recorded_specs(info, present, Path(source))
    if profile is None and name not in PROFILES:
        ids = {m: encoder_id(r["name_or_path"]) for m, r in recorded.items()}
        paths = {m: i for m, i in ids.items() if not is_hub_id(i)}
        if paths:
            m, where = next(iter(paths.items()))
            raise CheckpointError(f"{source}: its {m} encoder is named {where!r}, and {name!r} is not a profile of "
                                  f"this openmer ({', '.join(PROFILES)}); {rule}")
        data = {"name": name, **{m: {"kind": r.get("kind"), "name_or_path": ids[m], "options": r.get("options") or {}}
                                 for m, r in recorded.items()}}
        try:
            return ProfileConfig.model_validate(data), False
        except ValidationError as exc:
            raise CheckpointError(f"{source}: invalid encoder entries ({_problems(exc)})") from exc
    trusted = profile if profile is not None else profile_config(name)
    specs: dict[str, Any] = {}
    for m, rec in recorded.items():
        mine = getattr(trusted, m)
        theirs = (rec.get("kind"), encoder_id(rec["name_or_path"]))
        if mine is None or theirs != (mine.kind, encoder_id(mine.name_or_path)):
            have = "none" if mine is None else f"{mine.kind} {encoder_id(mine.name_or_path)}"
            raise CheckpointError(f"{source}: its {m} encoder ({theirs[0]} {theirs[1]}) is not profile "
                                  f"{trusted.name!r}'s on this machine ({have}); {rule}")
        specs[m] = {**mine.to_dict(), "options": dict(rec.get("options") or {})}
    try:
        return ProfileConfig.model_validate({"name": trusted.name, **specs}), True
    except ValidationError as exc:
        raise CheckpointError(f"{source}: invalid encoder options ({_problems(exc)})") from exc


class LoadedMethod(NamedTuple):
    """What :func:`load_method` reads from a run folder.

    Attributes:
        info: ``run.json``.
        method: the fitted method, in eval mode.
        encoders: modality -> frozen encoder of the method's input.
        profile: the trusted profile of the run's encoders (:func:`trusted_profile`; ``None`` when
            the caller gave the encoders).
        allow_paths: whether ``profile`` may name local folders (a profile given or registered).
    """

    info: RunInfo
    method: OpenSetMethod
    encoders: dict[str, Any]
    profile: ProfileConfig | None
    allow_paths: bool


def load_method(run_dir: str | Path, info: RunInfo | None = None, *, device: str | torch.device = "cpu",
                profile: ProfileConfig | None = None,
                encoders: Mapping[str, torch.nn.Module] | None = None) -> LoadedMethod:
    """The fitted method of a run folder and the encoders its input goes through.

    Order of the checks (each refusal names the file): ``run.json`` (strict JSON, every field and
    number), the method name, the encoders (:func:`trusted_profile`, unless ``encoders`` are
    given), ``model.safetensors`` (readable; its header agrees with ``run.json``; every tensor
    finite). Only then are the encoders loaded (from the trusted profile) and the method rebuilt.

    Args:
        run_dir: the run folder.
        info: its :class:`RunInfo` when already read.
        device: where the method and encoders go.
        profile: the profile the run was trained with (see :func:`trusted_profile`).
        encoders: frozen encoders already loaded by the caller (modality -> encoder), used instead of
            the profile's (e.g. a service holding them, tests with tiny encoders).

    Returns:
        :class:`LoadedMethod`: the method fitted and in eval mode, the encoders of its input (the
        profile's for a method on features, the method's own for one on clips), and the trusted
        profile the run's other encoders load from.

    Raises:
        CheckpointError: as above.
        EncoderNotFound, UnsafeWeightsError: the profile's encoders cannot be found or are pickles.
    """
    from openmer.backbones.factory import load_profile
    from openmer.methods.registry import get_method

    run_dir = Path(run_dir)
    info = info or read_run_info(run_dir)
    source = run_dir / RUN_FILE
    try:
        method_cls = get_method(info.method)
    except ConfigError as exc:
        raise CheckpointError(f"{source}: {exc}") from exc
    trusted, allow_paths = None, False
    if encoders is None:
        trusted, allow_paths = trusted_profile(info, source=source, profile=profile, consumes=method_cls.consumes)
        missing = [m for m in info.modalities if m not in trusted.specs()]
        if missing:
            raise CheckpointError(f"{source}: modalities {missing} have no encoder in its profile {trusted.name!r}")
    weights = run_dir / WEIGHTS_FILE
    state, header = read_safetensors(weights)
    _check_header(weights, header, info, source)
    _check_finite(weights, state)
    if trusted is not None:
        needed = tuple(m for m in _needed_modalities(info, method_cls.consumes) if m in trusted.specs())
        loaded = load_profile(trusted, modalities=needed, device=device, allow_paths=allow_paths)
        held: dict[str, Any] = {str(m): e for m, e in loaded.items()}
    else:
        held = dict(encoders or {})
    description = info.method_description()
    if method_cls.consumes == "features":
        method = method_cls.from_description(description, state, weights=weights, source=source, device=device)
        return LoadedMethod(info, method, {m: e for m, e in held.items() if m in info.modalities}, trusted, allow_paths)
    method = method_cls.from_description(description, state, weights=weights, source=source, device=device,
                                         encoders=held)
    return LoadedMethod(info, method, method.input_encoders(), trusted, allow_paths)


# ----------------------------------------------------------------------------- writing a run
def holds_run(folder: str | Path) -> list[str]:
    """The run-folder entries (``run.json``, ``last/``...) that ``folder`` holds; empty if none."""
    folder = Path(folder)
    return [e for e in RUN_ENTRIES if (folder / e).exists()] if folder.is_dir() else []


def prepare_out(out: str | Path, *, resume: bool = False, overwrite: bool = False) -> Path:
    """Make ``out`` ready for a run, refusing to replace an existing one by accident.

    Args:
        out: the run folder.
        resume: continue the run in ``out`` (it must hold ``last/``).
        overwrite: replace the run in ``out`` (its run files are removed; other files stay).

    Raises:
        ConfigError: ``out`` holds a run and neither ``resume`` nor ``overwrite`` is given, or both are.
        CheckpointError: ``resume`` and ``out`` holds no checkpoint.
        OutputError: ``out`` cannot be written.
    """
    out = Path(out)
    if resume and overwrite:
        raise ConfigError("--resume continues a run and --overwrite replaces it; give one of them")
    found = holds_run(out)
    if resume:
        if not (out / LAST_DIR).is_dir():
            raise CheckpointError(f"{out / LAST_DIR}: no checkpoint to resume from "
                                  f"(expected {WEIGHTS_FILE} and {TRAINER_STATE})")
    elif found and not overwrite:
        raise ConfigError(f"{out}: already holds a run ({', '.join(found)}); pass --resume to continue it "
                          "or --overwrite to replace it")
    check_writable(out)
    if overwrite:
        for target in (out / e for e in OVERWRITE_ENTRIES):
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    return out


def save_run(run_dir: str | Path, method: OpenSetMethod, info: RunInfo) -> Path:
    """Write the selected weights (their header: :func:`weights_header`) and ``run.json`` (strict
    JSON, encoder paths as portable ids; last, so that it marks a finished run).

    Raises:
        ValueError: ``info`` holds a non-finite number (nothing is written).
        OutputError: a file cannot be written.
    """
    run_dir = Path(run_dir)
    data = info.to_dict()
    data.update(profile=_portable(data["profile"]), method_config=_portable(data["method_config"]))
    json.dumps(data, allow_nan=False)  # a NaN or infinity is refused here, before any file is written
    portable = RunInfo.model_validate(data)
    method.save_weights(run_dir / WEIGHTS_FILE, metadata=_header_metadata(portable))
    atomic_write_json(run_dir / RUN_FILE, data, allow_nan=False)
    return run_dir


def save_metrics(run_dir: str | Path, select_metric: str, best_epoch: int, history: list[dict[str, float]]) -> Path:
    """``metrics.json``: the validation history, the selected epoch and the metric that selected it (NaN -> null)."""
    clean = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in h.items()} for h in history]
    return atomic_write_json(Path(run_dir) / METRICS_FILE,
                             {"select_metric": select_metric, "best_epoch": best_epoch, "history": clean},
                             allow_nan=False)


# ----------------------------------------------------------------------------- last/: resume
def method_identity(method: OpenSetMethod) -> dict[str, Any]:
    """What a resumed run must share with the checkpoint: method, known classes (and order), class count, config."""
    return {"method": method.name, "known_classes": list(method.known_classes), "num_classes": method.num_classes,
            "method_config": method.config.to_dict()}


def _split(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON-able ``obj`` with every tensor moved into ``tensors`` (replaced by ``{"__tensor__": key}``)."""
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and "__tensor__" not in obj:
            return {k: _split(v, tensors) for k, v in obj.items()}
        return {"__items__": [[k, _split(v, tensors)] for k, v in obj.items()]}  # e.g. optimizer state: int keys
    if isinstance(obj, tuple):
        return {"__tuple__": [_split(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [_split(v, tensors) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"trainer state holds a {type(obj).__name__}, which has no safe file format")


def _join(obj: Any, tensors: Mapping[str, torch.Tensor], path: Path) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            try:
                return tensors[obj["__tensor__"]]
            except KeyError:
                raise CheckpointError(f"{path}: refers to tensor {obj['__tensor__']!r}, absent from "
                                      f"{TRAINER_TENSORS}; the two files are from different epochs") from None
        if "__items__" in obj:
            return {k: _join(v, tensors, path) for k, v in obj["__items__"]}
        if "__tuple__" in obj:
            return tuple(_join(v, tensors, path) for v in obj["__tuple__"])
        return {k: _join(v, tensors, path) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join(v, tensors, path) for v in obj]
    return obj


def _load_tensors(path: Path, epoch: Any) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, checked to belong to ``epoch`` (the epoch of ``trainer_state.json``)."""
    tensors, meta = read_safetensors(path)
    if meta.get("epoch") != str(epoch):
        raise CheckpointError(f"{path}: holds epoch {meta.get('epoch')} but {TRAINER_STATE} epoch {epoch} (a write "
                              "was interrupted between the two); start again with --overwrite")
    return tensors


def _epoch_folders(last: Path) -> list[Path]:
    """The complete checkpoint folders ``last/epoch-NNNN`` (renamed into place only once written), newest first."""
    found = [p for p in last.glob(f"{EPOCH_PREFIX}*") if p.is_dir() and p.name[len(EPOCH_PREFIX):].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(EPOCH_PREFIX):]), reverse=True)


def checkpoint_dir(run_dir: str | Path) -> Path | None:
    """The folder of the newest complete checkpoint of a run folder (``None`` when there is none).

    ``last/latest`` names it (written atomically after the folder was complete); when that file
    is missing or names no folder, the newest ``last/epoch-NNNN``; a run folder of openmer before
    this layout keeps its files in ``last/`` itself.
    """
    last = Path(run_dir) / LAST_DIR
    try:
        name = (last / LATEST_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        name = ""
    if name.startswith(EPOCH_PREFIX) and "/" not in name and (last / name / TRAINER_STATE).is_file():
        return last / name
    folders = [p for p in _epoch_folders(last) if (p / TRAINER_STATE).is_file()]
    if folders:
        if name:
            logger.warning("%s names %r, which is not a checkpoint; using %s", last / LATEST_FILE, name, folders[0])
        return folders[0]
    return last if (last / TRAINER_STATE).is_file() else None


def save_last(run_dir: str | Path, method: OpenSetMethod, state: Mapping[str, Any],
              identity: Mapping[str, Any]) -> Path:
    """Write the checkpoint of a finished epoch as one unit: ``last/epoch-NNNN/`` (the method's
    tensors, the trainer state as tensors + JSON, the run's identity), then ``last/latest``.

    The three files go to a hidden folder, which is renamed to ``epoch-NNNN`` once complete; then
    ``last/latest`` is replaced (one atomic rename) to name it, and only then are older
    checkpoints removed. A kill at any moment leaves the previous checkpoint or the new one whole.

    Returns:
        The new checkpoint folder.

    Raises:
        OutputError: the checkpoint cannot be written (full disk, read-only folder...): the message
            names ``last/`` and the file, and says which checkpoint is kept; nothing partial stays.
    """
    from safetensors.torch import save_file

    last = Path(run_dir) / LAST_DIR
    finished = int(state["epoch"]) + 1
    name = f"{EPOCH_PREFIX}{finished:04d}"
    kept = checkpoint_dir(run_dir)
    partial = last / f".{name}.partial"
    tensors: dict[str, torch.Tensor] = {}
    body = _split(dict(state), tensors)
    stamp = {"openmer": "trainer state", "epoch": str(state.get("epoch"))}
    try:
        shutil.rmtree(partial, ignore_errors=True)  # left by a killed run
        method.save_weights(partial / WEIGHTS_FILE, metadata=stamp)
        with atomic_path(partial / TRAINER_TENSORS) as tmp:
            save_file(tensors, str(tmp), metadata=stamp)
        atomic_write_json(partial / TRAINER_STATE, {"format": "openmer trainer state", "version": 1,
                                                    "run": _portable(dict(identity)), "state": body})
        if (last / name).exists():  # written, never named by latest (killed before the switch)
            shutil.rmtree(last / name)
        os.replace(partial, last / name)
        atomic_write_text(last / LATEST_FILE, name + "\n")
    except BaseException as exc:
        shutil.rmtree(partial, ignore_errors=True)
        reason = f"{exc.path.name}: {exc.reason}" if isinstance(exc, OutputError) else io_failure(exc)
        if reason is None:
            raise
        keeps = (f"the checkpoint of epoch {_epoch_of(kept)} ({kept.name}) is kept for --resume" if kept is not None
                 else "there is no earlier checkpoint")
        raise OutputError(last, f"cannot write the checkpoint of epoch {finished} ({reason}); {keeps}") from exc
    for old in [*_epoch_folders(last), *last.glob(f".{EPOCH_PREFIX}*.partial")]:
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    for legacy in (WEIGHTS_FILE, TRAINER_TENSORS, TRAINER_STATE):  # the layout before checkpoint folders
        (last / legacy).unlink(missing_ok=True)
    return last / name


def _epoch_of(checkpoint: Path) -> str:
    try:
        return str(int(read_json(checkpoint / TRAINER_STATE)["state"]["epoch"]) + 1)
    except (CheckpointError, KeyError, TypeError, ValueError):
        return "?"


def _stored_identity(run_dir: Path) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    last = run_dir / LAST_DIR
    where = checkpoint_dir(run_dir)
    if where is None and (last / PICKLED_TRAINER_STATE).is_file():
        raise CheckpointError(
            f"{last / PICKLED_TRAINER_STATE}: a pickled trainer state (openmer before run-folder schema 2). openmer "
            "never unpickles a file from a run folder, since unpickling can run any code; start the run again "
            "with --overwrite")
    if where is None:
        raise CheckpointError(f"{last}: no checkpoint to resume from (expected {LATEST_FILE} naming a folder "
                              f"{EPOCH_PREFIX}NNNN with {WEIGHTS_FILE}, {TRAINER_TENSORS} and {TRAINER_STATE})")
    path = where / TRAINER_STATE
    raw = read_json(path, what="trainer state")
    if not isinstance(raw.get("run"), dict) or not isinstance(raw.get("state"), dict):
        raise CheckpointError(f"{path}: not an openmer trainer state (no 'run' and 'state' objects)")
    return path, raw["run"], raw["state"]


def check_resume(run_dir: str | Path, identity: Mapping[str, Any], train_config: Any = None) -> None:
    """Refuse to resume the run in ``run_dir`` with other settings than it was started with.

    Args:
        identity: field -> value for the run about to start (e.g. ``known_classes``, ``profile``,
            ``data``); each is compared with the value the checkpoint recorded.
        train_config: the :class:`~openmer.training.TrainConfig` about to be used; compared with
            the checkpoint's (:meth:`~openmer.training.TrainConfig.resume_differences`: only
            ``epochs`` and ``num_workers`` may change). ``None``: not compared.

    Raises:
        CheckpointError: no checkpoint, a pickled one (refused unread), or a field that differs
            (the message names it and both values).
    """
    path, stored, body = _stored_identity(Path(run_dir))
    current = _portable(dict(identity))
    for key, value in current.items():
        if key not in stored:
            raise CheckpointError(f"{path}: cannot resume: this checkpoint does not record {key}; "
                                  "start again with --overwrite")
        if json.loads(json.dumps(value)) != stored[key]:
            raise CheckpointError(
                f"{path}: cannot resume: {key} differs (the run was started with {_short(stored[key])}, now "
                f"{_short(value)}); resume with the same options, or use another --out or --overwrite")
    if train_config is not None:
        started = body.get("config")
        if not isinstance(started, dict):
            raise CheckpointError(f"{path}: cannot resume: this checkpoint does not record its training settings; "
                                  "start again with --overwrite")
        changed = train_config.resume_differences(started)
        if changed:
            raise CheckpointError(
                f"{path}: cannot resume: the training settings differ from the run's ({'; '.join(changed)}); a "
                "resumed run continues the same training, so only epochs and num_workers may change: resume "
                "with the run's settings, or use another --out or --overwrite")


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_last(run_dir: str | Path, method: OpenSetMethod, identity: Mapping[str, Any],
              train_config: Any = None) -> dict[str, Any]:
    """Load the newest complete checkpoint (:func:`checkpoint_dir`) into ``method`` and return the
    trainer state, after :func:`check_resume`.

    Raises:
        CheckpointError: as :func:`check_resume`, or a missing/corrupt file (named).
    """
    run_dir = Path(run_dir)
    check_resume(run_dir, identity, train_config)
    path, _, body = _stored_identity(run_dir)
    where = path.parent
    weights = _load_tensors(where / WEIGHTS_FILE, body.get("epoch"))
    expected = method.trainable_state_dict()
    if set(weights) != set(expected) or any(tuple(weights[k].shape) != tuple(expected[k].shape) for k in expected):
        raise CheckpointError(f"{where / WEIGHTS_FILE}: does not match the {type(method).__name__} being resumed")
    method.load_state_dict(weights, strict=False)
    return _join(body, _load_tensors(where / TRAINER_TENSORS, body.get("epoch")), path)
