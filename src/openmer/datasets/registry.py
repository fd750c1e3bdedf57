"""Dataset adapters by name: ``ADAPTERS`` maps a name to a ``load_*(root, **options)`` function."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openmer.data.manifest import Manifest
from openmer.datasets.mafw import load_mafw
from openmer.datasets.mosei import load_mosei
from openmer.datasets.ovmerd import load_ovmerd
from openmer.errors import ConfigError

ADAPTERS: dict[str, Callable[..., Manifest]] = {
    "mafw": load_mafw,
    "cmu-mosei": load_mosei,
    "ov-merd": load_ovmerd,
}


def load_dataset(name: str, root: str | Path, **options: Any) -> Manifest:
    """Read a licensed dataset from its native layout under ``root``.

    Args:
        name: a key of :data:`ADAPTERS`.
        root: the dataset folder as its authors distribute it.
        **options: keyword arguments of that adapter (e.g. ``fold=1, part="train"`` for MAFW).

    Raises:
        ConfigError: unknown name (the message lists the choices) or an option the adapter
            does not take.
        DataError: as the adapter.
    """
    try:
        adapter = ADAPTERS[name]
    except KeyError:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {sorted(ADAPTERS)}") from None
    params = inspect.signature(adapter).parameters
    unknown = sorted(set(options) - set(params))
    if unknown:
        takes = [p for p in params if p != "root"]
        raise ConfigError(f"dataset {name!r} takes no option(s) {unknown}; it takes {takes}")
    return adapter(root, **options)
