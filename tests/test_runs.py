"""The run folder (openmer.runs): one description, safe trainer state, checked reads, movable folders."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from openmer.data.tensors import FeatureDataset
from openmer.errors import CheckpointError, ConfigError
from openmer.inference import load_run as _load_run
from openmer.methods.arpl import ARPL, ARPLConfig
from openmer.model_card import CARD_FILE, CARD_ROWS_FILE
from openmer.runs import (
    LAST_DIR,
    LATEST_FILE,
    LEGACY_CONFIG_FILE,
    RUN_FILE,
    TRAINER_STATE,
    TRAINER_TENSORS,
    check_resume,
    prepare_out,
    read_run_info,
)
from openmer.training import TrainConfig, fit
from tests.helpers.run_folders import KNOWN, copy_run

CONFIG_FILE = LEGACY_CONFIG_FILE


def test_one_description_holds_everything(trained_run):
    assert sorted(p.name for p in trained_run.iterdir()) == sorted(
        [LAST_DIR, "metrics.json", "model.safetensors", RUN_FILE, CARD_FILE, CARD_ROWS_FILE])  # + the model card
    info = json.loads((trained_run / RUN_FILE).read_text())
    for key in ("method", "method_config", "known_classes", "modalities", "profile", "train_config", "threshold",
                "data", "samples", "openmer_version", "schema_version"):
        assert key in info, key
    assert info["known_classes"] == KNOWN and info["threshold"]["source"] == "train"
    assert len(info["samples"]["train"]) == info["n_train"] and len(info["samples"]["val"]) == info["n_val"]
    assert sorted(p.name for p in (trained_run / LAST_DIR).iterdir()) == ["epoch-0002", LATEST_FILE]
    assert sorted(p.name for p in (trained_run / LAST_DIR / "epoch-0002").iterdir()) == [
        "model.safetensors", TRAINER_STATE, TRAINER_TENSORS]
    assert not list(trained_run.rglob("*.pt")) and not list(trained_run.rglob("*.tmp"))


def _features(seed=0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(c, 1, (30, 5)) for c in (-2, 0, 2)]).astype(np.float32)
    y = np.repeat(np.arange(3), 30)
    return FeatureDataset(x[::2], y[::2]), FeatureDataset(x[1::2], y[1::2])


def _arpl():
    torch.manual_seed(0)
    return ARPL(ARPLConfig(input_dim=5, hidden_dim=8, embed_dim=4), ["a", "b", "c"])


def test_adam_state_round_trips_without_pickle(tmp_path):
    """Adam's state has int keys, tuples and 0-d step tensors: resume must still equal an uninterrupted run."""
    train, val = _features()
    cfg = TrainConfig(epochs=4, optimizer="adam", lr=1e-2, batch_size=8)
    full = _arpl()
    fit(full, train, val.batches(), cfg, run_dir=tmp_path / "full")
    cut = _arpl()
    fit(cut, train, val.batches(), cfg.model_copy(update={"epochs": 2}), run_dir=tmp_path / "cut")
    resumed = _arpl()
    fit(resumed, train, val.batches(), cfg, run_dir=tmp_path / "cut", resume=True)
    for k, v in full.trainable_state_dict().items():
        assert torch.allclose(v, resumed.trainable_state_dict()[k], atol=1e-6), k


def test_fit_refuses_a_checkpoint_of_another_method_config(tmp_path):
    train, val = _features()
    fit(_arpl(), train, val.batches(), TrainConfig(epochs=1, batch_size=8), run_dir=tmp_path)
    other = ARPL(ARPLConfig(input_dim=5, hidden_dim=8, embed_dim=4, weight_pl=0.5), ["a", "b", "c"])
    with pytest.raises(CheckpointError, match=r"trainer_state.json: cannot resume: method_config differs"):
        fit(other, train, val.batches(), TrainConfig(epochs=2, batch_size=8), run_dir=tmp_path, resume=True)
    reordered = ARPL(ARPLConfig(input_dim=5, hidden_dim=8, embed_dim=4), ["b", "a", "c"])
    with pytest.raises(CheckpointError, match="known_classes differs"):
        fit(reordered, train, val.batches(), TrainConfig(epochs=2, batch_size=8), run_dir=tmp_path, resume=True)


def test_check_resume_names_the_field(trained_run, tmp_path):
    run = copy_run(trained_run, tmp_path / "run")
    with pytest.raises(CheckpointError, match=r"data differs .*sha256"):
        check_resume(run, {"data": {"sha256": "0" * 64}})
    with pytest.raises(CheckpointError, match="does not record colour"):
        check_resume(run, {"colour": "blue"})
    check_resume(run, {"known_classes": KNOWN, "modalities": ["audio", "text"]})  # same: no error


def test_prepare_out_refuses_to_replace_a_run(trained_run, tmp_path):
    run = copy_run(trained_run, tmp_path / "run")
    (run / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"already holds a run .*--resume .*--overwrite"):
        prepare_out(run)
    with pytest.raises(ConfigError, match="give one of them"):
        prepare_out(run, resume=True, overwrite=True)
    with pytest.raises(CheckpointError, match="no checkpoint to resume from"):
        prepare_out(tmp_path / "empty", resume=True)
    prepare_out(run, overwrite=True)
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]  # only the run's own files are removed


@pytest.mark.parametrize(("damage", "match"), [
    (lambda r: (r / "model.safetensors").write_bytes(b""), r"model.safetensors: empty file"),
    (lambda r: (r / "model.safetensors").write_bytes((r / "model.safetensors").read_bytes()[:40]),
     r"model.safetensors: not a readable safetensors file, truncated or corrupt"),
    (lambda r: (r / "model.safetensors").write_bytes(b"\x08" + bytes(200)),
     r"model.safetensors: not a readable safetensors file"),
    (lambda r: (r / "model.safetensors").unlink(), r"model.safetensors: not found"),
    (lambda r: (r / RUN_FILE).write_text("{not json"), r"run.json: not valid JSON \(.* line 1, column 2\)"),
    (lambda r: (r / RUN_FILE).write_text("[1, 2]"), r"run.json: not a JSON object"),
    (lambda r: (r / RUN_FILE).write_bytes(b"\xff\xfe{}"), r"run.json: not valid JSON \(not UTF-8"),
    (lambda r: (r / RUN_FILE).unlink(), r"run.json: not found"),
    (lambda r: _edit(r, lambda d: d.pop("threshold")),
     r"run.json: invalid run description \(threshold: field required\)"),
    (lambda r: _edit(r, lambda d: d.update(known_classes=["happy", "sad", "angry"])),
     r"model.safetensors: was trained with known classes .* but .*run.json says"),
    (lambda r: _edit(r, lambda d: d.update(method="nope")), r"run.json: unknown method 'nope'"),
    (lambda r: _edit(r, lambda d: d.update(schema_version=99)), r"run.json: written by a newer openmer"),
])
def test_damaged_run_folders_name_the_file(trained_run, tmp_path, tiny_paper_profile, damage, match):
    run = copy_run(trained_run, tmp_path / "run")
    damage(run)
    with pytest.raises(CheckpointError, match=match):
        _load_run(run, profile=tiny_paper_profile)


def _edit(run, change):
    data = json.loads((run / RUN_FILE).read_text())
    change(data)
    (run / RUN_FILE).write_text(json.dumps(data))


def test_older_run_folder_that_disagrees_with_its_config(trained_run, tmp_path, tiny_paper_profile):
    """Run folders of openmer before schema 2 kept config.json and run.json; they must agree."""
    run = copy_run(trained_run, tmp_path / "run")
    info = json.loads((run / RUN_FILE).read_text())
    legacy = {k: info[k] for k in ("method", "known_classes", "modalities", "profile", "train_config", "groups",
                                  "best_epoch", "select_metric", "n_train", "n_val")}
    legacy.update(threshold=info["threshold"]["value"], acceptance=0.9, threshold_source="training", data="m.csv")
    (run / RUN_FILE).write_text(json.dumps(legacy))
    cfg = {"method": "arpl", "config": info["method_config"], "known_classes": KNOWN,
           "threshold": info["threshold"]["value"], "extra": {}}
    (run / CONFIG_FILE).write_text(json.dumps(cfg))
    assert _load_run(run, profile=tiny_paper_profile).threshold == pytest.approx(info["threshold"]["value"])
    assert read_run_info(run).threshold.source == "train"  # the older word "training", read as today's
    (run / CONFIG_FILE).write_text(json.dumps({**cfg, "known_classes": ["sad", "happy"]}))
    with pytest.raises(CheckpointError, match=r"run.json: says known_classes .* but .*config.json says"):
        _load_run(run, profile=tiny_paper_profile)


def test_a_moved_run_folder_and_shared_folder_still_load(tmp_path, monkeypatch, tiny_paper_models, audio_text_data):
    """Encoder paths inside SHARED_DIR are stored as ${SHARED_DIR}/..., so both folders can move."""
    from openmer.training.run import train
    from tests.helpers.run_folders import FAST

    shared = tmp_path / "shared-a"
    shutil.copytree(tiny_paper_models["clip_dir"], shared / "models" / "clip")
    shutil.copytree(tiny_paper_models["wav2vec2_dir"], shared / "models" / "wav2vec2")
    monkeypatch.setenv("SHARED_DIR", str(shared))
    profile = tiny_paper_models["profile"].model_copy(update={
        m: getattr(tiny_paper_models["profile"], m).model_copy(update={"name_or_path": str(shared / "models" / d)})
        for m, d in (("text", "clip"), ("video", "clip"), ("audio", "wav2vec2"))})
    run = train(audio_text_data, KNOWN, method="arpl", profile=profile, out=tmp_path / "run", train_config=FAST,
                modalities=["audio", "text"], cache_dir=tmp_path / "cache")
    stored = json.loads((run / RUN_FILE).read_text())["profile"]
    assert stored["audio"]["name_or_path"] == "${SHARED_DIR}/models/wav2vec2"

    shutil.move(shared, tmp_path / "shared-b")
    moved = shutil.move(run, tmp_path / "elsewhere" / "run")
    monkeypatch.setenv("SHARED_DIR", str(tmp_path / "shared-b"))
    profile_b = profile.model_copy(update={
        m: getattr(profile, m).model_copy(update={"name_or_path": str(tmp_path / "shared-b" / "models" / d)})
        for m, d in (("text", "clip"), ("video", "clip"), ("audio", "wav2vec2"))})
    loaded = _load_run(moved, profile=profile_b)
    assert read_run_info(moved).profile["audio"]["name_or_path"] == "${SHARED_DIR}/models/wav2vec2"  # an id, kept
    assert loaded.method.is_fitted

    monkeypatch.setenv("SHARED_DIR", str(tmp_path / "nowhere"))  # the given profile's folders are not the run's now
    with pytest.raises(CheckpointError,
                       match=r"run.json: its video encoder \(clip-vision \$\{SHARED_DIR\}/models/clip\)"):
        _load_run(moved, profile=profile_b)


def test_last_files_of_different_epochs_are_refused(tmp_path):
    """An interrupt between writing last/model.safetensors and trainer_state.json must not mix epochs."""
    train, val = _features()
    fit(_arpl(), train, val.batches(), TrainConfig(epochs=1, batch_size=8), run_dir=tmp_path / "a")
    fit(_arpl(), train, val.batches(), TrainConfig(epochs=2, batch_size=8), run_dir=tmp_path / "b")
    shutil.copy(tmp_path / "b" / LAST_DIR / "epoch-0002" / "model.safetensors",
                tmp_path / "a" / LAST_DIR / "epoch-0001" / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"model.safetensors: holds epoch 1 but trainer_state.json epoch 0"):
        fit(_arpl(), train, val.batches(), TrainConfig(epochs=3, batch_size=8), run_dir=tmp_path / "a", resume=True)
