"""Registry of open-set methods: ``@register("arpl")`` on the class; ``METHODS`` maps names to classes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from openmer.registry import Registry

T = TypeVar("T", bound=type)


def _fill() -> None:
    import openmer.methods  # noqa: F401  (its modules' decorators fill METHODS)


METHODS: Registry[type] = Registry("method", fill=_fill)


def register(name: str) -> Callable[[T], T]:
    """Class decorator adding an :class:`~openmer.methods.base.OpenSetMethod` under ``name``
    (and setting its ``name``)."""
    add = METHODS.register(name)

    def deco(cls: T) -> T:
        cls.name = name  # type: ignore[attr-defined]
        return add(cls)

    return deco


def get_method(name: str) -> type:
    """The method class registered as ``name``.

    Raises:
        ConfigError: unknown name; the message lists the choices.
    """
    return METHODS.get(name)
