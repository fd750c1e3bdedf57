"""One label vocabulary across corpora: each corpus's emotion names mapped to a shared name.

A cross-corpus run (train on one corpus, test on another) compares classes by their *shared*
name: EmoDB's ``anger`` and RAVDESS's ``angry`` are one class. Every cross-corpus run maps its
labels through :data:`LABEL_VOCABULARY` (and its reports print the table), so a class is matched
by this table and nowhere else. Each built-in dataset declares its column on its registry entry
(``register_dataset(..., shared_names=...)``, :attr:`DatasetSpec.shared_names`); the table is
read from :data:`~openmer.datasets.DATASETS`.

==========  ==========  ===========================  =========
shared      emodb       ravdess / ravdess-speech     meld
==========  ==========  ===========================  =========
anger       anger       angry                        anger
boredom     boredom     --                           --
calm        --          calm                         --
disgust     disgust     disgust                      disgust
fear        fear        fearful                      fear
happiness   happiness   happy                        joy
neutral     neutral     neutral                      neutral
sadness     sadness     sad                          sadness
surprise    --          surprised                    surprise
==========  ==========  ===========================  =========

Shared names are the nouns of the basic emotions (Ekman's happiness, sadness, anger, fear,
disgust, surprise) plus neutral and the corpus-specific boredom (EmoDB) and calm (RAVDESS).
MELD's *joy* is read as happiness, as in the field's usual mapping of MELD onto the basic six.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from openmer.data.manifest import Manifest
from openmer.datasets.registry import DATASETS
from openmer.errors import ConfigError, DataError

__all__ = [
    "LABEL_VOCABULARY", "common_classes", "shared_classes", "shared_manifest", "shared_name", "to_shared",
    "vocabulary_rows",
]

#: corpus -> {the corpus's label name -> shared name}, as each built-in dataset declares it
LABEL_VOCABULARY: dict[str, dict[str, str]] = {name: dict(spec.shared_names) for name, spec in DATASETS.items()}


def _table(corpus: str) -> dict[str, str]:
    try:
        return LABEL_VOCABULARY[corpus]
    except KeyError:
        raise ConfigError(f"no label vocabulary for corpus {corpus!r}; known corpora: "
                          f"{', '.join(LABEL_VOCABULARY)}") from None


def shared_name(corpus: str, label: str) -> str:
    """The shared name of one of ``corpus``'s labels, e.g. ``shared_name("ravdess-speech", "angry") == "anger"``.

    Raises:
        ConfigError: ``corpus`` has no table (the message lists the corpora).
        DataError: ``label`` is not one of the corpus's names (the message lists them).
    """
    table = _table(corpus)
    try:
        return table[label]
    except KeyError:
        raise DataError(None, f"{corpus} has no label {label!r}; its labels are {', '.join(table)}") from None


def to_shared(corpus: str, labels: Iterable[str]) -> list[str]:
    """:func:`shared_name` of every label (same order). Raises as :func:`shared_name`."""
    return [shared_name(corpus, lab) for lab in labels]


def shared_classes(corpus: str) -> tuple[str, ...]:
    """The shared names of ``corpus``'s classes, in the order of its table."""
    return tuple(_table(corpus).values())


def common_classes(*corpora: str) -> tuple[str, ...]:
    """Shared names that every one of ``corpora`` has, sorted (EmoDB and RAVDESS: the 6 of
    anger, disgust, fear, happiness, neutral, sadness).

    Raises:
        ConfigError: no corpus given or one without a table.
    """
    if not corpora:
        raise ConfigError("common_classes needs at least one corpus")
    common = set(shared_classes(corpora[0]))
    for c in corpora[1:]:
        common &= set(shared_classes(c))
    return tuple(sorted(common))


def shared_manifest(manifest: Manifest, corpus: str) -> Manifest:
    """A copy of ``manifest`` whose labels are shared names (unlabelled rows stay unlabelled).

    Raises:
        DataError: a label the corpus's table does not have (naming the manifest).
    """
    try:
        samples = [replace(s, label=shared_name(corpus, s.label) if s.label else s.label) for s in manifest]
    except DataError as exc:
        raise DataError(manifest.source or manifest.root, exc.reason) from None
    return replace(manifest, samples=samples)


def vocabulary_rows(corpora: Sequence[str]) -> list[dict[str, str]]:
    """The table as rows, one per shared name of ``corpora`` (sorted): ``{"shared": name, corpus: its
    label or "", ...}`` (for reports)."""
    tables = {c: _table(c) for c in corpora}
    names = sorted({s for t in tables.values() for s in t.values()})
    return [{"shared": s, **{c: ", ".join(k for k, v in t.items() if v == s) for c, t in tables.items()}}
            for s in names]
