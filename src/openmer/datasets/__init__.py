"""The datasets openmer reads, by name: built-in copies in ``shared/data`` and adapters for the
licensed datasets of the HCEP paper, each read from its native layout.

Built-in (:data:`DATASETS`, :func:`load_builtin`; :mod:`openmer.datasets.builtin`):

* :func:`load_emodb` - EmoDB speech + the spoken sentence, group = speaker.
* :func:`load_meld` - MELD transcripts, group = MELD's own split name.
* :func:`load_ravdess_features` - RAVDESS per-clip AU + audio feature vectors, group = actor.
* :func:`load_ravdess_speech` - RAVDESS speech audio + the spoken statement, group = actor.

Each is declared on its registry entry (:class:`DatasetSpec`: media or features, classes, group,
protocol) and reads the official distribution's layout (a user's copy) or the shared copy.

Licensed (:data:`ADAPTERS`, :func:`load_dataset`):

* :func:`load_mafw` - MAFW clips, descriptive texts, official 5-fold splits.
* :func:`load_mosei` - CMU-MOSEI segments of full videos, six emotions by an argmax rule.
* :func:`load_ovmerd` - OV-MERD clips, transcripts, open-vocabulary labels reduced to one.

:func:`resolve_data` turns ``--data`` (a built-in name, ``NAME=PATH`` for a user's copy of one, or a
manifest file) into a manifest.
Expected layouts and what was confirmed vs assumed: ``docs/datasets.md``.
"""

from openmer.datasets.builtin import (
    EMODB_CLASSES,
    EMODB_EMOTION_CODES,
    EMODB_SENTENCES,
    EMODB_SPEAKER_GENDER,
    MELD_CLASSES,
    MELD_SPLITS,
    RAVDESS_CLASSES,
    RAVDESS_STATEMENTS,
    EmodbName,
    RavdessName,
    load_emodb,
    load_meld,
    load_ravdess_features,
    load_ravdess_speech,
    parse_emodb_name,
    parse_ravdess_name,
)
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
from openmer.datasets.registry import (
    ADAPTERS,
    DATASETS,
    DatasetSpec,
    load_builtin,
    load_dataset,
    load_with_protocol,
    register_dataset,
    resolve_data,
)

__all__ = [
    "ADAPTERS",
    "DATASETS",
    "EMODB_CLASSES",
    "EMODB_EMOTION_CODES",
    "EMODB_SENTENCES",
    "EMODB_SPEAKER_GENDER",
    "HCEP_MAFW_CLASSES",
    "MAFW_SINGLE_CLASSES",
    "MELD_CLASSES",
    "MELD_SPLITS",
    "MOSEI_EMOTIONS",
    "OVMERD_KNOWN",
    "OVMERD_SYNONYMS",
    "RAVDESS_CLASSES",
    "RAVDESS_STATEMENTS",
    "DatasetSpec",
    "EmodbName",
    "RavdessName",
    "load_builtin",
    "load_dataset",
    "load_emodb",
    "load_mafw",
    "load_meld",
    "load_mosei",
    "load_ovmerd",
    "load_ravdess_features",
    "load_ravdess_speech",
    "load_with_protocol",
    "mosei_label",
    "ovmerd_label",
    "parse_emodb_name",
    "parse_ravdess_name",
    "read_mosei_folds",
    "read_mosei_labels",
    "read_ovmerd_labels",
    "read_xlsx_rows",
    "register_dataset",
    "resolve_data",
    "synonym_lookup",
]
