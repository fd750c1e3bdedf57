"""One registry idiom for methods, encoder kinds, profiles, datasets and benchmarks.

A :class:`Registry` maps names to objects filled by a decorator on real functions or classes
(timm's ``@register_model`` pattern: imports, not strings handed to importlib). Looking up an
unknown name raises :class:`~openmer.errors.ConfigError` listing the choices.

>>> colours = Registry("colour")
>>> @colours.register("red")
... def red():
...     return "#f00"
>>> colours.get("red")()
'#f00'
>>> colours.names()
['red']
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from openmer.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind (``what`` names the kind in error messages).

    Args:
        what: e.g. ``"method"``, ``"encoder kind"``.
        fill: called once before the first lookup, to import the modules whose decorators fill
            the registry (so that ``get`` works without the caller importing them first).
        name_attribute: when set, the decorator also stores the registered name on the object
            under this attribute (``"name"``: ``cls.name == "arpl"``).
    """

    def __init__(self, what: str, fill: Callable[[], None] | None = None, name_attribute: str | None = None):
        self.what = what
        self._entries: dict[str, T] = {}
        self._fill = fill
        self._name_attribute = name_attribute

    def _filled(self) -> dict[str, T]:
        if self._fill is not None:
            fill, self._fill = self._fill, None
            fill()
        return self._entries

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator adding the decorated object under ``name``.

        Raises:
            ConfigError: ``name`` is registered already.
        """

        def deco(obj: T) -> T:
            if name in self._entries:
                raise ConfigError(f"{self.what} {name!r} registered twice")
            if self._name_attribute is not None:
                setattr(obj, self._name_attribute, name)
            self._entries[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        """The entry registered as ``name``.

        Raises:
            ConfigError: unknown name; the message lists the choices.
        """
        entries = self._filled()
        try:
            return entries[name]
        except KeyError:
            raise ConfigError(f"unknown {self.what} {name!r}; choose one of {sorted(entries)}") from None

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._filled())

    def items(self) -> list[tuple[str, T]]:
        """(name, entry) pairs in registration order."""
        return list(self._filled().items())

    def __contains__(self, name: object) -> bool:
        return name in self._filled()

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._filled()))

    def __len__(self) -> int:
        return len(self._filled())

    def __getitem__(self, name: str) -> T:
        return self.get(name)
