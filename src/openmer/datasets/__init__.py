"""Adapters for the licensed datasets of the HCEP paper, each read from its native layout.

* :func:`load_mafw` - MAFW clips, descriptive texts, official 5-fold splits.
* :func:`load_mosei` - CMU-MOSEI segments of full videos, six emotions by an argmax rule.
* :func:`load_ovmerd` - OV-MERD clips, transcripts, open-vocabulary labels reduced to one.

``load_dataset(name, root, **options)`` dispatches by name (``ADAPTERS``). Expected layouts and
what was confirmed vs assumed: ``docs/datasets.md``.
"""

from openmer.datasets.mafw import HCEP_MAFW_CLASSES, MAFW_SINGLE_CLASSES, load_mafw, read_xlsx_rows
from openmer.datasets.mosei import MOSEI_EMOTIONS, load_mosei, mosei_label, read_mosei_folds, read_mosei_labels
from openmer.datasets.ovmerd import (
    OVMERD_KNOWN,
    OVMERD_SYNONYMS,
    load_ovmerd,
    ovmerd_label,
    read_ovmerd_labels,
    synonym_lookup,
)
from openmer.datasets.registry import ADAPTERS, load_dataset

__all__ = [
    "ADAPTERS",
    "HCEP_MAFW_CLASSES",
    "MAFW_SINGLE_CLASSES",
    "MOSEI_EMOTIONS",
    "OVMERD_KNOWN",
    "OVMERD_SYNONYMS",
    "load_dataset",
    "load_mafw",
    "load_mosei",
    "load_ovmerd",
    "mosei_label",
    "ovmerd_label",
    "read_mosei_folds",
    "read_mosei_labels",
    "read_ovmerd_labels",
    "read_xlsx_rows",
    "synonym_lookup",
]
