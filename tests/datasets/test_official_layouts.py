"""The built-in datasets read as their authors distribute them (no ``labels.csv``): official-layout
folders built in tmp_path from the shared copies give the manifests the shared copies give."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest

from openmer.data import Manifest
from openmer.datasets import (
    DATASETS,
    EMODB_SENTENCES,
    load_emodb,
    load_meld,
    load_ravdess_speech,
    parse_emodb_name,
    parse_ravdess_name,
    resolve_data,
)
from openmer.errors import ConfigError, DataError
from openmer.protocol import load_protocol


def _data(shared: Path, name: str) -> Path:
    path = shared / "data" / name
    if not path.is_dir():
        pytest.skip(f"needs {path} (see shared/README.md)")
    return path


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(src.resolve(), dst)


def _rows(m: Manifest) -> list[tuple]:
    return [(s.id, s.label, s.group, s.text, s.audio, s.video) for s in m]


# ------------------------------------------------------------------ EmoDB
def _official_emodb(shared: Path, dst: Path, suffix: str = ".wav", files: list[str] | None = None) -> Path:
    """EmoDB as its download unpacks: ``wav/03a01Fa.wav`` ..., no labels.csv."""
    wav = _data(shared, "emodb") / "wav"
    for f in sorted(wav.iterdir()):
        if files is None or f.name in files:
            _link(f, dst / "wav" / (f.stem + suffix))
    return dst


def test_emodb_official_layout_gives_todays_manifest(shared, tmp_path):
    today = load_emodb(_data(shared, "emodb"))
    official = load_emodb(_official_emodb(shared, tmp_path))
    assert not (tmp_path / "labels.csv").exists() and len(official) == 535
    assert _rows(official) == _rows(today)
    assert official.name == "emodb" and official.modalities == ("audio", "text")
    official.validate(check_files=True)


def test_emodb_sentences_are_those_of_the_shared_labels(shared):
    with (_data(shared, "emodb") / "labels.csv").open(encoding="utf-8") as f:
        pairs = {(r["sentence_code"], r["text"]) for r in csv.DictReader(f)}
    assert pairs == set(EMODB_SENTENCES.items())


def test_emodb_flac_copy_and_the_file_name_fields(shared, tmp_path):
    m = load_emodb(_official_emodb(shared, tmp_path, ".flac", ["03a01Fa.wav", "16b10Wb.wav"]))
    assert _rows(m) == [
        ("03a01Fa", "happiness", "03", "Der Lappen liegt auf dem Eisschrank.", "wav/03a01Fa.flac", None),
        ("16b10Wb", "anger", "16", "Die wird auf dem Platz sein, wo wir sie immer hinlegen.", "wav/16b10Wb.flac", None),
    ]
    name = parse_emodb_name("wav/08b02Tc.wav")
    assert (name.speaker, name.sentence, name.emotion, name.version, name.label) == ("08", "b02", "T", "c", "sadness")


@pytest.mark.parametrize(("file", "match"), [
    ("03a01Xa.wav", "unknown EmoDB emotion letter 'X'"),
    ("03a03Fa.wav", "unknown EmoDB sentence code 'a03'"),
    ("anger_01.wav", "not an EmoDB file name"),
])
def test_emodb_bad_file_name_is_a_data_error_naming_it(tmp_path, file, match):
    (tmp_path / "wav").mkdir()
    (tmp_path / "wav" / file).write_bytes(b"")
    with pytest.raises(DataError, match=match) as err:
        load_emodb(tmp_path)
    assert file in str(err.value)


def test_emodb_without_wav_folder_or_recordings(tmp_path):
    with pytest.raises(DataError, match="wav/ folder not found"):
        load_emodb(tmp_path)
    (tmp_path / "wav").mkdir()
    (tmp_path / "wav" / "README.txt").write_text("x")
    with pytest.raises(DataError, match="no recordings"):
        load_emodb(tmp_path)
    for suffix in (".wav", ".flac"):
        (tmp_path / "wav" / f"03a01Fa{suffix}").write_bytes(b"")
    with pytest.raises(DataError, match="two files for clip '03a01Fa'"):
        load_emodb(tmp_path)


# ------------------------------------------------------------------ RAVDESS speech
def _official_ravdess(shared: Path, dst: Path, suffix: str = ".wav", actors: int = 24) -> Path:
    """RAVDESS's Audio_Speech_Actors_01-24.zip unpacked: ``Actor_NN/03-01-EE-II-SS-RR-AA.wav``."""
    src = _data(shared, "ravdess-speech")
    for folder in sorted(src.glob("Actor_*"))[:actors]:
        for f in folder.iterdir():
            _link(f, dst / folder.name / (f.stem + suffix))
    return dst


def test_ravdess_official_layout_gives_todays_manifest(shared, tmp_path):
    today = load_ravdess_speech(_data(shared, "ravdess-speech"))
    official, partition = resolve_data(f"ravdess-speech={_official_ravdess(shared, tmp_path, '.flac')}")
    assert len(official) == 1440 and _rows(official) == _rows(today)
    assert partition == load_protocol("ravdess-speech").partition
    # the Zenodo files are .wav: the same clips, the same ids, labels, groups and text
    wav = load_ravdess_speech(_official_ravdess(shared, tmp_path / "wav", ".wav"))
    assert [r[:4] for r in _rows(wav)] == [r[:4] for r in _rows(today)]
    assert wav[0].audio == "Actor_01/03-01-01-01-01-01-01.wav"


def test_ravdess_video_files_join_their_take(shared, tmp_path):
    """The audio-visual zips unpacked into the same Actor_NN/: 01-01-* (audio + video), 02-01-* (video only)."""
    root = _official_ravdess(shared, tmp_path, ".wav", actors=1)
    actor = root / "Actor_01"
    (actor / "01-01-03-02-01-01-01.mp4").write_bytes(b"")
    (actor / "02-01-03-02-01-01-01.mp4").write_bytes(b"")
    (actor / "02-01-05-01-02-02-01.mp4").write_bytes(b"")
    (actor / "03-02-05-01-02-02-01.wav").write_bytes(b"")  # a song file: not speech, left out
    os.remove(actor / "03-01-08-02-02-02-01.wav")
    (actor / "01-01-08-02-02-02-01.mp4").write_bytes(b"")  # no audio-only file: the AV file's sound track
    m = load_ravdess_speech(root)
    assert len(m) == 60
    by_id = {s.id: s for s in m}
    assert by_id["01-01-03-02-01-01-01"].video == "Actor_01/01-01-03-02-01-01-01.mp4"
    assert by_id["01-01-03-02-01-01-01"].audio == "Actor_01/03-01-03-02-01-01-01.wav"
    assert by_id["01-01-05-01-02-02-01"].video == "Actor_01/02-01-05-01-02-02-01.mp4"
    late = by_id["01-01-08-02-02-02-01"]
    assert late.audio == late.video == "Actor_01/01-01-08-02-02-02-01.mp4" and late.label == "surprised"
    assert late.text == "Dogs are sitting by the door" and late.group == "01"
    assert by_id["01-01-01-01-01-01-01"].video is None


def test_ravdess_file_name_fields():
    n = parse_ravdess_name("Actor_12/03-01-06-01-02-01-12.wav")
    assert (n.modality, n.vocal_channel, n.emotion, n.intensity, n.statement, n.repetition, n.actor) == \
        ("03", "01", "06", "01", "02", "01", "12")
    assert n.clip_id == "01-01-06-01-02-01-12" and n.label == "fearful" and n.text == "Dogs are sitting by the door"


@pytest.mark.parametrize(("folder", "file", "match"), [
    ("Actor_01", "03-01-09-01-01-01-01.wav", "emotion code '09'"),
    ("Actor_01", "03-01-01-02-01-01-01.wav", "no strong intensity for neutral"),
    ("Actor_02", "03-01-03-01-01-01-01.wav", "actor 01 in the name, but the file is in Actor_02"),
    ("Actor_01", "01-01-03-01-01-01-01.wav", "modality 01 does not match"),
    ("Actor_01", "happy.wav", "not a RAVDESS file name"),
])
def test_ravdess_bad_file_name_is_a_data_error_naming_it(tmp_path, folder, file, match):
    (tmp_path / folder).mkdir()
    (tmp_path / folder / file).write_bytes(b"")
    with pytest.raises(DataError, match=match) as err:
        load_ravdess_speech(tmp_path)
    assert file in str(err.value)


def test_ravdess_without_actor_folders(tmp_path):
    with pytest.raises(DataError, match="Actor_NN folders not found"):
        load_ravdess_speech(tmp_path)


# ------------------------------------------------------------------ MELD
def test_meld_official_csv_files_give_todays_manifest(shared, tmp_path):
    src = _data(shared, "meld")
    for split in ("train", "dev", "test"):
        shutil.copy(src / f"{split}_sent_emo.csv", tmp_path / f"{split}_sent_emo.csv")
    with (tmp_path / "train_sent_emo.csv").open(encoding="utf-8") as f:
        assert csv.DictReader(f).fieldnames == ["Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID",
                                                "Utterance_ID", "Season", "Episode", "StartTime", "EndTime"]
    manifest, partition = resolve_data(f"meld={tmp_path}")
    assert _rows(manifest) == _rows(load_meld(src)) and partition == load_protocol("meld").partition


# ------------------------------------------------------------------ --data NAME=PATH
def test_data_name_equals_path_reads_a_users_copy(shared, tmp_path):
    root = _official_emodb(shared, tmp_path / "EmoDB", files=["03a01Fa.wav", "09a01Nb.wav", "12b10Wa.wav"])
    manifest, partition = resolve_data(f"emodb={root}")
    assert manifest.ids == ["03a01Fa", "09a01Nb", "12b10Wa"] and manifest.root == root
    assert partition == load_protocol("emodb").partition  # the corpus's speakers: the same protocol
    with pytest.raises(DataError, match="nowhere: the EmoDB recordings folder not found"):
        resolve_data(f"emodb={tmp_path / 'nowhere'}")
    with pytest.raises(ConfigError, match="give the folder of your copy"):
        resolve_data("emodb=")


def test_a_features_dataset_is_refused_by_its_declaration(tmp_path):
    assert DATASETS.get("ravdess").holds == "features"
    for data in ("ravdess", f"ravdess={tmp_path}"):
        with pytest.raises(ConfigError, match=r"'ravdess' holds precomputed features .*emodb, ravdess-speech, meld"):
            resolve_data(data)
    with pytest.raises(DataError, match="not a built-in dataset name: emodb, ravdess-speech, meld"):
        resolve_data(tmp_path / "missing.csv")
