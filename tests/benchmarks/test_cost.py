"""The one way of measuring cost shared by bench-encoders, complexity and bench-train."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from openmer.benchmarks.cost import PeakMemory, bench_encoders, clip_batch, time_interleaved
from openmer.errors import ConfigError
from tests.conftest import requires_shared_path


def test_time_interleaved_calls_in_turn_and_takes_medians():
    order: list[str] = []
    seen: list[tuple[str, bool]] = []
    timing = time_interleaved({"a": lambda: order.append("a"), "b": lambda: (order.append("b"), time.sleep(0.01))},
                              3, before=lambda name: None, after=lambda name, timed: seen.append((name, timed)))
    assert order == ["a", "b"] * 4  # first calls, then 3 interleaved rounds
    assert seen[:2] == [("a", False), ("b", False)] and all(t for _, t in seen[2:])
    assert len(timing.times["a"]) == len(timing.times["b"]) == 3
    assert timing.median["b"] >= 0.01 > timing.median["a"]
    assert timing.memory_method in ("rss_peak_delta", "ru_maxrss_delta")
    with pytest.raises(ConfigError, match="repeats must be >= 1"):
        time_interleaved({"a": lambda: None}, 0)


def test_peak_memory_sees_a_large_allocation():
    with PeakMemory() as mem:
        block = np.ones(64 * 2**20 // 8)  # 64 MB
        time.sleep(0.02)
        del block
    assert mem.peak_mb > 32


@requires_shared_path("data/emodb")
def test_clip_batch_reads_what_data_names():
    from openmer.datasets import load_emodb

    first = [s for s in load_emodb() if s.label in ("neutral", "sadness")][:3]
    known, batch, note = clip_batch("emodb", 3, ["neutral", "sadness"], known_only=True)
    assert known == ["neutral", "sadness"] and batch["id"] == [s.id for s in first]
    assert batch["label"].tolist() == [known.index(s.label) for s in first]
    assert batch["audio"].shape[0] == 3 and "first of the known classes" in note
    known, batch, _ = clip_batch("emodb", 2, None)
    assert known == ["anger", "boredom", "disgust", "fear", "happiness"] and batch["id"] == ["03a01Fa", "03a01Nc"]
    with pytest.raises(ConfigError, match="do not occur in emodb"):
        clip_batch("emodb", 2, ["calm"])
    with pytest.raises(ConfigError, match=r"--clips must be in \[1, 535\]"):
        clip_batch("emodb", 0, None)


@requires_shared_path("data/meld")
def test_clip_batch_refuses_clips_without_a_modality():
    with pytest.raises(ConfigError, match="lack audio"):
        clip_batch("meld", 2, None)


def test_bench_encoders_on_loaded_encoders():
    from tests.helpers.encoders import ToyText

    records = bench_encoders(n_clips=2, repeats=1, modalities=("text",), encoders={"text": ToyText()})
    (r,) = records
    assert r["modality"] == "text" and r["n_clips"] == 2 and r["clips_per_s_with_prompts"] > 0
    assert r["length_ratio"] == pytest.approx(10 / 8) and r["mem_method"] in ("rss_peak_delta", "ru_maxrss_delta")
    assert r["threads"] == torch.get_num_threads()


def test_bench_encoders_face_video_is_a_face_crop_when_scikit_image_is_there(monkeypatch):
    """The video input is the astronaut's face (scikit-image's sample image), not noise, whenever
    scikit-image is importable (it fell back to noise on an import of a name fer.py lacks)."""
    import sys
    import types

    from openmer.benchmarks import cost

    rng = np.random.default_rng(0)
    fake = types.ModuleType("skimage")
    fake.data = types.SimpleNamespace(astronaut=lambda: rng.integers(0, 255, (128, 128, 3), dtype=np.uint8))
    monkeypatch.setitem(sys.modules, "skimage", fake)
    video, what = cost._face_inputs(2, 3)
    assert what == "astronaut face, 3 frames" and video.shape == (2, 3, 1, 64, 64)
    assert float(video.min()) >= -1.0 and float(video.max()) <= 1.0
