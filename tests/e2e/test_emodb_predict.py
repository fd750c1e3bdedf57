"""`train` then `predict` on real EmoDB recordings with the offline encoders (needs ../shared)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from openmer.cli.app import app
from openmer.datasets import load_emodb
from tests.conftest import requires_shared_path

pytestmark = [requires_shared_path("data/emodb"), requires_shared_path("models/whisper-base-encoder"),
              requires_shared_path("models/all-MiniLM-L6-v2")]
KNOWN = ["anger", "sadness", "neutral"]


@pytest.mark.timeout(600)
def test_cli_train_then_predict_real_wav(tmp_path, shared, monkeypatch):
    monkeypatch.setenv("OPENMER_CACHE", str(tmp_path / "cache"))
    emodb = load_emodb(shared / "data" / "emodb")
    # a small speaker-disjoint subset: 4 clips per class from speakers 03 and 08 (train/val by group)
    rows = []
    for speaker in ("03", "08", "10"):
        for label in KNOWN:
            rows += [i for i, s in enumerate(emodb) if s.group == speaker and s.label == label][:2]
    path = emodb.subset(rows).write(tmp_path / "emodb_small.csv")  # written with absolute media paths

    runner = CliRunner()
    run_dir = tmp_path / "run"
    res = runner.invoke(app, ["train", "--data", str(path), "--known", ",".join(KNOWN), "--method", "hcep",
                              "--profile", "offline", "--out", str(run_dir), "--epochs", "1", "--batch-size", "6",
                              "--optimizer", "adam", "--lr", "1e-3"])
    assert res.exit_code == 0, res.output
    info = json.loads((run_dir / "run.json").read_text())
    assert info["modalities"] == ["audio", "text"] and info["known_classes"] == KNOWN

    wav = shared / "data" / "emodb" / "wav" / "13a01Lb.wav"  # another speaker, boredom: not a known class
    res = runner.invoke(app, ["predict", str(run_dir), str(wav), "--text", "Der Lappen liegt auf dem Eisschrank."])
    assert res.exit_code == 0, res.output
    record = json.loads(res.stdout.strip().splitlines()[-1])
    assert record["label"] in [*KNOWN, "unknown"]
    assert 0.0 < record["confidence"] <= 1.0 and record["modalities"] == ["audio", "text"]
    assert set(record["probabilities"]) == set(KNOWN)
