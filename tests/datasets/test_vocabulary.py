"""The label vocabulary across corpora (no data needed)."""

from __future__ import annotations

import pytest

from openmer.data.manifest import Manifest, Sample
from openmer.datasets import EMODB_CLASSES, MELD_CLASSES, RAVDESS_CLASSES
from openmer.datasets.vocabulary import (
    LABEL_VOCABULARY,
    common_classes,
    shared_classes,
    shared_manifest,
    shared_name,
    to_shared,
    vocabulary_rows,
)
from openmer.errors import ConfigError, DataError


def test_each_table_covers_exactly_its_corpus_classes():
    assert set(LABEL_VOCABULARY["emodb"]) == set(EMODB_CLASSES)
    assert set(LABEL_VOCABULARY["ravdess"]) == set(LABEL_VOCABULARY["ravdess-speech"]) == set(RAVDESS_CLASSES)
    assert set(LABEL_VOCABULARY["meld"]) == set(MELD_CLASSES)
    for corpus, table in LABEL_VOCABULARY.items():  # one corpus label per shared name
        assert len(set(table.values())) == len(table), corpus


@pytest.mark.parametrize(("corpus", "label", "shared"), [
    ("ravdess-speech", "angry", "anger"), ("ravdess-speech", "happy", "happiness"),
    ("ravdess-speech", "fearful", "fear"), ("ravdess-speech", "sad", "sadness"),
    ("ravdess-speech", "disgust", "disgust"), ("ravdess-speech", "neutral", "neutral"),
    ("ravdess-speech", "calm", "calm"), ("ravdess-speech", "surprised", "surprise"),
    ("emodb", "anger", "anger"), ("emodb", "happiness", "happiness"), ("emodb", "boredom", "boredom"),
    ("meld", "joy", "happiness"), ("meld", "surprise", "surprise"),
])
def test_shared_names(corpus, label, shared):
    assert shared_name(corpus, label) == shared


def test_emodb_and_ravdess_share_six_emotions():
    assert common_classes("emodb", "ravdess-speech") == ("anger", "disgust", "fear", "happiness", "neutral", "sadness")
    only_emodb = set(shared_classes("emodb")) - set(shared_classes("ravdess-speech"))
    only_ravdess = set(shared_classes("ravdess-speech")) - set(shared_classes("emodb"))
    assert only_emodb == {"boredom"} and only_ravdess == {"calm", "surprise"}
    assert to_shared("ravdess-speech", ["sad", "angry"]) == ["sadness", "anger"]


def test_unknown_names_are_errors_that_list_the_known_ones():
    with pytest.raises(DataError, match="emodb has no label 'angry'; its labels are anger, boredom, disgust"):
        shared_name("emodb", "angry")
    with pytest.raises(DataError, match="ravdess-speech has no label 'anger'; its labels are neutral, calm, happy"):
        to_shared("ravdess-speech", ["sad", "anger"])
    with pytest.raises(ConfigError, match="no label vocabulary for corpus 'mafw'; known corpora: emodb, ravdess"):
        shared_name("mafw", "anger")
    with pytest.raises(ConfigError, match="at least one corpus"):
        common_classes()


def test_shared_manifest_relabels_and_names_the_file_on_error(tmp_path):
    m = Manifest([Sample("a", label="angry", text="x"), Sample("b", label=None, text="y")], root=tmp_path,
                 source=tmp_path / "labels.csv")
    out = shared_manifest(m, "ravdess-speech")
    assert out.labels == ["anger", None] and m.labels == ["angry", None]  # a copy
    bad = Manifest([Sample("a", label="boredom", text="x")], source=tmp_path / "labels.csv")
    with pytest.raises(DataError, match=r"labels\.csv: ravdess-speech has no label 'boredom'"):
        shared_manifest(bad, "ravdess-speech")


def test_vocabulary_rows_for_reports():
    rows = vocabulary_rows(["emodb", "ravdess-speech"])
    assert [r["shared"] for r in rows] == ["anger", "boredom", "calm", "disgust", "fear", "happiness", "neutral",
                                          "sadness", "surprise"]
    by = {r["shared"]: r for r in rows}
    assert by["anger"] == {"shared": "anger", "emodb": "anger", "ravdess-speech": "angry"}
    assert by["boredom"]["ravdess-speech"] == "" and by["surprise"]["emodb"] == ""
