"""HCEP (Liu et al., Information Fusion 2026): SMEP + CUEP + DPOL on frozen encoders."""

from openmer.methods.hcep.model import HCEP, HCEPConfig

__all__ = ["HCEP", "HCEPConfig"]
