"""Tiny data and run folders for the tests of `openmer train/evaluate/predict` and `openmer.runs`.

Everything is generated in tmp folders: 0.5 s sine WAVs (soundfile), a transcript per clip, the
tiny random `paper` profile of tests/backbones/tiny.py written as a profile JSON file. Training
a run on it takes about a second (ARPL on cached unprompted features).
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from openmer.backbones import ProfileConfig
from openmer.training import TrainConfig
from openmer.training.run import train

CLASSES = {"happy": 440.0, "sad": 220.0, "angry": 660.0}
KNOWN = ["happy", "sad"]
FAST = TrainConfig(epochs=2, optimizer="adam", lr=1e-3, batch_size=4)


def write_wav(path: Path, hz: float = 440.0, seconds: float = 0.5, seed: int = 0, sample_rate: int = 16000) -> Path:
    """A sine tone with a little noise, 16-bit PCM."""
    rng = np.random.default_rng(seed)
    t = np.arange(max(int(seconds * sample_rate), 1)) / sample_rate
    wave = 0.3 * np.sin(2 * np.pi * hz * t) + 0.01 * rng.standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave.astype(np.float32), sample_rate)
    return path


def write_manifest(path: Path, rows: list[dict[str, str]]) -> Path:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)
    return path


def clip_rows(root: Path, *, groups: int = 4, per_class: int = 2, audio: bool = True,
              splits: tuple[str, ...] | None = None) -> list[dict[str, str]]:
    """Rows of 3 classes x ``groups`` speakers x ``per_class`` clips (WAV + transcript, or transcript only).

    ``splits``: the ``split`` value of each group (e.g. ``("train", "train", "val", "test")``).
    """
    rows = []
    for g in range(groups):
        for name, hz in CLASSES.items():
            for j in range(per_class):
                sid = f"{name}-{g}-{j}"
                row = {"id": sid, "text": f"i feel {name} now {j}", "label": name, "group": f"s{g}"}
                if audio:
                    write_wav(root / "wav" / f"{sid}.wav", hz + 10 * j, seed=g * 10 + j)
                    row["audio"] = f"wav/{sid}.wav"
                if splits is not None:
                    row["split"] = splits[g]
                rows.append(row)
    return rows


def profile_json(profile: ProfileConfig, path: Path) -> Path:
    profile.to_json(path)
    return path


def copy_run(run_dir: Path, dest: Path) -> Path:
    """A copy of a run folder that a test may damage."""
    return Path(shutil.copytree(run_dir, dest))


@pytest.fixture(scope="module")
def audio_text_data(tmp_path_factory) -> Path:
    """A manifest of 24 clips with audio and transcript (no split column)."""
    root = tmp_path_factory.mktemp("data")
    return write_manifest(root / "manifest.csv", clip_rows(root))


@pytest.fixture(scope="module")
def run_profile(tmp_path_factory, tiny_paper_profile) -> Path:
    """The tiny paper profile as a profile JSON file (``--profile``): the runs of these tests are
    trained on it, and a run's encoders load only from the profile it names or is given."""
    return profile_json(tiny_paper_profile, tmp_path_factory.mktemp("profile") / "tiny-paper.json")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_paper_profile, audio_text_data) -> Path:
    """An ARPL run (audio + text, known happy and sad) on the tiny paper profile."""
    out = tmp_path_factory.mktemp("run") / "run"
    return train(audio_text_data, KNOWN, method="arpl", profile=tiny_paper_profile, out=out, train_config=FAST,
                 modalities=["audio", "text"], cache_dir=tmp_path_factory.mktemp("cache"))


def run_info_for(method, *, modalities=("features",), profile=None, n_train: int = 0):
    """A :class:`~openmer.runs.RunInfo` for a method fitted outside ``openmer train`` (tests), its
    threshold the method's (or 0.5)."""
    from openmer.methods.threshold import Threshold
    from openmer.runs import DataInfo, RunInfo

    value = 0.5 if method.threshold is None else float(method.threshold)
    return RunInfo(method=method.name, method_config=method.config.to_dict(), method_extra=method.extra_state(),
                   known_classes=list(method.known_classes), modalities=list(modalities),
                   profile=profile.to_dict() if profile is not None else {"name": "none"}, train_config={},
                   threshold=Threshold(value=value, acceptance=0.9, source="train"),
                   data=DataInfo(source="test", split_rule="test", n_rows=n_train), best_epoch=-1,
                   select_metric="last", n_train=n_train, n_val=0)


def round_trip(method, folder: Path, *, modalities=("features",), profile=None, encoders=None):
    """``method`` written to ``folder`` by :func:`openmer.runs.save_run` and loaded back by
    :func:`openmer.inference.load_run` (the one run-folder format); ``encoders`` (already loaded)
    or ``profile`` (the one it was built with) give its encoders."""
    from openmer.inference import load_run
    from openmer.runs import save_run

    save_run(folder, method, run_info_for(method, modalities=modalities, profile=profile))
    return load_run(folder, profile=profile, encoders=encoders if encoders is not None or profile else {})
