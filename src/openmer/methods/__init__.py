"""Open-set methods behind one interface (:class:`OpenSetMethod`), found by name in ``METHODS``.

Registration order is the default order of the benchmarks' methods.
"""

from openmer.methods import msp, arpl, cssr, cpn, lpl, openvclip, hesp, hcep  # noqa: F401, I001  (registers the methods, in this order)
from openmer.methods.base import MethodConfig, OpenSetMethod, OpenSetScores
from openmer.methods.registry import METHODS, get_method, list_methods, register

__all__ = ["METHODS", "MethodConfig", "OpenSetMethod", "OpenSetScores", "get_method", "list_methods", "register"]
