"""End to end on the tiny random `paper` profile (CLIP + wav2vec 2.0 classes): train, evaluate, predict.

The clips are mp4 files the test writes with PyAV (coloured frames + a tone per class).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from openmer.data.manifest import Manifest, Sample
from openmer.inference import evaluate, load_run, predict
from openmer.media.synth import write_composite_clip
from openmer.training import TrainConfig
from openmer.training.run import train

CLASSES = {"happy": (220, 40, 40, 440.0), "sad": (40, 40, 220, 220.0), "angry": (40, 200, 40, 660.0)}


@pytest.fixture(scope="module")
def clip_manifest(tmp_path_factory) -> tuple[Manifest, object]:
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    samples = []
    for group, split in enumerate(("train", "train", "train", "val", "test")):
        for name, (r, g, b, freq) in CLASSES.items():
            frames = np.zeros((6, 32, 32, 3), np.uint8) + np.array([r, g, b], np.uint8)
            frames = np.clip(frames + rng.integers(0, 30, frames.shape), 0, 255).astype(np.uint8)
            t = np.arange(16000) / 16000
            audio = (0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(16000)).astype(np.float32)
            path = root / f"{name}_{group}.mp4"
            write_composite_clip(path, frames, 6, audio, 16000)
            samples.append(Sample(id=path.stem, label=name, group=f"g{group}", video=path.name,
                                  text=f"i feel {name} today", split=split))
    manifest = Manifest(samples, root=root, name="tiny")
    return manifest, manifest.write(root / "manifest.csv")


@pytest.mark.parametrize("method", ["hcep", "arpl", "lpl"])  # lpl: one stream per modality block
def test_train_evaluate_predict(tmp_path, clip_manifest, tiny_paper_profile, method, monkeypatch):
    monkeypatch.setenv("OPENMER_CACHE", str(tmp_path / "cache"))
    _, manifest_path = clip_manifest
    cfg = TrainConfig(epochs=1, batch_size=3, optimizer="adam", lr=1e-3)  # 6 training clips -> 2 steps
    run_dir = train(manifest_path, ["happy", "sad"], method=method, profile=tiny_paper_profile,
                    out=tmp_path / "run", train_config=cfg, preset="paper")  # the paper profile's reading
    info = json.loads((run_dir / "run.json").read_text())
    assert info["modalities"] == ["video", "audio", "text"] and info["n_train"] == 6 and info["n_val"] == 2
    assert (run_dir / "model.safetensors").is_file()
    assert (run_dir / "last" / "epoch-0001" / "trainer_state.json").is_file()
    assert info["groups"]["train"] and set(info["groups"]["train"]).isdisjoint(info["groups"]["val"])

    metrics = evaluate(run_dir, manifest_path, out=tmp_path / "eval", profile=tiny_paper_profile)
    assert 0.0 <= metrics["oscr"] <= metrics["auroc"] <= 1.0
    assert metrics["n_known"] == 2 and metrics["n_unknown"] == 1  # the test rows of the split column
    assert 0.0 <= metrics["aupr_in"] <= 1.0 and 0.0 <= metrics["aupr_out"] <= 1.0
    assert (tmp_path / "eval" / "roc.png").stat().st_size > 0

    video = clip_manifest[0].root / "angry_0.mp4"
    [record] = predict(run_dir, [video], text="i feel angry today", profile=tiny_paper_profile)
    assert record["label"] in {"happy", "sad", "unknown"}
    assert record["modalities"] == ["video", "audio", "text"]
    assert set(record["probabilities"]) == {"happy", "sad"}
    assert record["label"] == "unknown" or record["confidence"] >= record["threshold"]

    # a reloaded run gives the same prediction
    again = predict(load_run(run_dir, profile=tiny_paper_profile), [video], text="i feel angry today")[0]
    assert again["confidence"] == pytest.approx(record["confidence"], abs=1e-6)
