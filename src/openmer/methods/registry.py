"""The method registry: name -> :class:`~openmer.methods.base.OpenSetMethod` class.

Filled by ``@register("arpl")`` on the classes (timm's ``@register_model`` idiom, through
:class:`openmer.registry.Registry`); :mod:`openmer.methods.posthoc` keeps its scores in a
registry of the same kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from openmer.registry import Registry

if TYPE_CHECKING:  # methods.base is imported by the methods that fill the registry
    from openmer.methods.base import Consumes, OpenSetMethod


def _fill() -> None:
    import openmer.methods  # noqa: F401  (its modules' decorators fill METHODS)


#: registered methods, name -> class, in registration order
METHODS: Registry[type[OpenSetMethod]] = Registry("method", fill=_fill, name_attribute="name")
#: class decorator adding an :class:`~openmer.methods.base.OpenSetMethod` under a name (and setting ``cls.name``)
register = METHODS.register


def get_method(name: str) -> type[OpenSetMethod]:
    """The method class registered as ``name``.

    Raises:
        ConfigError: unknown name; the message lists the choices.
    """
    return METHODS.get(name)


def list_methods(consumes: Consumes | None = None) -> tuple[str, ...]:
    """Registered method names in registration order, optionally only those whose class declares
    ``consumes`` (``"features"``: cached encoder features; ``"clips"``: media through encoders)."""
    return tuple(n for n, cls in METHODS.items() if consumes is None or cls.consumes == consumes)
