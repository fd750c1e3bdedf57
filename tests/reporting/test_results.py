"""Tests for openmer.reporting.results and openmer.reporting.scores: summary, results.json/.md, RunScores I/O."""

from __future__ import annotations

import json

import numpy as np
import pytest

from openmer.reporting.results import METRICS, summarise, write_results
from openmer.reporting.scores import RunScores


def _record(method, modalities, level, openness, split, **metrics):
    base = dict.fromkeys(METRICS, 0.5)
    base.update(metrics)
    return {"method": method, "modalities": modalities, "level": level, "openness": openness, "split": split, **base}


@pytest.fixture
def records(rng):
    out = []
    for method in ("msp", "arpl"):
        for level, openness in (("O(6:2)", 0.1339746), ("O(2:6)", 0.5)):
            for split in range(3):
                values = rng.uniform(0.3, 0.95, len(METRICS))
                out.append(_record(method, "face_au+audio", level, openness, split,
                                   **{m: float(v) for m, v in zip(METRICS, values, strict=True)}))
    return out


# ----------------------------------------------------------------------------- summarise


def test_summarise_hand_case():
    recs = [
        _record("arpl", "audio", "O(6:2)", 0.134, 0, auroc=0.8, oscr=0.6),
        _record("arpl", "audio", "O(6:2)", 0.134, 1, auroc=0.6, oscr=0.5),
        _record("arpl", "audio", "O(6:2)", 0.134, 2, auroc=0.7, oscr=0.4, seconds=3.0),
        _record("msp", "audio", "O(6:2)", 0.134, 0, auroc=0.9, oscr=0.7),
    ]
    summary = summarise(recs)
    assert [(s["method"], s["n_splits"]) for s in summary] == [("arpl", 3), ("msp", 1)]
    arpl = summary[0]
    assert arpl["splits"] == [0, 1, 2]
    assert arpl["auroc_mean"] == pytest.approx(0.7)
    assert arpl["auroc_std"] == pytest.approx(np.sqrt(((0.1) ** 2 + 0.1**2 + 0) / 3))  # population std, ddof=0
    assert arpl["oscr_mean"] == pytest.approx(0.5)
    assert arpl["oscr_std"] == pytest.approx(np.std([0.6, 0.5, 0.4]))
    assert "seconds_mean" not in arpl  # an extra key is summarised only when every record has it
    assert summary[1]["auroc_std"] == 0.0


def test_summarise_numeric_extras_and_modalities_tuple():
    recs = [_record("msp", ("video", "audio"), "O(4:4)", 0.29, s, seconds=float(s)) for s in range(2)]
    (row,) = summarise(recs)
    assert row["modalities"] == "video+audio"
    assert row["seconds_mean"] == pytest.approx(0.5)


def test_summarise_rejects_missing_key_and_percentages():
    rec = _record("msp", "audio", "O(6:2)", 0.13, 0)
    del rec["oscr"]
    with pytest.raises(ValueError, match="lacks key"):
        summarise([rec])
    with pytest.raises(ValueError, match="not a fraction"):
        summarise([_record("msp", "audio", "O(6:2)", 0.13, 0, auroc=85.3)])


# ----------------------------------------------------------------------------- write_results


def test_results_json_is_deterministic(tmp_path, records):
    meta = {"machine": {"cpu_count": 2, "python": "3.11"}, "seeds": [0], "seconds": 1.23456789, "command": "openmer x"}
    a = write_results(tmp_path / "a", records, meta)
    b = write_results(tmp_path / "b", [dict(r) for r in records], dict(meta))
    assert a["json"].read_bytes() == b["json"].read_bytes()
    assert a["markdown"].read_bytes() == b["markdown"].read_bytes()
    data = json.loads(a["json"].read_text())
    assert set(data) == {"meta", "records", "summary"}
    assert data["meta"]["seconds"] == 1.234568  # rounded to 6 decimals
    assert "openmer_version" in data["meta"]
    assert len(data["records"]) == len(records) and len(data["summary"]) == 4
    first = data["summary"][0]
    assert first["auroc_mean"] == round(np.mean([r["auroc"] for r in records[:3]]), 6)
    assert list(data["records"][0]) == sorted(data["records"][0])  # sorted keys


def test_results_md_is_readable(tmp_path, records):
    ref = [{"method": "HCEP", "modalities": "V+A+T", "level": "O(6:2)", "auroc": 0.853, "source": "paper, Table 3"}]
    paths = write_results(tmp_path, records, {"machine": "test box", "seconds": 90.0}, reference_rows=ref)
    md = paths["markdown"].read_text()
    for needle in ("msp", "arpl", "(%)", "O(6:2)", "O(2:6)", "ddof=0", "test box", "90.0 s", "Splits"):
        assert needle in md
    assert "Published numbers (reference, not measured here)" in md
    assert "85.3" in md and "paper, Table 3" in md
    # levels are ordered by openness, msp before arpl (order of the records)
    assert md.index("O(6:2) AUROC") < md.index("O(2:6) AUROC")
    assert md.index("| msp |") < md.index("| arpl |")
    mean = 100 * np.mean([r["auroc"] for r in records[:3]])
    assert f"{mean:.1f} ± " in md
    assert "reference" in json.loads(paths["json"].read_text())


def test_reference_rows_must_be_fractions(tmp_path, records):
    with pytest.raises(ValueError, match="not a fraction"):
        write_results(tmp_path, records, {}, reference_rows=[{"method": "HCEP", "auroc": 85.3}])


# ----------------------------------------------------------------------------- RunScores


def _run(rng, n=50, features=True):
    labels = rng.integers(-1, 3, n)
    return RunScores(
        method="arpl", modalities=("face_au", "audio"), level="O(3:1)", openness=0.1339746, split=2,
        known_classes=["angry", "happy", "sad"], unknown_classes=["calm"],
        confidence=rng.random(n), prediction=rng.integers(0, 3, n), labels=labels,
        class_names=[["calm", "angry", "happy", "sad"][v + 1] for v in labels],
        features=rng.normal(size=(n, 4)).astype(np.float32) if features else None, threshold=0.25,
    )


@pytest.mark.parametrize("features", [True, False])
def test_run_scores_round_trip(tmp_path, rng, features):
    run = _run(rng, features=features)
    path = run.save(tmp_path / "runs" / "arpl_split2")
    assert path.suffix == ".npz" and path.with_suffix(".json").is_file()
    back = RunScores.load(path.with_suffix(".json"))
    for name in ("method", "modalities", "level", "openness", "split", "known_classes", "unknown_classes",
                 "class_names", "threshold"):
        assert getattr(back, name) == getattr(run, name), name
    for name in ("confidence", "prediction", "labels"):
        np.testing.assert_array_equal(getattr(back, name), getattr(run, name))
        assert getattr(back, name).dtype == getattr(run, name).dtype
    if features:
        np.testing.assert_array_equal(back.features, run.features)
    else:
        assert back.features is None
    assert back.threshold_confidence is None and back.threshold_source is None


def test_run_scores_keep_the_threshold_and_the_confidences_it_came_from(tmp_path, rng):
    val = rng.random(7)
    run = _run(rng)
    run = RunScores(**{**run.__dict__, "threshold": float(np.quantile(val, 0.1)), "threshold_confidence": val,
                       "threshold_source": "validation"})  # the older word: read as "val"
    back = RunScores.load(run.save(tmp_path / "r"))
    np.testing.assert_array_equal(back.threshold_confidence, val)
    assert run.threshold_source == back.threshold_source == "val" and back.threshold == run.threshold
    with pytest.raises(ValueError, match="threshold_source"):
        RunScores(**{**run.__dict__, "threshold_source": "test"})
    with pytest.raises(ValueError, match="threshold_confidence"):
        RunScores(**{**run.__dict__, "threshold_confidence": np.array([np.nan])})


def test_run_scores_validation(rng):
    with pytest.raises(ValueError, match="prediction must have shape"):
        RunScores("msp", ("audio",), "O(1:1)", 0.29, 0, ["a"], ["b"], np.zeros(3), np.zeros(2, int), np.zeros(3, int))
    with pytest.raises(ValueError, match="prediction must be in"):
        RunScores("msp", ("audio",), "O(1:1)", 0.29, 0, ["a"], ["b"], np.zeros(2), np.array([0, 1]), np.zeros(2, int))
    with pytest.raises(ValueError, match="features must have shape"):
        RunScores("msp", ("audio",), "O(1:1)", 0.29, 0, ["a"], ["b"], np.zeros(2), np.zeros(2, int),
                  np.zeros(2, int), features=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="tuple of names"):
        RunScores("msp", "audio", "O(1:1)", 0.29, 0, ["a"], ["b"], np.zeros(2), np.zeros(2, int), np.zeros(2, int))


def test_run_scores_load_missing_file(tmp_path, rng):
    path = _run(rng).save(tmp_path / "r.npz")
    path.with_suffix(".json").unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        RunScores.load(path)


# ----------------------------------------------------------------------------- cross-dataset records


def test_train_and_test_sets_identify_groups_and_get_columns(tmp_path):
    recs = [
        {**_record("msp", "text+audio", "O(5:1)", 0.15, s, auroc=a), "train_set": "emodb", "test_set": t}
        for s in range(2) for t, a in (("emodb", 0.8), ("ravdess-speech", 0.6))
    ]
    summary = summarise(recs)
    assert [(r["test_set"], r["n_splits"], r["auroc_mean"]) for r in summary] == [
        ("emodb", 2, pytest.approx(0.8)), ("ravdess-speech", 2, pytest.approx(0.6))]
    assert all(r["train_set"] == "emodb" for r in summary)
    # single-dataset rows stay as they were
    assert "train_set" not in summarise([_record("msp", "a", "O(1:1)", 0.3, 0)])[0]
    paths = write_results(tmp_path, recs, {"dataset": "x"}, sections=[("Extra table", ["| a |", "|---|", "| 1 |"])])
    md = paths["markdown"].read_text()
    assert "| Method | Modalities | Trained on | Tested on | O(5:1) AUROC / OSCR (%)" in md
    assert "| msp | text+audio | emodb | ravdess-speech | 60.0 ± 0.0" in md
    assert "## Extra table\n\n| a |" in md and md.index("## Extra table") < md.index("## How these numbers")


def test_run_scores_train_and_test_set(tmp_path, rng):
    run = _run(rng)
    run.train_set, run.test_set = None, None
    assert run.transfer is None and "->" not in run.name
    cross = RunScores(**{**run.__dict__, "train_set": "emodb", "test_set": "ravdess-speech"})
    assert cross.transfer == "emodb -> ravdess-speech" and cross.name.endswith("emodb -> ravdess-speech · split 2")
    assert cross.file_stem == "arpl_face_au-audio_O3-1_emodb-to-ravdess-speech_split2"
    back = RunScores.load(cross.save(tmp_path / cross.file_stem))
    assert (back.train_set, back.test_set) == ("emodb", "ravdess-speech")
    assert RunScores.load(run.save(tmp_path / "plain")).train_set is None
    with pytest.raises(ValueError, match="set both train_set and test_set or neither"):
        RunScores(**{**run.__dict__, "train_set": "emodb"})
