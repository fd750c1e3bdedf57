"""MAFW adapter on a tiny fake copy of the distributed layout."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from openmer.datasets import HCEP_MAFW_CLASSES, MAFW_SINGLE_CLASSES, load_dataset, load_mafw, read_xlsx_rows
from openmer.errors import ConfigError, DataError

SPLITS = "Train & Test Set"
#: clip -> (single label, compound label, zh text, en text); neutral has no description
CLIPS = {
    "00001": ("anger", "anger_disgust", "一个男人生气。", "A man speaks excitedly."),
    "00002": ("happiness", "happiness", "一个女人笑。", "A woman smiles."),
    "00003": ("neutral", "neutral", "", ""),
    "00004": ("sadness", "sadness_helplessness", "他哭了。", "He cries."),
    "00005": ("fear", "fear_surprise", "她害怕。", "She is afraid."),
}
TEST_OF_FOLD = {1: ["00001", "00002"], 2: ["00003"], 3: ["00004"], 4: ["00005"], 5: ["00002", "00004"]}


def _write_mp4(path: Path) -> None:
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=4)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 40 * i, np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


def _write_xlsx(path: Path, rows: list[list[str]]) -> None:
    """A minimal workbook: first column as shared strings, the rest as inline strings."""
    ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    shared = [r[0] for r in rows]
    sst = "".join(f"<si><t>{s}</t></si>" for s in shared)
    body = ""
    for i, r in enumerate(rows, start=1):
        cells = f'<c r="A{i}" t="s"><v>{i - 1}</v></c>'
        cells += "".join(
            f'<c r="{col}{i}" t="inlineStr"><is><t>{v}</t></is></c>' for col, v in zip("BC", r[1:], strict=False) if v
        )
        body += f'<row r="{i}">{cells}</row>'
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("xl/sharedStrings.xml", f'<sst xmlns="{ns}">{sst}</sst>')
        z.writestr("xl/worksheets/sheet1.xml", f'<worksheet xmlns="{ns}"><sheetData>{body}</sheetData></worksheet>')


@pytest.fixture
def mafw_root(tmp_path: Path) -> Path:
    root = tmp_path / "MAFW"
    clips = root / "data" / "clips"
    clips.mkdir(parents=True)
    _write_mp4(clips / "00001.mp4")
    for c in list(CLIPS)[1:]:
        (clips / f"{c}.mp4").write_bytes(b"")  # only paths are checked
    for label_set, col in (("single", 0), ("compound", 1)):
        for fold, test in TEST_OF_FOLD.items():
            d = root / SPLITS / label_set / "no_caption" / f"set_{fold}"
            d.mkdir(parents=True)
            for part, ids in (("train", [c for c in CLIPS if c not in test]), ("test", test)):
                (d / f"{part}.txt").write_text("".join(f"{c}.mp4 {CLIPS[c][col]}\n" for c in ids), encoding="utf-8")
    (root / "Labels").mkdir()
    _write_xlsx(root / "Labels" / "descriptive_text.xlsx", [[f"{c}.mp4", v[2], v[3]] for c, v in CLIPS.items() if v[3]])
    return root


def test_all_clips_single(mafw_root: Path) -> None:
    m = load_mafw(mafw_root)
    assert sorted(m.ids) == sorted(CLIPS)
    s = {x.id: x for x in m}
    assert s["00001"].label == "anger" and s["00001"].video == "data/clips/00001.mp4"
    assert s["00001"].text == "A man speaks excitedly." and s["00001"].group == "00001"
    assert s["00003"].text is None  # neutral clips have no description
    assert set(m.classes) <= set(MAFW_SINGLE_CLASSES)
    assert m.path(s["00001"], "video").is_file()


def test_fold_parts_and_chinese_text(mafw_root: Path) -> None:
    train = load_mafw(mafw_root, fold=1, part="train", text_language="zh")
    test = load_mafw(mafw_root, fold=1, part="test")
    assert sorted(test.ids) == ["00001", "00002"]
    assert set(train.ids).isdisjoint(test.ids) and len(train) + len(test) == len(CLIPS)
    assert {x.id: x.text for x in train}["00004"] == "他哭了。"
    assert test.name == "mafw-single-set1-test"


def test_compound_labels(mafw_root: Path) -> None:
    m = load_mafw(mafw_root, label_set="compound", fold=2, part="train")
    assert {x.id: x.label for x in m}["00001"] == "anger_disgust"


def test_text_from_with_caption_files_in_gb18030(mafw_root: Path) -> None:
    (mafw_root / "Labels" / "descriptive_text.xlsx").unlink()
    d = mafw_root / SPLITS / "single" / "with_caption" / "set_1"
    d.mkdir(parents=True)
    line = "00004.mp4\tsadness\t他哭了。\tHe cries.\n"
    (d / "train.txt").write_bytes(line.encode("gb18030"))
    m = load_mafw(mafw_root, text_language="zh")
    assert {x.id: x.text for x in m}["00004"] == "他哭了。"


def test_readme_caption_label_layout(tmp_path: Path) -> None:
    root = tmp_path / "mafw"
    (root / "clips").mkdir(parents=True)
    (root / "clips" / "03747.mp4").write_bytes(b"")
    (root / "caption-label").mkdir()
    (root / "caption-label" / "single_label.txt").write_text(
        "03747.mp4\tanger\t<br>一个男人说话。\t<br>A man speaks excitedly.\n", encoding="utf-8"
    )
    m = load_mafw(root)
    assert m[0].label == "anger" and m[0].video == "clips/03747.mp4" and m[0].text == "A man speaks excitedly."


def test_xlsx_reader(mafw_root: Path) -> None:
    rows = read_xlsx_rows(mafw_root / "Labels" / "descriptive_text.xlsx")
    assert rows[0] == ["00001.mp4", "一个男人生气。", "A man speaks excitedly."]


def test_hcep_classes() -> None:
    assert len(MAFW_SINGLE_CLASSES) == 11 and len(HCEP_MAFW_CLASSES) == 10 and "neutral" not in HCEP_MAFW_CLASSES


def test_registry(mafw_root: Path) -> None:
    assert len(load_dataset("mafw", mafw_root, fold=3, part="test")) == 1
    with pytest.raises(ConfigError, match=r"unknown dataset 'mafv'.*mafw"):
        load_dataset("mafv", mafw_root)
    with pytest.raises(ConfigError, match="takes no option"):
        load_dataset("mafw", mafw_root, split="train")


def test_errors(mafw_root: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="MAFW root folder not found"):
        load_mafw(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="fold"):
        load_mafw(mafw_root, fold=6)
    with pytest.raises(ConfigError, match="needs a fold"):
        load_mafw(mafw_root, part="train")
    (mafw_root / SPLITS / "single" / "no_caption" / "set_2" / "test.txt").unlink()
    with pytest.raises(DataError, match=r"set_2.test\.txt: MAFW split file"):
        load_mafw(mafw_root, fold=2, part="test")
    (mafw_root / "data" / "clips" / "00005.mp4").unlink()
    with pytest.raises(DataError, match=r"00005\.mp4: video file"):
        load_mafw(mafw_root)
    (mafw_root / SPLITS / "single" / "no_caption" / "set_1" / "train.txt").write_text("00004.mp4 joy\n")
    with pytest.raises(DataError, match="'joy' is not a MAFW single class"):
        load_mafw(mafw_root, fold=1, part="train", check_files=False)


def test_missing_clip_and_split_folders(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    with pytest.raises(DataError, match=r"data.clips: MAFW clip folder"):
        load_mafw(tmp_path / "m")
    (tmp_path / "m" / "data" / "clips").mkdir(parents=True)
    with pytest.raises(DataError, match="MAFW official split folder"):
        load_mafw(tmp_path / "m")
