"""The run folder: the one module that writes and reads what ``openmer train`` leaves behind.

Layout (``docs/training.md``, "Run folders")::

    RUN/
      run.json                       RunInfo: method + config, known classes, modalities, encoders
                                     (profile), training config, threshold and how it was chosen,
                                     data, training/validation sample ids, openmer version
      model.safetensors              the selected trainable tensors (prompts, heads, reciprocal points)
      metrics.json                   validation history; the selected epoch and the selection metric
      last/latest                    names the newest complete checkpoint (for --resume)
      last/epoch-NNNN/model.safetensors         the tensors after epoch NNNN
      last/epoch-NNNN/trainer_state.safetensors optimiser / scheduler / best-epoch tensors
      last/epoch-NNNN/trainer_state.json        epoch, history, the rest of the trainer state,
                                     the training config, and what defines the run (method,
                                     classes, profile, data...)

Nothing in a run folder is ever unpickled: tensors are safetensors, everything else JSON. Every
file is written to a temporary name and renamed (:mod:`openmer.files`); a checkpoint is one unit
(its folder is renamed into place, then ``last/latest`` switched: :func:`save_last`). ``run.json``
is written last, so its presence marks a finished run. Paths of encoder weights inside the shared
folder are stored as ``${SHARED_DIR}/...`` (:func:`openmer.paths.portable_path`), so a run folder
and the shared folder can each be moved. Frozen encoders are referenced, never copied.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, ValidationError

from openmer import __version__
from openmer.config import OpenmerConfig
from openmer.errors import CheckpointError, ConfigError, OutputError
from openmer.files import (
    atomic_path, atomic_write_json, atomic_write_text, check_writable, io_failure, read_safetensors,
)
from openmer.methods.base import CONFIG_FILE, WEIGHTS_FILE, OpenSetMethod
from openmer.methods.threshold import (
    DEFAULT_ACCEPTANCE, PAPER_ACCEPTANCE_RANGE, THRESHOLD_RULE, choose_threshold, thresholds_at,
)
from openmer.paths import portable_path, resolve_portable

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
LAST_DIR = "last"
TRAINER_TENSORS = "trainer_state.safetensors"
TRAINER_STATE = "trainer_state.json"
#: ``last/latest`` names the newest complete checkpoint folder ``last/epoch-NNNN``
LATEST_FILE = "latest"
EPOCH_PREFIX = "epoch-"
#: the pickled trainer state of openmer before run-folder schema 2; refused, never read
PICKLED_TRAINER_STATE = "trainer_state.pt"
RUN_SCHEMA_VERSION = 2
#: entries of a folder that make it a run folder
RUN_ENTRIES = (RUN_FILE, WEIGHTS_FILE, METRICS_FILE, LAST_DIR, CONFIG_FILE)
#: what ``--overwrite`` removes: the run's files and ``openmer evaluate``'s default output, nothing else
OVERWRITE_ENTRIES = (*RUN_ENTRIES, "eval")

__all__ = [
    "LAST_DIR", "METRICS_FILE", "RUN_FILE", "DataInfo", "LoadedRun", "RunInfo", "ThresholdInfo",
    "check_resume", "checkpoint_dir", "holds_run", "load_last", "load_run", "method_identity", "prepare_out",
    "read_json", "read_run_info", "save_last", "save_metrics", "save_run",
]


# ----------------------------------------------------------------------------- what run.json holds
class AcceptancePoint(OpenmerConfig):
    """A threshold that accepts ``acceptance`` of the threshold source's known-class clips."""

    acceptance: float = Field(gt=0, le=1)
    threshold: float


class ThresholdInfo(OpenmerConfig):
    """The deployable threshold and how it was chosen (HCEP Sec. 4.4.6, :mod:`openmer.methods.threshold`).

    Attributes:
        value: accept a clip as known when ``confidence >= value``.
        acceptance: the fraction of the source's known-class clips it accepts.
        source: ``"train"`` (the paper) or ``"val"``: which known-class clips it was chosen on.
        rule: the rule in words.
        at_acceptance: thresholds from the same clips at other acceptance targets (the paper's
            0.60-0.66 and openmer's default), reported by ``openmer evaluate``.
    """

    value: float
    acceptance: float = Field(gt=0, le=1)
    source: Literal["train", "val"]
    rule: str = ""
    at_acceptance: list[AcceptancePoint] = Field(default_factory=list)

    @classmethod
    def from_confidences(cls, known_confidence: np.ndarray, acceptance: float,
                         source: Literal["train", "val"]) -> ThresholdInfo:
        """The threshold that accepts ``acceptance`` of ``known_confidence`` (the known-class clips of
        ``source``; :func:`~openmer.methods.threshold.choose_threshold`), and the thresholds at the
        paper's 0.60-0.66, openmer's default 0.90 and ``acceptance`` from the same clips.

        Raises:
            ValueError: an acceptance outside (0, 1], or no confidence.
        """
        targets = sorted({*PAPER_ACCEPTANCE_RANGE, DEFAULT_ACCEPTANCE, float(acceptance)})
        return cls(value=choose_threshold(known_confidence, acceptance), acceptance=acceptance, source=source,
                   rule=THRESHOLD_RULE, at_acceptance=thresholds_at(known_confidence, targets))


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
    """Everything ``run.json`` records; the single description of a run (see the module docstring)."""

    schema_version: int = RUN_SCHEMA_VERSION
    openmer_version: str = __version__
    method: str
    method_config: dict[str, Any]
    method_extra: dict[str, Any] = Field(default_factory=dict)
    known_classes: list[str] = Field(min_length=2)
    modalities: list[str] = Field(min_length=1)
    profile: dict[str, Any]
    train_config: dict[str, Any]
    threshold: ThresholdInfo
    data: DataInfo
    #: sample ids per part ("train", "val"): ``openmer evaluate`` refuses to score them as test clips
    samples: dict[str, list[str]] = Field(default_factory=dict)
    groups: dict[str, list[str]] = Field(default_factory=dict)
    #: classes added after training (``openmer enrol``, :mod:`openmer.discovery.enrol`), oldest first
    enrolments: list[dict[str, Any]] = Field(default_factory=list)
    best_epoch: int
    select_metric: str
    n_train: int = Field(ge=0)
    n_val: int = Field(ge=0)
    #: the training preset (``"cpu"``, ``"paper"``: :mod:`openmer.training.presets`); "" for older runs
    preset: str = ""

    def method_description(self) -> dict[str, Any]:
        """The dict :meth:`OpenSetMethod.from_description` takes."""
        return {"method": self.method, "config": self.method_config, "known_classes": self.known_classes,
                "threshold": self.threshold.value, "extra": self.method_extra}

    @property
    def seen_ids(self) -> set[str]:
        """Ids of every clip the run was trained or selected on."""
        return {i for part in self.samples.values() for i in part}


# ----------------------------------------------------------------------------- checked reading
def read_json(path: str | Path, *, what: str = "file") -> dict[str, Any]:
    """A JSON object from a file of a run folder.

    Raises:
        CheckpointError: ``PATH: not found`` / ``not valid JSON (...)`` / ``not a JSON object``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: {what} not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
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


def _resolved(obj: Any) -> Any:
    return _map_specs(obj, resolve_portable)


def _check_encoder_paths(source: Path, profile: Mapping[str, Any]) -> None:
    for modality in ("video", "audio", "text"):
        spec = profile.get(modality)
        if not isinstance(spec, dict) or not isinstance(spec.get("name_or_path"), str):
            continue  # a malformed spec is reported when the profile is validated
        where = Path(spec["name_or_path"])
        if where.is_absolute() and not where.exists():
            raise CheckpointError(
                f"{source}: the {modality} encoder ({spec.get('kind')}) is stored as {where}, which does not exist. "
                "A run folder refers to its frozen encoders by path: put them back there, or, for the shared "
                "models, set SHARED_DIR to the folder that holds models/.")


def _legacy_info(run_dir: Path, run: dict[str, Any]) -> RunInfo:
    """A run folder of openmer before schema 2 (``config.json`` + ``run.json``), checked for agreement."""
    cfg_path, run_path = run_dir / CONFIG_FILE, run_dir / RUN_FILE
    cfg = read_json(cfg_path, what="method config")
    for key in ("method", "known_classes", "threshold"):
        if key in cfg and key in run and cfg[key] != run[key]:
            raise CheckpointError(
                f"{run_path}: says {key} {run[key]!r} but {cfg_path} says {cfg[key]!r}; the folder mixes two runs")
    try:
        return RunInfo(
            schema_version=1, openmer_version=str(run.get("openmer_version", "?")), method=cfg["method"],
            method_config=cfg["config"], method_extra=cfg.get("extra", {}), known_classes=cfg["known_classes"],
            modalities=run["modalities"], profile=run["profile"], train_config=run.get("train_config", {}),
            threshold=ThresholdInfo(value=float(cfg.get("threshold", run.get("threshold"))),
                                    acceptance=float(run.get("acceptance", 0.9)),
                                    source="val" if run.get("threshold_source") == "validation" else "train"),
            data=DataInfo(source=str(run.get("data", "?")), split_rule="unrecorded", n_rows=0),
            groups=run.get("groups", {}), best_epoch=int(run.get("best_epoch", -1)),
            select_metric=str(run.get("select_metric", "?")), n_train=int(run.get("n_train", 0)),
            n_val=int(run.get("n_val", 0)))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{run_path}: incomplete run description ({exc})") from exc


def read_run_info(run_dir: str | Path) -> RunInfo:
    """The :class:`RunInfo` of a finished run folder, with encoder paths resolved for this machine.

    Raises:
        CheckpointError: ``run.json`` missing, not valid JSON, incomplete or invalid (naming the
            file and the field), or (an older run folder) disagreeing with ``config.json``.
    """
    run_dir = Path(run_dir)
    path = run_dir / RUN_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: not found; is {run_dir} a finished `openmer train` run?")
    raw = read_json(path, what="run description")
    if "schema_version" not in raw and (run_dir / CONFIG_FILE).is_file():
        info = _legacy_info(run_dir, raw)
    else:
        version = raw.get("schema_version")
        if isinstance(version, int) and version > RUN_SCHEMA_VERSION:
            raise CheckpointError(f"{path}: written by a newer openmer (schema {raw['schema_version']}, "
                                  f"openmer {raw.get('openmer_version')}); this is openmer {__version__}")
        try:
            info = RunInfo.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'top level'}: {e['msg'].lower()}"
                                 for e in exc.errors()[:3])
            raise CheckpointError(f"{path}: invalid run description ({problems})") from exc
    return info.model_copy(update={"profile": _resolved(info.profile), "method_config": _resolved(info.method_config)})


# ----------------------------------------------------------------------------- a loaded run
@dataclass
class LoadedRun:
    """A run folder with its method and encoders loaded (CUEP features computed once here).

    Attributes:
        run_dir: the folder.
        info: its :class:`RunInfo`.
        method: the fitted method, in eval mode.
        encoders: modality -> frozen encoder, as the method's input needs them.
    """

    run_dir: Path
    info: RunInfo
    method: OpenSetMethod
    encoders: dict[str, Any]

    @property
    def modalities(self) -> list[str]:
        return list(self.info.modalities)

    @property
    def known_classes(self) -> list[str]:
        return list(self.method.known_classes)

    @property
    def threshold(self) -> float:
        return float(self.info.threshold.value)


def load_run(run_dir: str | Path, *, device: str | torch.device = "cpu") -> LoadedRun:
    """Load a run folder written by :func:`openmer.training.run.train`.

    A method on precomputed features gets the profile's encoders for its modalities; a method on
    clips (HCEP) rebuilds its own encoders from its config.

    Raises:
        CheckpointError: not a finished run folder, a file that is missing, empty, truncated,
            corrupt or not valid JSON, files that disagree, or encoder weights that are not where
            the run folder says (each message names the file).
    """
    from openmer.backbones.factory import ProfileConfig, load_profile
    from openmer.methods.registry import get_method

    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    source = run_dir / RUN_FILE
    _check_encoder_paths(source, info.profile)
    if isinstance(info.method_config.get("profile"), dict):
        _check_encoder_paths(source, info.method_config["profile"])
    try:
        profile = ProfileConfig.from_dict(info.profile)
        method_cls = get_method(info.method)
    except ConfigError as exc:
        raise CheckpointError(f"{source}: {exc}") from exc
    missing = [m for m in info.modalities if m not in profile.specs()]
    if missing:
        raise CheckpointError(f"{source}: modalities {missing} have no encoder in its profile {profile.name!r}")
    encoders: dict[str, Any] = {}
    if method_cls.consumes == "features":
        encoders = load_profile(profile, modalities=tuple(info.modalities), device=device)
    method = method_cls.from_description(info.method_description(), run_dir / WEIGHTS_FILE, source=source,
                                         device=device)
    if not encoders:  # a method on clips holds its encoders
        encoders = method.input_encoders()
    return LoadedRun(run_dir, info, method, encoders)


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
    """Write the selected weights and ``run.json`` (last, so that it marks a finished run)."""
    run_dir = Path(run_dir)
    method.save_weights(run_dir / WEIGHTS_FILE)
    data = info.to_dict()
    data.update(profile=_portable(data["profile"]), method_config=_portable(data["method_config"]))
    atomic_write_json(run_dir / RUN_FILE, data)
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
