"""The paper's five O-MER settings: openness values, protocols, and end-to-end quick runs.

The datasets are tiny fake copies of the native layouts (decodable mp4s with an audio track,
2-3 clips per class); the encoders are the tiny random ``paper`` profile.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from openmer.benchmarks import paper_settings as ps
from openmer.cli.app import app
from openmer.datasets import HCEP_MAFW_CLASSES, MOSEI_EMOTIONS, OVMERD_KNOWN
from openmer.errors import ConfigError
from openmer.media.synth import write_composite_clip
from openmer.protocol import open_set_subsets, openness, setting_protocol
from openmer.reference import paper_rows
from openmer.reporting.results import write_results
from tests.datasets.test_mafw import SPLITS, _write_xlsx
from tests.datasets.test_ovmerd import _write_csv

REFERENCE_HEADER = "## Published numbers (reference, not measured here)"
PAPER_OPENNESS = {
    "mafw": {"O(8:2)": 0.11, "O(6:4)": 0.23, "O(4:6)": 0.37, "O(2:8)": 0.55},
    "mosei": {"O(5:1)": 0.09, "O(4:2)": 0.18, "O(3:3)": 0.29, "O(2:4)": 0.42},
    "mafw-compound": {"O(10:32)": 0.51},
    "ov-merd": {"O(6:236)": 0.84},
    "cross": {"O(6:4)": 0.23},
}
RATE = 16000


def _clip(path: Path, seed: int, seconds: float = 0.5) -> None:
    rng = np.random.default_rng(seed)
    n = max(2, int(4 * seconds))
    frames = rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8)
    t = np.arange(int(RATE * seconds)) / RATE
    audio = (0.3 * np.sin(2 * np.pi * (200 + 40 * (seed % 10)) * t)).astype(np.float32)
    write_composite_clip(path, frames, 4, audio, RATE)


# ------------------------------------------------------------------------------- fake layouts
@pytest.fixture(scope="module")
def mafw_root(tmp_path_factory) -> Path:
    """10 emotions x 3 clips (2 fold-1 train, 1 test), 1 neutral, 2 compound clips (train, test)."""
    root = tmp_path_factory.mktemp("MAFW")
    clips = root / "data" / "clips"
    clips.mkdir(parents=True)
    rows = []  # (clip, single, compound, part)
    n = 0
    for cls in HCEP_MAFW_CLASSES:
        for part in ("train", "train", "test"):
            n += 1
            rows.append((f"{n:05d}", cls, cls, part))
    rows.append((f"{n + 1:05d}", "neutral", "neutral", "train"))
    rows.append((f"{n + 2:05d}", "anger", "anger_disgust", "train"))
    rows.append((f"{n + 3:05d}", "fear", "fear_surprise", "test"))
    for i, (clip, *_rest) in enumerate(rows):
        _clip(clips / f"{clip}.mp4", i)
    for label_set, col in (("single", 1), ("compound", 2)):
        d = root / SPLITS / label_set / "no_caption" / "set_1"
        d.mkdir(parents=True)
        for part in ("train", "test"):
            (d / f"{part}.txt").write_text("".join(f"{r[0]}.mp4 {r[col]}\n" for r in rows if r[3] == part))
    (root / "Labels").mkdir()
    _write_xlsx(root / "Labels" / "descriptive_text.xlsx",
                [[f"{r[0]}.mp4", "", f"a face showing {r[1]}"] for r in rows if r[1] != "neutral"])
    return root


@pytest.fixture(scope="module")
def mosei_root(tmp_path_factory) -> Path:
    """One full video per standard fold, each with six 0.5 s segments (one per emotion)."""
    root = tmp_path_factory.mktemp("CMU_MOSEI")
    videos = root / "Raw" / "Videos" / "Full" / "Combined"
    trans = root / "Raw" / "Transcript" / "Segmented" / "Combined"
    videos.mkdir(parents=True)
    trans.mkdir(parents=True)
    folds = {"train": ["vtrain"], "valid": ["vvalid"], "test": ["vtest"]}
    with h5py.File(root / "CMU_MOSEI_Labels.csd", "w") as f:
        data = f.create_group("All Labels").create_group("data")
        for i, vid in enumerate(v for vs in folds.values() for v in vs):
            feats = np.zeros((6, 7), np.float32)
            feats[np.arange(6), 1 + np.arange(6)] = 2.0
            ivals = np.array([[0.5 * k, 0.5 * k + 0.5] for k in range(6)])
            g = data.create_group(vid)
            g["features"], g["intervals"] = feats, ivals
            _clip(videos / f"{vid}.mp4", 100 + i, seconds=3.0)
            (trans / f"{vid}.txt").write_text("".join(
                f"{vid}___{k}___{a}___{b}___i feel {MOSEI_EMOTIONS[k]}\n" for k, (a, b) in enumerate(ivals)))
    (root / "cmu_mosei_std_folds.py").write_text("".join(f"standard_{k}_fold={v!r}\n" for k, v in folds.items()))
    return root


@pytest.fixture(scope="module")
def ov_root(tmp_path_factory) -> Path:
    """Six basic emotions x 3 clips, plus 3 clips of other labels."""
    root = tmp_path_factory.mktemp("mer2025-dataset")
    (root / "video").mkdir()
    labels = {f"sample_{i:08d}": f"['{c}']" for i, c in enumerate(c for c in OVMERD_KNOWN for _ in range(3))}
    labels.update({"sample_00000100": "['worried', 'sad2']", "sample_00000101": "['bored']",
                   "sample_00000102": "['pessimism']"})
    for i, name in enumerate(labels):
        _clip(root / "video" / f"{name}.mp4", 200 + i)
    _write_csv(root / "track2_train_ovmerd.csv", ["name", "openset"], [[k, v] for k, v in labels.items()])
    _write_csv(root / "subtitle_chieng.csv", ["name", "chinese", "english"],
               [[k, "", f"i feel {v}"] for k, v in labels.items()])
    return root


@pytest.fixture
def roots(mafw_root, mosei_root, ov_root) -> dict[str, object]:
    return {"mafw": mafw_root, "mafw-compound": mafw_root, "mosei": mosei_root, "ov-merd": ov_root,
            "cross": {"mafw": mafw_root, "mosei": mosei_root}}


def _tiny_config(name: str, make=None):
    """The quick preset, shrunk for the tiny random encoders (short CUEP waveforms, 3 head epochs)."""
    cfg = (make or ps.paper_setting_config)(name, quick=True)
    return cfg.model_copy(update={
        "hcep_options": {"cuep_audio_samples": 1600}, "posthoc": (), "clip_posthoc": (),
        "baseline_train": cfg.baseline_train.model_copy(update={"epochs": 3}),
    })


@pytest.fixture
def tiny_encoders(tiny_paper_profile, monkeypatch, tmp_path):
    monkeypatch.setattr("openmer.benchmarks.trials.profile_config", lambda name: tiny_paper_profile)
    monkeypatch.setenv("OPENMER_CACHE", str(tmp_path / "cache"))


# ------------------------------------------------------------------------------- tests
def test_openness_values_match_the_paper() -> None:
    table = ps.openness_table()
    got = {}
    for row in table:
        got.setdefault(row["setting"], {})[row["level"]] = row["openness"]
        assert row["openness"] == round(openness(row["n_known"], row["n_unknown"]), 2)
    assert got == PAPER_OPENNESS
    assert list(ps.SETTINGS) == list(PAPER_OPENNESS)
    res = CliRunner().invoke(app, ["openness"])
    assert res.exit_code == 0
    assert "mafw-compound  O(10:32)      0.51" in res.output and "ov-merd        O(6:236)      0.84" in res.output


def test_protocols_on_the_fake_layouts(roots) -> None:
    mafw = ps.load_setting("mafw", roots["mafw"])
    proto = mafw.protocol()
    assert "neutral" not in set(mafw.manifest.labels) and list(proto.levels) == ps.SETTINGS["mafw"].levels
    assert all(len(s) == 4 for s in proto.levels.values())
    part = proto.partition
    assert len(part.test_groups) == 11 and len(part.val_groups) == 10  # fold-1 test; 1 of 2 train clips per class
    split = proto.levels["O(2:8)"][0]
    sub = open_set_subsets(list(mafw.manifest.labels), mafw.manifest.groups, split, part)
    assert (sub["labels"][sub["train"]] >= 0).all() and (sub["labels"][sub["test"]] < 0).any()

    comp = ps.load_setting("mafw-compound", roots["mafw"])
    proto = comp.protocol()
    [(label, [split])] = proto.levels.items()
    assert label == "O(10:2)" and split.unknown_classes == ("anger_disgust", "fear_surprise")

    ov = ps.load_setting("ov-merd", roots["ov-merd"])
    [(label, [split])] = ov.protocol().levels.items()
    assert label == "O(6:3)" and split.known_classes == OVMERD_KNOWN

    cross = ps.load_setting("cross", roots["cross"])
    proto = cross.protocol()
    assert list(proto.levels) == ["O(6:4)"]
    assert {g.split("/")[0] for g in proto.partition.test_groups} == {"mafw", "mosei"}
    assert all(Path(s.video).is_absolute() for s in cross.manifest)

    mosei = ps.load_setting("mosei", roots["mosei"])
    with pytest.raises(ConfigError, match="official parts"):  # the datasets' parts are part of the data
        setting_protocol(ps.SETTINGS["mosei"], list(mosei.manifest.labels), mosei.manifest.groups)


@pytest.mark.parametrize("name", ["mafw", "mafw-compound", "ov-merd", "cross"])
def test_setting_runs_end_to_end(name, roots, tiny_encoders, tmp_path) -> None:
    # HCEP itself runs in the mosei CLI test; here MSP on the cached features keeps the test fast
    repeats = 2 if ps.SETTINGS[name].fixed_known else 1  # fixed known set: seed repeats as splits 0, 1
    cfg = _tiny_config(name).model_copy(update={"methods": ("msp",), "n_splits": repeats})
    result = ps.run_paper_setting(name, roots[name], config=cfg)
    level = result.meta["setting"]["levels"][0]
    expected = [("msp", level, i) for i in range(repeats)]
    assert [(r["method"], r["level"], r["split"]) for r in result.records] == expected
    assert [r.split for r in result.runs] == list(range(repeats))
    for r in result.records:
        assert 0.0 <= r["auroc"] <= 1.0 and 0.0 <= r["oscr"] <= 1.0
    rows = paper_rows(setting=name)  # the setting's results table of the paper, labelled reference
    assert rows and {r["table"] for r in rows} == {ps.SETTINGS[name].table}
    paths = write_results(tmp_path, result.records, result.meta, reference_rows=rows)
    assert REFERENCE_HEADER in paths["markdown"].read_text()


def test_cli_mosei_quick_with_reference_rows(roots, tiny_encoders, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(ps, "paper_setting_config",
                        lambda name, _make=ps.paper_setting_config, **kw: _tiny_config(name, _make))
    row = {"table": "Table 3", "setting": "mosei", "method": "HCEP", "level": "O(5:1)",
           "auroc": 0.5, "oscr": 0.4, "source": "test row"}
    monkeypatch.setattr("openmer.reference.paper_rows", lambda setting=None, table=None: [row] * (setting == "mosei"))
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["benchmark", "mosei", "--quick", "--root", str(roots["mosei"]), "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "results.json").read_text())
    from openmer.methods import list_methods

    assert sorted(r["method"] for r in data["records"]) == sorted(list_methods())  # every registered method
    assert {r["level"] for r in data["records"]} == {"O(5:1)"}
    assert data["reference"][0]["source"] == "test row"
    assert REFERENCE_HEADER in (out / "results.md").read_text()


@pytest.mark.parametrize(("args", "match"), [
    (["benchmark", "mafw"], "benchmark mafw needs its dataset folder: --root DIR"),
    (["benchmark", "cross", "--root", "x"], "--root mafw=MAFW_DIR --root mosei=MOSEI_DIR"),
    (["benchmark", "emodb", "--root", "x"], "--root is for"),
])
def test_cli_root_errors_are_one_line(args, match, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1 and match in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
