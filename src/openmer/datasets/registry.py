"""Datasets by name, in two :class:`openmer.registry.Registry` tables filled by decorators.

* :data:`DATASETS`: the built-in datasets, read from ``shared/data`` (``load_*(root=None, **options)``,
  :mod:`openmer.datasets.builtin`); the name is also their protocol's (:func:`openmer.protocol.load_protocol`).
* :data:`ADAPTERS`: the licensed datasets of the HCEP paper, read from the folder a user was
  given (``load_*(root, **options)``: :mod:`~openmer.datasets.mafw`, :mod:`~openmer.datasets.mosei`,
  :mod:`~openmer.datasets.ovmerd`).

An unknown name is a :class:`~openmer.errors.ConfigError` that lists the choices.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openmer.data.feature_table import FeatureTable
from openmer.data.manifest import Manifest
from openmer.errors import ConfigError, DataError
from openmer.protocol import GroupPartition, Protocol
from openmer.registry import Registry


def _fill() -> None:
    import openmer.datasets  # noqa: F401  (its modules' decorators fill DATASETS and ADAPTERS)


#: built-in dataset name -> loader of its shared copy, in registration order
DATASETS: Registry[Callable[..., Manifest | FeatureTable]] = Registry("dataset", fill=_fill)
#: licensed dataset name -> adapter reading its native layout, in registration order
ADAPTERS: Registry[Callable[..., Manifest]] = Registry("dataset", fill=_fill)


def load_builtin(name: str, **kwargs: Any) -> Manifest | FeatureTable:
    """Load a built-in dataset by name (``"emodb"``, ``"meld"``, ``"ravdess"``, ``"ravdess-speech"``).

    Raises:
        ConfigError: an unknown name (the message lists the choices).
        SharedDataMissing / DataError: as the loader.
    """
    return DATASETS.get(name)(**kwargs)


def load_with_protocol(name: str) -> tuple[Manifest | FeatureTable, Protocol]:
    """A built-in dataset (:func:`load_builtin` with its default options) and its open-set
    protocol, the protocol of the same name (:func:`openmer.protocol.load_protocol`).

    Raises:
        ConfigError: an unknown name (the message lists the choices).
        SharedDataMissing / DataError: as the loader.
    """
    from openmer.protocol import load_protocol

    return load_builtin(name), load_protocol(name)


def load_dataset(name: str, root: str | Path, **options: Any) -> Manifest:
    """Read a licensed dataset from its native layout under ``root``.

    Args:
        name: a name of :data:`ADAPTERS`.
        root: the dataset folder as its authors distribute it.
        **options: keyword arguments of that adapter (e.g. ``fold=1, part="train"`` for MAFW).

    Raises:
        ConfigError: unknown name (the message lists the choices) or an option the adapter
            does not take.
        DataError: as the adapter.
    """
    adapter = ADAPTERS.get(name)
    params = inspect.signature(adapter).parameters
    unknown = sorted(set(options) - set(params))
    if unknown:
        takes = [p for p in params if p != "root"]
        raise ConfigError(f"dataset {name!r} takes no option(s) {unknown}; it takes {takes}")
    return adapter(root, **options)


def resolve_data(data: str | Path, *, allow_outside_root: bool = False) -> tuple[Manifest, GroupPartition | None]:
    """A built-in dataset name (``emodb``, ``meld``, ``ravdess-speech``) or a manifest file.

    Returns:
        ``(manifest, partition)``: the built-in protocol's group partition (the protocol of the
        same name), or ``None`` for a user manifest (which may carry its own ``split`` column).

    Raises:
        ConfigError: ``ravdess`` (features only, no media: use ``ravdess-speech`` or
            ``openmer benchmark ravdess``).
        DataError / SharedDataMissing: the manifest or the shared data is missing or invalid.
    """
    from openmer.protocol import load_protocol

    name = str(data)
    if name == "ravdess":
        raise ConfigError("the shared RAVDESS copy holds precomputed features, not media: use `--data ravdess-speech` "
                          "(its audio) or `openmer benchmark ravdess`")
    if name in DATASETS:
        return load_builtin(name), load_protocol(name).partition
    path = Path(data)
    if not path.exists():
        names = ", ".join(n for n in DATASETS if n != "ravdess")
        raise DataError(path, f"no such manifest file (and not a built-in dataset name: {names})")
    return Manifest.read(path, allow_outside_root=allow_outside_root).validate(), None
