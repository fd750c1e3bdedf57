"""Registries by name, filled by decorators on real classes (timm's ``@register_model`` idiom).

``METHODS`` maps method names to :class:`~openmer.methods.base.OpenSetMethod` classes
(``@register("arpl")``); :mod:`openmer.methods.posthoc` keeps its scores in a :class:`Registry` too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from openmer.errors import ConfigError

T = TypeVar("T", bound=type)


class Registry(dict[str, type]):
    """``name -> class``, in registration order; an unknown name is a ``ConfigError`` listing the choices.

    Args:
        kind: what the entries are, for messages (e.g. ``"method"``).
    """

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator adding the class under ``name`` (and setting ``cls.name``)."""

        def deco(cls: T) -> T:
            if name in self:
                raise ConfigError(f"{self.kind} {name!r} registered twice")
            cls.name = name  # type: ignore[attr-defined]
            self[name] = cls
            return cls

        return deco

    def lookup(self, name: str) -> type:
        """The class registered as ``name``.

        Raises:
            ConfigError: unknown name; the message lists the choices.
        """
        try:
            return self[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}; choose one of {sorted(self)}") from None


METHODS = Registry("method")
#: class decorator adding an :class:`~openmer.methods.base.OpenSetMethod` under a name
register = METHODS.register


def get_method(name: str) -> type:
    """The method class registered as ``name``.

    Raises:
        ConfigError: unknown name; the message lists the choices.
    """
    import openmer.methods  # noqa: F401  (fills METHODS)

    return METHODS.lookup(name)


def list_methods(consumes: str | None = None) -> tuple[str, ...]:
    """Registered method names in registration order, optionally only those whose class declares
    ``consumes`` (``"features"``: cached encoder features; ``"clips"``: media through encoders)."""
    import openmer.methods  # noqa: F401  (fills METHODS)

    return tuple(n for n, cls in METHODS.items() if consumes is None or cls.consumes == consumes)
