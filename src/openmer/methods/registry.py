"""Registry of open-set methods: ``@register("arpl")`` on the class; ``METHODS`` maps names to classes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from openmer.errors import ConfigError

T = TypeVar("T", bound=type)
METHODS: dict[str, type] = {}


def register(name: str) -> Callable[[T], T]:
    """Class decorator adding an :class:`~openmer.methods.base.OpenSetMethod` under ``name``."""

    def deco(cls: T) -> T:
        if name in METHODS:
            raise ConfigError(f"method {name!r} registered twice")
        cls.name = name  # type: ignore[attr-defined]
        METHODS[name] = cls
        return cls

    return deco


def get_method(name: str) -> type:
    """The method class registered as ``name``.

    Raises:
        ConfigError: unknown name; the message lists the choices.
    """
    import openmer.methods  # noqa: F401  (fills METHODS)

    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(f"unknown method {name!r}; choose one of {sorted(METHODS)}") from None


def list_methods(consumes: str | None = None) -> tuple[str, ...]:
    """Registered method names in registration order, optionally only those whose class declares
    ``consumes`` (``"features"``: cached encoder features; ``"clips"``: media through encoders)."""
    import openmer.methods  # noqa: F401  (fills METHODS)

    return tuple(n for n, cls in METHODS.items() if consumes is None or cls.consumes == consumes)
