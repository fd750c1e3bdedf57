"""Two speech corpora as one, in shared label names: the data of ``openmer benchmark cross-speech``.

EmoDB (German, 10 speakers, 7 emotions) and RAVDESS speech (English, 24 actors, 8 emotions) share
six emotions once their labels are mapped to shared names (:mod:`openmer.datasets.vocabulary`).
Ids and groups are ``"<corpus>/..."`` (:func:`openmer.protocol.corpus_of`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from openmer.data.manifest import Manifest, concat_manifests
from openmer.datasets.builtin import load_emodb, load_ravdess_speech
from openmer.datasets.vocabulary import shared_classes, shared_manifest

#: the corpora, by the name their labels and groups carry (``emodb/03``)
CORPORA: dict[str, Callable[[], Manifest]] = {"emodb": load_emodb, "ravdess-speech": load_ravdess_speech}
#: the cross-corpus protocol's name (``src/openmer/splits/cross-speech.json``)
PROTOCOL = "cross-speech"


def load_cross_speech(corpora: Sequence[str] = tuple(CORPORA)) -> Manifest:
    """The corpora as one manifest with shared label names; ids and groups ``"<corpus>/..."``.

    Raises:
        SharedDataMissing: a corpus's shared copy is absent.
    """
    return concat_manifests({c: shared_manifest(CORPORA[c](), c) for c in corpora}, name=PROTOCOL)


def corpus_classes(corpora: Sequence[str] = tuple(CORPORA)) -> dict[str, tuple[str, ...]]:
    """Each corpus's classes, in shared names (what :func:`openmer.protocol.direction_protocol` takes)."""
    return {c: tuple(shared_classes(c)) for c in corpora}


__all__ = ["CORPORA", "PROTOCOL", "corpus_classes", "load_cross_speech"]
