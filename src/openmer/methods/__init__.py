"""Open-set methods behind one interface (:class:`OpenSetMethod`), found by name in ``METHODS``."""

from openmer.methods import arpl, hcep, msp  # noqa: F401  (registers the methods)
from openmer.methods.base import MethodConfig, OpenSetMethod, OpenSetScores
from openmer.methods.registry import METHODS, get_method, register

__all__ = ["METHODS", "MethodConfig", "OpenSetMethod", "OpenSetScores", "get_method", "register"]
