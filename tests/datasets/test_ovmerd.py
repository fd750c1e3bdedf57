"""OV-MERD adapter on a tiny fake copy of the MER2025 release folder."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from openmer.datasets import OVMERD_KNOWN, load_dataset, load_ovmerd, ovmerd_label, read_ovmerd_labels, synonym_lookup
from openmer.datasets.ovmerd import OVMERD_SYNONYMS
from openmer.errors import ConfigError, DataError

OPENSET = {
    "sample_00000007": "['excited', 'joyful', 'happy']",      # -> happiness
    "sample_00000033": "['pessimism', 'worry']",              # unknown: pessimism
    "sample_00000039": "[angry, mad]",                        # unquoted list -> anger
    "sample_00000174": "['surprised', 'delighted', 'happy']",  # surprise + happiness: mixed
    "sample_00000220": "['Surprised']",                       # case-insensitive -> surprise
}
SUBTITLES = {
    "sample_00000007": ("太好了", "That's great!"),
    "sample_00000033": ("唉", "Sigh."),
    "sample_00000039": ("滚", "Get out!"),
    "sample_00000174": ("真的吗", "Really?"),
    "sample_00000220": ("啊", ""),
}


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


@pytest.fixture
def ov_root(tmp_path: Path) -> Path:
    root = tmp_path / "mer2025-dataset"
    (root / "video").mkdir(parents=True)
    (root / "audio").mkdir()
    for name in OPENSET:
        (root / "video" / f"{name}.mp4").write_bytes(b"")  # only paths are checked
    (root / "audio" / "sample_00000007.wav").write_bytes(b"")
    _write_csv(root / "track2_train_ovmerd.csv", ["name", "openset"], [[k, v] for k, v in OPENSET.items()])
    _write_csv(root / "subtitle_chieng.csv", ["name", "chinese", "english"], [[k, *v] for k, v in SUBTITLES.items()])
    return root


def test_load_default(ov_root: Path) -> None:
    m = load_ovmerd(ov_root)
    labels = {s.id: s.label for s in m}
    assert labels == {
        "sample_00000007": "happiness",
        "sample_00000033": "pessimism",
        "sample_00000039": "anger",
        "sample_00000220": "surprise",
    }  # the mixed clip is dropped
    s = {x.id: x for x in m}["sample_00000007"]
    assert s.video == "video/sample_00000007.mp4" and s.audio == "audio/sample_00000007.wav"
    assert s.text == "That's great!" and s.group == "sample_00000007"
    assert {x.id: x.text for x in m}["sample_00000220"] is None  # empty subtitle
    assert set(m.classes) - set(OVMERD_KNOWN) == {"pessimism"}


def test_mixed_first_chinese_and_nested_video_dir(ov_root: Path) -> None:
    (ov_root / "video").rename(ov_root / "tmp")
    (ov_root / "video").mkdir()
    (ov_root / "tmp").rename(ov_root / "video" / "video")
    m = load_ovmerd(ov_root, mixed="first", text_language="zh")
    s = {x.id: x for x in m}
    assert s["sample_00000174"].label == "surprise" and s["sample_00000174"].text == "真的吗"
    assert s["sample_00000174"].video == "video/video/sample_00000174.mp4"


def test_custom_synonyms(ov_root: Path) -> None:
    syn = {**OVMERD_SYNONYMS, "anger": ("angry", "mad"), "happiness": ("happy", "joyful", "excited")}
    m = load_dataset("ov-merd", ov_root, synonyms=syn)
    assert {s.id: s.label for s in m}["sample_00000007"] == "happiness"
    lookup = synonym_lookup(("happiness", "anger"), {"happiness": ["joy"], "anger": ["mad"]})
    assert ovmerd_label(["Worry", "MAD"], lookup) == "anger"
    assert ovmerd_label(["worry", "doubt"], lookup) == "worry"
    assert ovmerd_label([], lookup) is None


def test_label_sets(ov_root: Path) -> None:
    sets = read_ovmerd_labels(ov_root / "track2_train_ovmerd.csv")
    assert sets["sample_00000039"] == ("angry", "mad")
    assert sets["sample_00000007"] == ("excited", "joyful", "happy")


def test_config_errors(ov_root: Path) -> None:
    with pytest.raises(ConfigError, match="cover exactly the known classes"):
        load_ovmerd(ov_root, known=("happiness", "calm"))
    with pytest.raises(ConfigError, match="synonym of both"):
        synonym_lookup(("happiness", "surprise"), {"happiness": ["wow"], "surprise": ["wow"]})
    with pytest.raises(ConfigError, match="mixed"):
        load_ovmerd(ov_root, mixed="vote")


def test_data_errors(ov_root: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="OV-MERD root folder"):
        load_ovmerd(tmp_path / "nowhere")
    (ov_root / "video" / "sample_00000033.mp4").unlink()
    with pytest.raises(DataError, match=r"sample_00000033\.mp4: video file"):
        load_ovmerd(ov_root)
    (ov_root / "subtitle_chieng.csv").unlink()
    with pytest.raises(DataError, match=r"subtitle_chieng\.csv: OV-MERD transcript file not found"):
        load_ovmerd(ov_root)
    _write_csv(ov_root / "track2_train_ovmerd.csv", ["name", "labels"], [["x", "[a]"]])
    with pytest.raises(DataError, match=r"missing column\(s\) \['openset'\]"):
        load_ovmerd(ov_root)
    _write_csv(ov_root / "track2_train_ovmerd.csv", ["name", "openset"], [["x", "happy, sad"]])
    with pytest.raises(DataError, match="is not a list"):
        read_ovmerd_labels(ov_root / "track2_train_ovmerd.csv")
    (ov_root / "track2_train_ovmerd.csv").unlink()
    with pytest.raises(DataError, match="open-vocabulary label file not found"):
        load_ovmerd(ov_root)


def test_missing_video_folder(ov_root: Path) -> None:
    for p in (ov_root / "video").iterdir():
        p.unlink()
    (ov_root / "video").rmdir()
    with pytest.raises(DataError, match="OV-MERD clip folder"):
        load_ovmerd(ov_root)
