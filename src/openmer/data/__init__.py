"""Datasets as manifests and feature tables."""

from openmer.data.builtin import (
    DATASETS,
    EMODB_CLASSES,
    MELD_CLASSES,
    RAVDESS_CLASSES,
    FeatureTable,
    load_builtin,
    load_emodb,
    load_meld,
    load_ravdess_features,
    load_ravdess_speech,
)
from openmer.data.manifest import COLUMNS, MODALITIES, Manifest, Sample

__all__ = [
    "COLUMNS",
    "DATASETS",
    "EMODB_CLASSES",
    "MELD_CLASSES",
    "MODALITIES",
    "RAVDESS_CLASSES",
    "FeatureTable",
    "Manifest",
    "Sample",
    "load_builtin",
    "load_emodb",
    "load_meld",
    "load_ravdess_features",
    "load_ravdess_speech",
]
