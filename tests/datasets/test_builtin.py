"""Loaders of the real datasets in ../shared/data (skipped when it is absent)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from openmer.data import FeatureTable, Manifest
from openmer.datasets import (
    DATASETS,
    EMODB_CLASSES,
    MELD_CLASSES,
    RAVDESS_CLASSES,
    load_builtin,
    load_emodb,
    load_meld,
    load_ravdess_features,
    load_ravdess_speech,
)
from openmer.errors import ConfigError, DataError, SharedDataMissing
from openmer.protocol import load_protocol, open_set_subsets

EMODB_COUNTS = {"anger": 127, "boredom": 81, "disgust": 46, "fear": 69, "happiness": 71, "neutral": 79, "sadness": 62}
EMODB_SPEAKERS = {"03": 49, "08": 58, "09": 43, "10": 38, "11": 55, "12": 35, "13": 61, "14": 69, "15": 56, "16": 71}


def _data(shared: Path, name: str) -> Path:
    path = shared / "data" / name
    if not path.is_dir():
        pytest.skip(f"needs {path} (see shared/README.md)")
    return path


# ------------------------------------------------------------------ EmoDB
def test_load_emodb(shared):
    root = _data(shared, "emodb")
    m = load_emodb(root)
    assert isinstance(m, Manifest) and m.name == "emodb" and len(m) == 535
    assert Counter(m.labels) == EMODB_COUNTS
    assert Counter(m.groups) == EMODB_SPEAKERS
    assert m.classes == sorted(EMODB_CLASSES)
    s = m[0]
    assert s.id == "03a01Fa" and s.audio == "wav/03a01Fa.wav" and s.label == "happiness" and s.group == "03"
    assert s.text == "Der Lappen liegt auf dem Eisschrank."
    assert m.modalities == ("audio", "text")
    m.validate(classes=EMODB_CLASSES, check_files=True)  # every wav exists, ids unique


def test_load_emodb_default_root(shared):
    _data(shared, "emodb")
    assert len(load_builtin("emodb")) == 535


# ------------------------------------------------------------------ MELD
@pytest.mark.parametrize(("split", "n"), [("train", 9989), ("dev", 1109), ("test", 2610)])
def test_load_meld_splits(shared, split, n):
    m = load_meld(_data(shared, "meld"), split=split)
    assert len(m) == n and set(m.groups) == {split}
    assert set(m.labels) == set(MELD_CLASSES)
    assert m.modalities == ("text",)
    m.validate(classes=MELD_CLASSES)


def test_load_meld_all_and_text(shared):
    m = load_meld(_data(shared, "meld"), split="all")
    assert len(m) == 9989 + 1109 + 2610
    assert Counter(m.groups) == {"train": 9989, "dev": 1109, "test": 2610}
    first = m[0]
    assert first.id == "train_dia0_utt0" and first.label == "neutral"
    assert first.text.startswith("also I was the point person on my company\u2019s transition")  # UTF-8 kept
    assert not any("\r" in s.text for s in m)  # CRLF handled by the csv reader
    assert len(set(m.ids)) == len(m)


def test_load_meld_bad_split():
    with pytest.raises(ConfigError, match="unknown MELD split 'val'"):
        load_meld(split="val")


# ------------------------------------------------------------------ RAVDESS
def test_load_ravdess_features(shared):
    t = load_ravdess_features(_data(shared, "ravdess-au-mfcc"))
    assert isinstance(t, FeatureTable) and len(t) == 1440
    assert t.dims == {"face_au": 35, "audio": 259}
    x = t.select(["face_au", "audio"])
    assert x.shape == (1440, 294) and x.dtype == np.float32 and np.isfinite(x).all()
    assert Counter(t.labels)["neutral"] == 96
    assert all(c == 192 for k, c in Counter(t.labels).items() if k != "neutral")
    assert t.classes == sorted(RAVDESS_CLASSES)
    assert Counter(t.groups) == {f"{a:02d}": 60 for a in range(1, 25)}
    # the documented layout: AU presences (dims 17-34) are fractions, audio ends in zero padding for some clips
    au = t.select("face_au")
    assert (au[:, 17:] >= 0).all() and (au[:, 17:] <= 1).all()
    assert np.array_equal(t.select(["audio", "face_au"])[:, :259], t.features["audio"])
    assert t.ids[0] == "01-01-01-01-01-01-01" and t.labels[0] == "neutral" and t.groups[0] == "01"


def test_feature_table_subset_and_select_errors(shared):
    t = load_ravdess_features(_data(shared, "ravdess-au-mfcc"))
    sub = t.subset([0, 5, 7])
    assert len(sub) == 3 and sub.ids == [t.ids[i] for i in (0, 5, 7)]
    assert np.array_equal(sub.select(), t.select()[[0, 5, 7]])
    mask = np.asarray(t.labels) == "neutral"
    assert len(t.subset(mask)) == 96
    with pytest.raises(ConfigError, match="unknown modality"):
        t.select("video")


def test_ravdess_misaligned_ids_raise(shared, tmp_path):
    src = _data(shared, "ravdess-au-mfcc")
    (tmp_path / "au_mfcc.npz").write_bytes((src / "au_mfcc.npz").read_bytes())
    lines = (src / "labels.csv").read_text(encoding="utf-8").splitlines()
    (tmp_path / "labels.csv").write_text("\n".join([lines[0], lines[2], lines[1], *lines[3:]]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="same order"):
        load_ravdess_features(tmp_path)


def test_load_ravdess_speech(shared):
    """Counts as shared/README.md gives them: 1440 clips, neutral 96, every other emotion 192, 24 x 60."""
    m = load_ravdess_speech(_data(shared, "ravdess-speech"))
    assert isinstance(m, Manifest) and m.name == "ravdess-speech" and len(m) == 1440
    counts = Counter(m.labels)
    assert counts["neutral"] == 96 and all(counts[c] == 192 for c in RAVDESS_CLASSES if c != "neutral")
    assert set(counts) == set(RAVDESS_CLASSES)
    assert Counter(m.groups) == {f"{a:02d}": 60 for a in range(1, 25)}
    assert Counter(m[i].text for i in range(len(m))) == {"Kids are talking by the door": 720,
                                                         "Dogs are sitting by the door": 720}
    s = m[0]
    assert s.id == "01-01-01-01-01-01-01" and s.audio == "Actor_01/03-01-01-01-01-01-01.flac" and s.group == "01"
    assert m.modalities == ("audio", "text")
    m.validate(classes=RAVDESS_CLASSES, check_files=True)  # every FLAC exists, ids unique


def test_ravdess_speech_joins_the_au_features_on_id(shared):
    speech = load_ravdess_speech(_data(shared, "ravdess-speech"))
    table = load_ravdess_features(_data(shared, "ravdess-au-mfcc"))
    assert speech.ids == table.ids
    assert speech.labels == table.labels and speech.groups == table.groups


def test_ravdess_speech_audio_is_16k_mono(shared):
    from openmer.media import load_audio

    m = load_ravdess_speech(_data(shared, "ravdess-speech"))
    wave = load_audio(m.path(m[0], "audio"))
    assert wave.ndim == 1 and 2.9 * 16000 <= len(wave) <= 5.3 * 16000


# ------------------------------------------------------------------ protocols on the real data
@pytest.mark.parametrize(("name", "kw"), [("emodb", {}), ("meld", {"split": "all"}), ("ravdess", {}),
                                          ("ravdess-speech", {})])
def test_protocol_applies_to_real_data(shared, name, kw):
    _data(shared, {"emodb": "emodb", "meld": "meld", "ravdess": "ravdess-au-mfcc",
                   "ravdess-speech": "ravdess-speech"}[name])
    data = load_builtin(name, **kw)
    proto = load_protocol(name)
    assert set(data.labels) == set(proto.classes)
    assert set(data.groups) == set(proto.partition.groups)
    for split in proto.splits():
        out = open_set_subsets(data.labels, data.groups, split, proto.partition)
        assert (out["labels"][out["train"]] >= 0).all() and (out["labels"][out["val"]] >= 0).all()
        assert (out["labels"][out["test"]] < 0).any()


# ------------------------------------------------------------------ errors without data
@pytest.mark.parametrize("loader", [load_emodb, load_meld, load_ravdess_features, load_ravdess_speech])
def test_missing_root_raises_data_error(tmp_path, loader):
    with pytest.raises(DataError, match="not found"):
        loader(tmp_path / "nowhere")
    with pytest.raises(DataError, match="not found"):
        loader(tmp_path)  # folder exists, files do not


def test_default_root_missing_raises_shared_data_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("SHARED_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(SharedDataMissing, match="the EmoDB recordings"):
        load_emodb()


def test_load_builtin_unknown_name():
    assert sorted(DATASETS) == ["emodb", "meld", "ravdess", "ravdess-speech"]
    with pytest.raises(ConfigError, match=r"unknown dataset 'mafw'; choose one of \['emodb', 'meld', 'ravdess', "):
        load_builtin("mafw")


def test_ravdess_speech_is_a_built_in_data_name(shared):
    """``--data ravdess-speech`` (openmer train / evaluate) reads the speech clips with their protocol's partition."""
    from openmer.datasets import resolve_data

    _data(shared, "ravdess-speech")
    manifest, partition = resolve_data("ravdess-speech")
    assert len(manifest) == 1440 and manifest.name == "ravdess-speech"
    assert partition == load_protocol("ravdess").partition
    with pytest.raises(ConfigError, match="holds precomputed features"):
        resolve_data("ravdess")
