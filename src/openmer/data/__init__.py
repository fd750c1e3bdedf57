"""Datasets as manifests and feature tables."""

from openmer.data.manifest import COLUMNS, MODALITIES, Manifest, Sample

__all__ = ["COLUMNS", "MODALITIES", "Manifest", "Sample"]
