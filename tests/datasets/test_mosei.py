"""CMU-MOSEI adapter on a tiny fake copy of the SDK label file and the raw tree."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from openmer.datasets import MOSEI_EMOTIONS, load_dataset, load_mosei, mosei_label, read_mosei_folds
from openmer.errors import ConfigError, DataError

# per video: rows [sentiment, happy, sad, anger, surprise, disgust, fear] and intervals (s)
LABELS = {
    "vidA": (
        [[1.0, 2.0, 0.0, 0.0, 0.3, 0.0, 0.0],    # happiness
         [-1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0],   # tie sadness/anger
         [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]],   # emotion-free
        [[4.0, 7.5], [0.5, 3.2], [8.0, 9.0]],
    ),
    "vidB": ([[0.0, 0.0, 0.0, 0.0, 0.0, 0.3, 0.0], [0.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0]],
             [[1.0, 2.0], [5.0, 5.0]]),   # weak disgust; a degenerate interval (skipped)
    "12345": ([[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.6667]], [[0.0, 1.5]]),  # fear
}
FOLDS = {"train": ["vidA", "vidB"], "valid": ["12345"], "test": []}


@pytest.fixture
def mosei_root(tmp_path: Path) -> Path:
    root = tmp_path / "CMU_MOSEI"
    videos = root / "Raw" / "Videos" / "Full" / "Combined"
    trans = root / "Raw" / "Transcript" / "Segmented" / "Combined"
    videos.mkdir(parents=True)
    trans.mkdir(parents=True)
    with h5py.File(root / "CMU_MOSEI_Labels.csd", "w") as f:
        data = f.create_group("All Labels").create_group("data")
        f["All Labels"].create_group("metadata")
        for vid, (feats, ivals) in LABELS.items():
            g = data.create_group(vid)
            g["features"] = np.asarray(feats, dtype=np.float32)
            g["intervals"] = np.asarray(ivals, dtype=np.float64)
            (videos / f"{vid}.mp4").write_bytes(b"")  # only paths are checked
    (trans / "vidA.txt").write_text(
        "vidA___0___0.5___3.2___I am upset.\n"
        "vidA___1___4.01___7.49___what a great day\n"
        "vidA___2___8.0___9.0___ok\n",
        encoding="utf-8",
    )
    (trans / "12345.txt").write_text("12345___0___0.0___1.5___a line with ___ inside\n", encoding="utf-8")
    (root / "cmu_mosei_std_folds.py").write_text(
        "".join(f"standard_{k}_fold={v!r}\n\n" for k, v in FOLDS.items()), encoding="utf-8"
    )
    return root


def test_all_split_default_rule(mosei_root: Path) -> None:
    m = load_mosei(mosei_root, split="all")
    by_id = {s.id: s for s in m}
    assert sorted(by_id) == ["12345_0", "vidA_0", "vidB_0"]  # tie and emotion-free dropped
    a = by_id["vidA_0"]
    assert (a.label, a.start, a.end, a.group) == ("happiness", 4.0, 7.5, "vidA")
    assert a.video == "Raw/Videos/Full/Combined/vidA.mp4" and a.text == "what a great day"
    assert by_id["vidB_0"].label == "disgust" and by_id["vidB_0"].text is None  # no transcript file
    assert by_id["12345_0"].label == "fear" and by_id["12345_0"].text == "a line with ___ inside"
    assert set(m.classes) <= set(MOSEI_EMOTIONS)


def test_ties_emotion_free_and_min_intensity(mosei_root: Path) -> None:
    m = load_mosei(mosei_root, split="all", drop_ties=False, drop_emotion_free=False, min_intensity=0.5)
    by_id = {s.id: s.label for s in m}
    assert by_id["vidA_1"] == "sadness"  # first tied emotion in MOSEI_EMOTIONS order
    assert by_id["vidA_2"] is None  # emotion-free kept, unlabelled
    assert "vidB_0" not in by_id  # 0.3 < min_intensity
    assert [s.id for s in m if s.group == "vidA"] == ["vidA_1", "vidA_0", "vidA_2"]  # by start time


def test_mosei_label_rule() -> None:
    assert mosei_label(np.array([0, 0, 3, 0, 0, 0])) == "anger"
    assert mosei_label(np.array([1, 1, 0, 0, 0, 0])) is False
    assert mosei_label(np.array([1, 1, 0, 0, 0, 0]), drop_ties=False) == "happiness"
    assert mosei_label(np.zeros(6)) is False and mosei_label(np.zeros(6), drop_emotion_free=False) is None


def test_standard_folds(mosei_root: Path, tmp_path: Path) -> None:
    assert {s.group for s in load_mosei(mosei_root, split="train")} == {"vidA", "vidB"}
    assert [s.id for s in load_mosei(mosei_root, split="valid")] == ["12345_0"]
    assert len(load_mosei(mosei_root, split="test")) == 0
    folds_json = tmp_path / "folds.json"
    folds_json.write_text(json.dumps({"train": ["vidB"], "valid": [], "test": ["vidA"]}))
    assert read_mosei_folds(mosei_root, folds_json)["test"] == ["vidA"]
    assert [s.id for s in load_dataset("cmu-mosei", mosei_root, split="test", folds_file=folds_json)] == ["vidA_0"]


def test_errors(mosei_root: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="CMU-MOSEI root folder not found"):
        load_mosei(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="split 'dev'"):
        load_mosei(mosei_root, split="dev")
    with pytest.raises(ConfigError, match="label rule"):
        load_mosei(mosei_root, rule="mean")
    (mosei_root / "cmu_mosei_std_folds.py").unlink()
    with pytest.raises(DataError, match="standard folds not found"):
        load_mosei(mosei_root, split="train")
    (mosei_root / "Raw" / "Videos" / "Full" / "Combined" / "vidB.mp4").unlink()
    with pytest.raises(DataError, match=r"vidB\.mp4: CMU-MOSEI video"):
        load_mosei(mosei_root, split="all")
    assert "vidB" not in load_mosei(mosei_root, split="all", missing_video="drop").groups
    with pytest.raises(DataError, match="segmented-transcript folder not found"):
        load_mosei(mosei_root, split="all", transcripts_dir="Raw/Transcript/Segmented/Missing")
    (mosei_root / "CMU_MOSEI_Labels.csd").unlink()
    with pytest.raises(DataError, match=r"CMU_MOSEI_Labels\.csd: CMU-MOSEI label file"):
        load_mosei(mosei_root, split="all")


def test_malformed_label_file(mosei_root: Path) -> None:
    bad = mosei_root / "CMU_MOSEI_Labels.csd"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(DataError, match="not an HDF5"):
        load_mosei(mosei_root, split="all")
    bad.unlink()
    with h5py.File(bad, "w") as f:
        f.create_group("A").create_group("x")
        f.create_group("B")
    with pytest.raises(DataError, match="'data' group"):
        load_mosei(mosei_root, split="all")
