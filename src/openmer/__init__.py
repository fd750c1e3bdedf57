"""openmer: open-set multimodal emotion recognition (O-MER).

Known classes are indexed ``0..K-1`` in the order of ``known_classes``; a label ``< 0``
(:data:`UNKNOWN`) marks an unknown-class sample. ``confidence`` is always *higher = more
likely a known class*.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("openmer")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

UNKNOWN = -1

__all__ = ["UNKNOWN", "__version__"]
