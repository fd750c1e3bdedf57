"""`openmer.training.run.train`: seeds, split column, threshold source, checks before any work."""

from __future__ import annotations

import json
import logging

import pytest

from openmer.errors import CheckpointError, ConfigError, DataError, OpenmerWarning, OutputError
from openmer.runs import RUN_FILE
from openmer.training.run import train
from tests.helpers.run_folders import FAST, KNOWN, clip_rows, copy_run, write_manifest


def _train(data, profile, out, **kw):
    kw.setdefault("method", "arpl")
    kw.setdefault("train_config", FAST)
    kw.setdefault("cache_dir", out.parent / "cache")
    return train(data, kw.pop("known", KNOWN), profile=profile, out=out, **kw)


@pytest.mark.parametrize("method", ["arpl", "hcep"])
def test_same_seed_gives_byte_identical_weights(tmp_path, tiny_paper_profile, method):
    """Two identical runs in one process: the initial parameters must follow --seed, not the global RNG."""
    # with audio, HCEP has a projection of the audio block (nn.Linear) drawn from the RNG
    data = write_manifest(tmp_path / "m.csv", clip_rows(tmp_path, groups=3, per_class=1, audio=method == "hcep"))
    cfg = FAST.model_copy(update={"epochs": 1, "seed": 7})
    opts = {"cuep_audio_samples": 400} if method == "hcep" else None  # short CUEP waveforms: fast
    # the paper preset: the tiny paper profile's wav2vec 2.0 has no late prompt entry (the CPU preset's)
    a = _train(data, tiny_paper_profile, tmp_path / "a", method=method, train_config=cfg, method_options=opts,
               preset="paper")
    b = _train(data, tiny_paper_profile, tmp_path / "b", method=method, train_config=cfg, method_options=opts,
               preset="paper")
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    if method == "arpl":
        c = _train(data, tiny_paper_profile, tmp_path / "c", method=method,
                   train_config=cfg.model_copy(update={"seed": 8}))
        assert (c / "model.safetensors").read_bytes() != (a / "model.safetensors").read_bytes()


def test_split_column_train_uses_train_and_val_rows_only(tmp_path, tiny_paper_profile):
    rows = clip_rows(tmp_path, groups=4, per_class=1, audio=False, splits=("train", "train", "val", "test"))
    run = _train(write_manifest(tmp_path / "m.csv", rows), tiny_paper_profile, tmp_path / "run")
    info = json.loads((run / RUN_FILE).read_text())
    assert sorted(info["samples"]["train"]) == ["happy-0-0", "happy-1-0", "sad-0-0", "sad-1-0"]
    assert sorted(info["samples"]["val"]) == ["happy-2-0", "sad-2-0"]
    assert info["data"]["split_rule"] == "manifest split column"
    assert info["data"]["dropped_labels"] == {"angry": 3}  # the test rows are not counted: never read


def test_split_column_must_be_complete(tmp_path, tiny_paper_profile):
    rows = clip_rows(tmp_path, groups=2, per_class=1, audio=False, splits=("train", ""))
    with pytest.raises(DataError, match=r"3 row\(s\) have no split"):
        _train(write_manifest(tmp_path / "m.csv", rows), tiny_paper_profile, tmp_path / "run")


def test_threshold_source_is_recorded(tmp_path, tiny_paper_profile, audio_text_data, trained_run):
    assert json.loads((trained_run / RUN_FILE).read_text())["threshold"]["source"] == "train"  # the paper's default
    run = _train(audio_text_data, tiny_paper_profile, tmp_path / "run", threshold_from="val", acceptance=0.6)
    th = json.loads((run / RUN_FILE).read_text())["threshold"]
    assert th["source"] == "val" and th["acceptance"] == 0.6 and "Sec. 4.4.6" in th["rule"]
    assert [p["acceptance"] for p in th["at_acceptance"]] == [0.6, 0.61, 0.62, 0.63, 0.64, 0.65, 0.66, 0.9]
    assert th["value"] == next(p["threshold"] for p in th["at_acceptance"] if p["acceptance"] == 0.6)
    one_group = write_manifest(tmp_path / "one.csv", clip_rows(tmp_path, groups=1, audio=False))
    with pytest.raises(ConfigError, match="no validation clip"):
        _train(one_group, tiny_paper_profile, tmp_path / "run2", threshold_from="val")


def test_dropped_rows_are_reported_and_near_labels_warned(tmp_path, tiny_paper_profile, caplog):
    rows = clip_rows(tmp_path, groups=2, per_class=1, audio=False)
    rows += [{"id": "x1", "text": "so happy", "label": "Happy ", "group": "s0"},
             {"id": "x2", "text": "so sad", "label": "SAD", "group": "s1"}]
    with caplog.at_level(logging.INFO, logger="openmer"), pytest.warns(OpenmerWarning) as seen:
        run = _train(write_manifest(tmp_path / "m.csv", rows), tiny_paper_profile, tmp_path / "run")
    messages = [str(w.message) for w in seen]
    assert any("label 'Happy ' differs from the known class 'happy' only in case or spaces" in m for m in messages)
    assert any("'SAD'" in m for m in messages)
    assert "left out 4 row(s) whose label is not a known class: Happy  1, SAD 1, angry 2" in caplog.text
    assert json.loads((run / RUN_FILE).read_text())["data"]["dropped_labels"] == {"Happy ": 1, "SAD": 1, "angry": 2}


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"acceptance": 1.5}, ConfigError, r"--acceptance: acceptance must be in \(0, 1\], got 1.5"),
    ({"acceptance": 0.0}, ConfigError, "acceptance must be in"),
    ({"threshold_from": "test"}, ConfigError, "--threshold-from must be 'train'"),
    ({"known": ["happy"]}, ConfigError, "at least 2 classes"),
    ({"known": ["happy", "happy"]}, ConfigError, "more than once"),
    ({"method": "nope"}, ConfigError, "unknown method 'nope'"),
])
def test_options_are_checked_before_any_work(tmp_path, tiny_paper_profile, audio_text_data, kwargs, error, match,
                                             monkeypatch):
    monkeypatch.setattr("openmer.methods.inputs.encode_features", _must_not_run)
    with pytest.raises(error, match=match):
        _train(audio_text_data, tiny_paper_profile, tmp_path / "run", **kwargs)
    assert not (tmp_path / "run").exists()


def _must_not_run(*args, **kwargs):
    raise AssertionError("work started before the options were checked")


def test_unwritable_out_fails_before_any_work(tmp_path, tiny_paper_profile, audio_text_data, monkeypatch):
    monkeypatch.setattr("openmer.methods.inputs.encode_features", _must_not_run)
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OutputError, match=r"file/run: cannot create the folder"):
        _train(audio_text_data, tiny_paper_profile, tmp_path / "file" / "run")


@pytest.mark.parametrize(("change", "field"), [
    ({"known": ["sad", "happy"]}, "known_classes"),
    ({"known": ["happy", "sad", "angry"]}, "known_classes"),
    ({"method": "msp"}, "method"),
    ({"modalities": ["text"]}, "modalities"),
    ("profile", "profile"),
    ("data", "data"),
])
def test_resume_with_other_settings_is_refused_naming_the_field(tmp_path, tiny_paper_profile, audio_text_data,
                                                               trained_run, change, field, monkeypatch):
    run = copy_run(trained_run, tmp_path / "run")
    kwargs = {"modalities": ["audio", "text"]}
    data, profile = audio_text_data, tiny_paper_profile
    if change == "profile":
        profile = tiny_paper_profile.with_options("text", max_length=8)
    elif change == "data":
        rows = clip_rows(tmp_path, groups=4)[:-1]
        data = write_manifest(tmp_path / "other.csv", rows)
    else:
        kwargs.update(change)
    monkeypatch.setattr("openmer.methods.inputs.encode_features", _must_not_run)
    with pytest.raises(CheckpointError, match=rf"cannot resume: {field} differs \(the run was started with"):
        _train(data, profile, run, resume=True, **kwargs)


def test_out_holding_a_run_is_refused_unless_overwrite(tmp_path, tiny_paper_profile, audio_text_data, trained_run):
    run = copy_run(trained_run, tmp_path / "run")
    before = (run / "model.safetensors").read_bytes()
    with pytest.raises(ConfigError, match="already holds a run"):
        _train(audio_text_data, tiny_paper_profile, run, modalities=["audio", "text"])
    assert (run / "model.safetensors").read_bytes() == before
    _train(audio_text_data, tiny_paper_profile, run, overwrite=True, modalities=["text"])
    assert json.loads((run / RUN_FILE).read_text())["modalities"] == ["text"]


def test_resume_continues_the_same_run(tmp_path, tiny_paper_profile, audio_text_data, trained_run):
    run = copy_run(trained_run, tmp_path / "run")
    _train(audio_text_data, tiny_paper_profile, run, resume=True, modalities=["audio", "text"],
           train_config=FAST.model_copy(update={"epochs": 3}))
    history = json.loads((run / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]


def test_a_known_class_only_in_test_rows_is_refused_naming_it(tmp_path, tiny_paper_profile, monkeypatch):
    """Issue 24, item 5: presence is counted in the training rows (it was counted in every row, so
    a class found only in ``split=test`` rows trained a 3-class model with 0 clips of it)."""
    rows = [r for r in clip_rows(tmp_path, groups=4, per_class=1, audio=False, splits=("train", "train", "val", "test"))
            if r["label"] != "angry" or r["split"] == "test"]
    data = write_manifest(tmp_path / "m.csv", rows)
    monkeypatch.setattr("openmer.methods.inputs.encode_features", _must_not_run)
    with pytest.raises(DataError, match=r"m.csv: known class\(es\) \['angry'\] have no training clip \(manifest split "
                                        r"column; 'angry': 1 test row\(s\)\)"):
        _train(data, tiny_paper_profile, tmp_path / "run", known=["happy", "sad", "angry"])
    assert not (tmp_path / "run").exists()
    rows = [r for r in rows if r["split"] != "train" or r["label"] != "sad"]  # 'sad' only in validation rows
    with pytest.raises(DataError, match=r"\['sad'\] have no training clip .*'sad': 1 test row\(s\), 1 val row\(s\)"):
        _train(write_manifest(tmp_path / "m2.csv", rows), tiny_paper_profile, tmp_path / "run")


def test_resume_with_other_training_settings_is_refused_before_any_work(tmp_path, tiny_paper_profile,
                                                                        audio_text_data, trained_run, monkeypatch):
    """Issue 24, item 7: another seed, lr, batch size or optimiser at --resume used to run (and be recorded)."""
    run = copy_run(trained_run, tmp_path / "run")
    monkeypatch.setattr("openmer.methods.inputs.encode_features", _must_not_run)
    other = FAST.model_copy(update={"seed": 5, "batch_size": 8, "optimizer": "sgd"})
    with pytest.raises(CheckpointError, match=r"cannot resume: the training settings differ from the run's "
                                              r"\(optimizer: \"adam\" -> \"sgd\"; batch_size: 4 -> 8; seed: 0 -> 5\)"):
        _train(audio_text_data, tiny_paper_profile, run, resume=True, modalities=["audio", "text"], train_config=other)


def test_a_second_train_into_a_folder_in_use_is_refused(tmp_path, tiny_paper_profile, audio_text_data, trained_run,
                                                        monkeypatch):
    """Issue 24, item 8: two `openmer train` into the same --out both exited 0, one replacing the other."""
    from openmer.files import FolderLock

    run = copy_run(trained_run, tmp_path / "run")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    monkeypatch.setattr("openmer.methods.inputs.encode_features", _must_not_run)
    with FolderLock(run, "openmer train"):  # what the first `openmer train` holds while it runs
        for kwargs in ({"overwrite": True}, {"resume": True}, {}):
            with pytest.raises(OutputError, match=r"run: in use by another openmer train \(process \d+"):
                _train(audio_text_data, tiny_paper_profile, run, modalities=["audio", "text"], **kwargs)
        fresh = tmp_path / "fresh"
        with FolderLock(fresh, "openmer train"), pytest.raises(OutputError, match="in use by another"):
            _train(audio_text_data, tiny_paper_profile, fresh)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_only_rank_0_of_a_data_parallel_launch_takes_the_run_folder_lock(tmp_path, monkeypatch):
    """`accelerate launch -m openmer train` starts one `train` per process into the same --out: they are one run."""
    from openmer.files import FolderLock
    from openmer.training.guards import locks_run_folder

    @locks_run_folder
    def fake_train(*, out):
        return "trained"

    with FolderLock(tmp_path / "run", "openmer train"):  # held by rank 0
        monkeypatch.setenv("RANK", "1")
        assert fake_train(out=tmp_path / "run") == "trained"
        monkeypatch.setenv("RANK", "0")
        with pytest.raises(OutputError, match="in use by another openmer train"):
            fake_train(out=tmp_path / "run")
