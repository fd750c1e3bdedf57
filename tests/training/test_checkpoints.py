"""Checkpoints of `fit` under faults (issue 24, items 7, 9, 10): a kill between the writes of a
checkpoint, a full disk or read-only folder during training, a resume with other training settings."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from openmer.errors import CheckpointError, OutputError
from openmer.runs import LAST_DIR, LATEST_FILE, TRAINER_STATE, checkpoint_dir
from openmer.training import fit
from tests.training.test_engine import CFG, data, new_method


class Killed(BaseException):
    """Stands for SIGKILL: nothing in openmer catches it."""


def _uninterrupted(tmp_path):
    train, val = data()
    method = new_method()
    return method, fit(method, train, val.batches(), CFG, run_dir=tmp_path / "full")


def _same_run(a, b, ra, rb):
    assert rb.best_epoch == ra.best_epoch
    assert [h["train_loss"] for h in rb.history] == pytest.approx([h["train_loss"] for h in ra.history], abs=1e-6)
    for (k, x), y in zip(a.trainable_state_dict().items(), b.trainable_state_dict().values(), strict=True):
        assert torch.allclose(x, y, atol=1e-6), k


def _fail_at_epoch(monkeypatch, name, epoch, exc):
    """Make ``openmer.runs.<name>`` raise ``exc`` when it writes epoch ``epoch``'s checkpoint (1-based)."""
    import openmer.runs

    real = getattr(openmer.runs, name)

    def flaky(path, *args, **kwargs):
        if f"epoch-{epoch:04d}" in str(path) + str(args):  # a file of its folder, or latest naming it
            raise exc
        return real(path, *args, **kwargs)

    monkeypatch.setattr(openmer.runs, name, flaky)


@pytest.mark.parametrize("between", ["tensors and trainer state", "folder and pointer"])
def test_a_kill_during_a_checkpoint_write_resumes_from_the_last_whole_one(tmp_path, monkeypatch, between):
    """Item 9: killed after epoch 3's model.safetensors but before its trainer state (or after its folder,
    before ``latest``), ``--resume`` continues from epoch 2 (or 3) and ends where an uninterrupted run ends."""
    full, r_full = _uninterrupted(tmp_path)
    train, val = data()
    with monkeypatch.context() as m:
        if between == "tensors and trainer state":
            _fail_at_epoch(m, "atomic_write_json", 3, Killed())
        else:
            _fail_at_epoch(m, "atomic_write_text", 3, Killed())  # the write of last/latest naming epoch-0003
        with pytest.raises(Killed):
            fit(new_method(), train, val.batches(), CFG, run_dir=tmp_path / "cut")
    (tmp_path / "cut" / LAST_DIR / ".epoch-0004.partial").mkdir()  # what a real kill can leave: never read
    kept = checkpoint_dir(tmp_path / "cut")
    assert kept is not None and kept.name == "epoch-0002"
    assert json.loads((kept / TRAINER_STATE).read_text())["state"]["epoch"] == 1
    resumed = new_method()
    r_res = fit(resumed, train, val.batches(), CFG, run_dir=tmp_path / "cut", resume=True)
    _same_run(full, resumed, r_full, r_res)
    last = tmp_path / "cut" / LAST_DIR
    assert sorted(p.name for p in last.iterdir()) == ["epoch-0006", LATEST_FILE]  # older ones removed


def test_a_checkpoint_in_the_layout_before_epoch_folders_still_resumes(tmp_path):
    full, r_full = _uninterrupted(tmp_path)
    train, val = data()
    fit(new_method(), train, val.batches(), CFG.model_copy(update={"epochs": 3}), run_dir=tmp_path / "old")
    last = tmp_path / "old" / LAST_DIR
    for f in (last / "epoch-0003").iterdir():  # last/model.safetensors, last/trainer_state.*
        f.rename(last / f.name)
    (last / "epoch-0003").rmdir()
    (last / LATEST_FILE).unlink()
    resumed = new_method()
    _same_run(full, resumed, r_full, fit(resumed, train, val.batches(), CFG, run_dir=tmp_path / "old", resume=True))
    assert sorted(p.name for p in last.iterdir()) == ["epoch-0006", LATEST_FILE]


@pytest.mark.parametrize("fault", ["disk full", "read-only folder"])
def test_a_full_disk_during_training_is_one_error_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, fault):
    """Item 10: the safetensors writer reports a full disk as a SafetensorError (not an OSError): one
    OutputError naming last/ and the checkpoint kept; nothing partial; --resume then finishes the run."""
    import safetensors.torch
    from safetensors import SafetensorError

    full, r_full = _uninterrupted(tmp_path)
    train, val = data()
    real = safetensors.torch.save_file
    calls = []

    def failing(tensors, filename, metadata=None):
        calls.append(filename)
        if ".epoch-0004" in str(filename):
            if fault == "disk full":
                raise SafetensorError('Error while serializing: I/O error: No space left on device (os error 28) '
                                      f'at path "{filename}"')
            raise PermissionError(13, "Permission denied")
        return real(tensors, filename, metadata=metadata)

    with monkeypatch.context() as m:
        m.setattr(safetensors.torch, "save_file", failing)
        with pytest.raises(OutputError) as info:
            fit(new_method(), train, val.batches(), CFG, run_dir=tmp_path / "run")
    last = tmp_path / "run" / LAST_DIR
    reason = "No space left on device" if fault == "disk full" else "Permission denied"
    assert str(info.value).startswith(f"{last}: cannot write the checkpoint of epoch 4 (")
    assert reason in str(info.value)
    assert str(info.value).endswith("the checkpoint of epoch 3 (epoch-0003) is kept for --resume")
    assert sorted(p.name for p in last.iterdir()) == ["epoch-0003", LATEST_FILE]
    resumed = new_method()
    _same_run(full, resumed, r_full, fit(resumed, train, val.batches(), CFG, run_dir=tmp_path / "run", resume=True))


@pytest.mark.parametrize(("change", "listed"), [
    ({"seed": 3}, ["seed: 0 -> 3"]),
    ({"lr": 0.01, "batch_size": 8}, ["lr: 0.05 -> 0.01", "batch_size: 16 -> 8"]),
    ({"optimizer": "adam"}, ['optimizer: "sgd" -> "adam"']),  # was KeyError: 'step' inside torch
])
def test_resume_with_other_training_settings_is_refused_listing_them(tmp_path, change, listed):
    """Item 7: a resumed run used to run (and record) a seed, lr or batch size it was not started with."""
    train, val = data()
    fit(new_method(), train, val.batches(), CFG.model_copy(update={"epochs": 2}), run_dir=tmp_path)
    before = {p: p.read_bytes() for p in (tmp_path / LAST_DIR).rglob("*") if p.is_file()}
    with pytest.raises(CheckpointError, match="cannot resume: the training settings differ from the run's") as info:
        fit(new_method(), train, val.batches(), CFG.model_copy(update=change), run_dir=tmp_path, resume=True)
    for item in listed:
        assert item in str(info.value)
    assert {p: p.read_bytes() for p in (tmp_path / LAST_DIR).rglob("*") if p.is_file()} == before
    # more epochs (the point of a resume) and other data-loading workers are fine
    r = fit(new_method(), train, val.batches(), CFG.model_copy(update={"epochs": 3}), run_dir=tmp_path, resume=True)
    assert [h["epoch"] for h in r.history] == [1, 2, 3]


def test_a_lost_pointer_falls_back_to_the_newest_whole_checkpoint(tmp_path):
    train, val = data()
    fit(new_method(), train, val.batches(), CFG.model_copy(update={"epochs": 2}), run_dir=tmp_path)
    (tmp_path / LAST_DIR / LATEST_FILE).write_text("epoch-0009\n")  # names nothing
    assert checkpoint_dir(tmp_path) == tmp_path / LAST_DIR / "epoch-0002"
    shutil.rmtree(tmp_path / LAST_DIR / "epoch-0002")
    with pytest.raises(CheckpointError, match="no checkpoint to resume from"):
        fit(new_method(), train, val.batches(), CFG, run_dir=tmp_path, resume=True)
