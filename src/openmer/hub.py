"""A run folder named by a path or by a Hugging Face hub repository id (``owner/name``).

A run folder carries its model card (:mod:`openmer.model_card`), so it can be pushed to the hub as
it is; ``openmer predict|timeline`` then take the repository id in place of a folder. The
download is :func:`huggingface_hub.snapshot_download` restricted to the run's JSON and safetensors
files (``allow_patterns``: nothing that could be unpickled or executed is fetched, and
:func:`openmer.runs.load_run` reads weights through safetensors only); it goes through the hub's
cache and honours its offline mode (``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import re
from pathlib import Path

from openmer.errors import CheckpointError
from openmer.model_card import CARD_ROWS_FILE
from openmer.runs import LEGACY_CONFIG_FILE, METRICS_FILE, RUN_FILE, WEIGHTS_FILE

__all__ = ["RUN_FILES", "is_hub_id", "resolve_run"]

#: the files of a run folder fetched from the hub (JSON and safetensors only, top level only)
RUN_FILES: tuple[str, ...] = (RUN_FILE, WEIGHTS_FILE, METRICS_FILE, LEGACY_CONFIG_FILE, CARD_ROWS_FILE)
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*(@[A-Za-z0-9_.-]+)?$")


def is_hub_id(ref: str | Path) -> bool:
    """Whether ``ref`` has the form of a hub repository id, ``owner/name`` (optionally ``@revision``)."""
    return bool(_HUB_ID.match(str(ref)))


def resolve_run(ref: str | Path, *, cache_dir: str | Path | None = None) -> Path:
    """The local folder of a run: ``ref`` itself when it exists, else the snapshot of the hub
    repository ``ref`` (``owner/name`` or ``owner/name@revision``).

    Args:
        ref: a run folder or a hub repository id.
        cache_dir: the hub cache (default: the hub's own, ``HF_HUB_CACHE``).

    Returns:
        A folder to give :func:`openmer.runs.load_run` (which checks its files).

    Raises:
        CheckpointError: ``ref`` is neither an existing folder nor a hub id, or the repository
            cannot be fetched (offline, unknown, private, no network): one line naming the id.
    """
    path = Path(ref)
    if path.exists() or not is_hub_id(ref):
        return path  # load_run names a missing folder
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    repo_id, _, revision = str(ref).partition("@")
    try:
        folder = snapshot_download(repo_id, revision=revision or None, allow_patterns=list(RUN_FILES),
                                   cache_dir=None if cache_dir is None else str(cache_dir))
    except (OfflineModeIsEnabled, LocalEntryNotFoundError) as exc:
        raise CheckpointError(f"{ref}: no such run folder, and the Hugging Face hub repository {repo_id!r} is not in "
                              f"the local hub cache while offline (HF_HUB_OFFLINE=1); fetch it once online or give a "
                              f"run folder ({type(exc).__name__})") from None
    except (HfHubHTTPError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{ref}: no such run folder, and the Hugging Face hub repository {repo_id!r} could not "
                              f"be fetched: {first}") from None
    if not (Path(folder) / RUN_FILE).is_file():
        raise CheckpointError(f"{ref}: the Hugging Face hub repository {repo_id!r} holds no {RUN_FILE} "
                              "(not an openmer run folder)")
    return Path(folder)
