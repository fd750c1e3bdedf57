"""Manifests, feature tables, decoded clips and their feature cache (the built-in datasets are
in :mod:`openmer.datasets`)."""

from openmer.data.feature_table import FeatureTable
from openmer.data.manifest import COLUMNS, MODALITIES, Manifest, Sample

__all__ = ["COLUMNS", "MODALITIES", "FeatureTable", "Manifest", "Sample"]
