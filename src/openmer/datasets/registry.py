"""Datasets by name, in two :class:`openmer.registry.Registry` tables filled by decorators.

* :data:`DATASETS`: the built-in datasets (:mod:`openmer.datasets.builtin`), each a
  :class:`DatasetSpec` that declares what it is: media or precomputed features, its classes,
  what one group is and the protocol that splits the groups, and the folder of ``shared/`` it is
  read from by default. Its loader reads the official distribution's layout (a user's copy) or the
  shared copy: ``spec.load(root=None, **options)``. The name is also its protocol's
  (:func:`openmer.protocol.load_protocol`).
* :data:`ADAPTERS`: the licensed datasets of the HCEP paper, read from the folder a user was
  given (``load_*(root, **options)``: :mod:`~openmer.datasets.mafw`, :mod:`~openmer.datasets.mosei`,
  :mod:`~openmer.datasets.ovmerd`).

An unknown name is a :class:`~openmer.errors.ConfigError` that lists the choices. Callers read the
declaration (``spec.holds``, ``spec.classes``, ...); no code tests a dataset's name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from openmer.data.feature_table import FeatureTable
from openmer.data.manifest import Manifest
from openmer.errors import ConfigError, DataError
from openmer.protocol import GroupPartition, Protocol
from openmer.registry import Registry


def _fill() -> None:
    import openmer.datasets  # noqa: F401  (its modules' decorators fill DATASETS and ADAPTERS)


@dataclass(frozen=True)
class DatasetSpec:
    """What a built-in dataset is, declared where it is registered (:func:`register_dataset`).

    Attributes:
        name: the registered name (also the name of its protocol unless ``protocol`` says otherwise).
        load: ``load(root=None, **options)`` -> :class:`Manifest` (``holds="media"``) or
            :class:`FeatureTable` (``holds="features"``); ``root=None`` reads the shared copy.
        holds: ``"media"`` (a manifest of clips: audio, video, text) or ``"features"``
            (precomputed vectors: only the benchmarks that read features can use it).
        classes: the class universe, in the order the dataset's documentation gives it.
        shared_names: each class -> its name in the label vocabulary shared across corpora
            (:mod:`openmer.datasets.vocabulary`: RAVDESS's ``angry`` is ``anger``).
        modalities: what one sample holds (``"audio"``, ``"text"``, ... or the feature blocks).
        group: what one group is (``"speaker"``, ``"actor"``, ``"MELD split"``): the unit the
            split rule keeps apart.
        protocol: the protocol that splits the groups into train / val / test and fixes the
            openness levels (:func:`openmer.protocol.load_protocol`).
        shared: the folder inside ``shared/`` read when no root is given.
        layout: what a user's copy must hold (the official distribution's layout), for messages.
        hint: where else it is used or what holds the same clips (added to messages; may be empty).
        license: the data's licence as a Hugging Face licence id (``"cc-by-nc-sa-4.0"``,
            ``"gpl-3.0"``; ``"other"`` with the terms in ``license_note``), read by model cards.
        license_note: the terms in words, where the id does not say them.
        citation: the reference its authors ask for.
    """

    name: str
    load: Callable[..., Manifest | FeatureTable]
    holds: Literal["media", "features"]
    classes: tuple[str, ...]
    shared_names: Mapping[str, str]
    modalities: tuple[str, ...]
    group: str
    protocol: str
    shared: str
    layout: str
    hint: str = ""
    license: str = "other"
    license_note: str = ""
    citation: str = ""


#: built-in dataset name -> its declaration (and loader), in registration order
DATASETS: Registry[DatasetSpec] = Registry("dataset", fill=_fill)
#: licensed dataset name -> adapter reading its native layout, in registration order
ADAPTERS: Registry[Callable[..., Manifest]] = Registry("dataset", fill=_fill)

#: a loader ``load(root=None, **options)`` of a built-in dataset (the decorator keeps its own signature)
Loader = TypeVar("Loader", bound=Callable[..., Manifest | FeatureTable])


def register_dataset(name: str, *, holds: Literal["media", "features"], classes: tuple[str, ...],
                     modalities: tuple[str, ...], group: str, shared: str, layout: str,
                     protocol: str | None = None, hint: str = "",
                     shared_names: Mapping[str, str] | None = None, license: str = "other",
                     license_note: str = "", citation: str = "") -> Callable[[Loader], Loader]:
    """Decorator: register a built-in dataset's loader with its declaration (:class:`DatasetSpec`).

    The loader is returned unchanged (``load_emodb`` stays a plain function). ``shared_names``
    lists only the classes whose shared name differs from their own (MELD: ``{"joy": "happiness"}``).

    Raises:
        ConfigError: ``name`` is registered already, ``holds`` is neither ``"media"`` nor
            ``"features"``, or ``shared_names`` names a class the dataset does not have.
    """
    if holds not in ("media", "features"):
        raise ConfigError(f"dataset {name!r}: holds must be 'media' or 'features', got {holds!r}")
    renames = dict(shared_names or {})
    stray = sorted(set(renames) - set(classes))
    if stray:
        raise ConfigError(f"dataset {name!r}: shared_names for class(es) {stray} it does not have ({list(classes)})")

    def deco(load: Loader) -> Loader:
        DATASETS.register(name)(DatasetSpec(name=name, load=load, holds=holds, classes=tuple(classes),
                                            shared_names={c: renames.get(c, c) for c in classes},
                                            modalities=tuple(modalities), group=group, protocol=protocol or name,
                                            shared=shared, layout=layout, hint=hint, license=license,
                                            license_note=license_note, citation=citation))
        return load

    return deco


def load_builtin(name: str, **kwargs: Any) -> Manifest | FeatureTable:
    """Load a built-in dataset by name (``"emodb"``, ``"meld"``, ``"ravdess"``, ``"ravdess-speech"``).

    Args:
        name: a name of :data:`DATASETS`.
        **kwargs: the loader's options; ``root=PATH`` reads a user's copy instead of the shared one.

    Raises:
        ConfigError: an unknown name (the message lists the choices).
        SharedDataMissing / DataError: as the loader.
    """
    return DATASETS.get(name).load(**kwargs)


def load_with_protocol(name: str, root: str | Path | None = None) -> tuple[Manifest | FeatureTable, Protocol]:
    """A built-in dataset (:func:`load_builtin` with its default options, from ``root`` when given)
    and its open-set protocol (its spec's ``protocol``, :func:`openmer.protocol.load_protocol`).

    Raises:
        ConfigError: an unknown name (the message lists the choices).
        SharedDataMissing / DataError: as the loader.
    """
    from openmer.protocol import load_protocol

    spec = DATASETS.get(name)
    return spec.load(root=root), load_protocol(spec.protocol)


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
    """What ``--data`` names: a built-in dataset (``emodb``), a user's copy of one (``emodb=PATH``,
    in its official layout, see ``docs/datasets.md``) or a manifest file.

    Args:
        data: ``NAME``, ``NAME=PATH`` (``NAME`` a dataset of :data:`DATASETS` that holds media) or
            the path of a manifest file.
        allow_outside_root: passed to :meth:`Manifest.read` for a manifest file.

    Returns:
        ``(manifest, partition)``: for a built-in dataset, its protocol's group partition (the
        same for the shared copy and a user's copy: the groups are the corpus's speakers or
        actors); ``None`` for a manifest file (which may carry its own ``split`` column).

    Raises:
        ConfigError: a dataset that holds precomputed features, not media (its spec's ``holds``),
            or ``NAME=`` without a path.
        DataError / SharedDataMissing: the manifest, the user's copy or the shared data is missing
            or invalid (the message names the file or folder).
    """
    from openmer.protocol import load_protocol

    text = str(data)
    name, sep, root = text.partition("=")
    if not (sep and name in DATASETS):
        name, root = text, ""
    if name in DATASETS:
        spec = DATASETS.get(name)
        if spec.holds != "media":
            media = ", ".join(n for n, s in DATASETS.items() if s.holds == "media")
            raise ConfigError(f"the built-in dataset {name!r} holds precomputed features "
                              f"({', '.join(spec.modalities)}), not media: --data takes a dataset with media "
                              f"({media}), NAME=PATH for your copy of one, or a manifest file"
                              + (f" ({spec.hint})" if spec.hint else ""))
        if sep and not root.strip():
            raise ConfigError(f"--data {text!r}: give the folder of your copy after '=' ({spec.layout})")
        manifest = spec.load(root=Path(root).expanduser() if root else None)
        if not isinstance(manifest, Manifest):  # pragma: no cover - a media loader returns a manifest
            raise DataError(Path(root or spec.shared), f"the loader of {name!r} did not return a manifest")
        return manifest, load_protocol(spec.protocol).partition
    path = Path(data)
    if not path.exists():
        names = ", ".join(n for n, s in DATASETS.items() if s.holds == "media")
        raise DataError(path, f"no such manifest file (and not a built-in dataset name: {names}; "
                              "or NAME=PATH for your copy of one)")
    return Manifest.read(path, allow_outside_root=allow_outside_root).validate(), None
