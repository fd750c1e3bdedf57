"""`openmer timeline` end to end on generated recordings of real speech (EmoDB clips from shared/):
speech detection, transcripts, a corrupt stretch, no speech, resume, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from openmer.cli.app import app
from openmer.errors import ConfigError, OutputError
from openmer.timeline import TimelineConfig, timeline
from tests.conftest import SHARED
from tests.media.conftest import encode

runner = CliRunner()
FAST = TimelineConfig(window=2.0, hop=1.0, group=4)


@pytest.fixture(scope="module")
def speech() -> list[np.ndarray]:
    """Four EmoDB utterances at 16 kHz (about 2 s each)."""
    from openmer.media import load_audio

    if not (SHARED / "data" / "emodb").is_dir():
        pytest.skip(f"needs {SHARED / 'data' / 'emodb'} (see shared/README.md)")
    wavs = sorted((SHARED / "data" / "emodb" / "wav").glob("*.wav"))[:4]
    return [load_audio(w) for w in wavs]


def _recording(path, speech, silence_s=(1.0, 1.0, 1.0, 6.0)):
    parts = []
    for clip, gap in zip(speech, silence_s, strict=True):
        parts += [clip, np.zeros(int(gap * 16000), np.float32)]
    wave = np.concatenate(parts)
    if path.suffix == ".wav":
        sf.write(path, wave, 16000)
    else:
        encode(path, None, 0, wave, 16000)
    return path, wave


def _rows(out):
    return (out / "timeline.csv").read_text(encoding="utf-8").splitlines()


def test_a_silent_stretch_is_no_speech_and_speech_is_scored(tmp_path, trained_run, speech):
    rec, wave = _recording(tmp_path / "talk.wav", speech)
    result = timeline(trained_run, rec, tmp_path / "out", config=FAST)
    duration = len(wave) / 16000
    silent_from = duration - 6.0  # the last 6 s are silence
    labels = {(r["start_s"], r["label"]) for r in result.rows}
    assert all(lab == "no_speech" for s, lab in labels if s >= silent_from)
    assert any(lab in ("happy", "sad", "unknown") for s, lab in labels if s < 1.0)
    for name in ("timeline.csv", "segments.csv", "segments.json", "summary.json", "timeline.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["n_windows"] == len(_rows(tmp_path / "out")) - 1
    assert 4.0 < summary["speech_s"] < 12.0 and summary["messages"] == []
    assert result.segments[-1].label == "no_speech" and result.segments[-1].end == pytest.approx(duration)


def test_transcript_cues_reach_the_windows_they_overlap(tmp_path, trained_run, speech):
    rec, _ = _recording(tmp_path / "talk.wav", speech)
    (tmp_path / "talk.srt").write_text("1\n00:00:00,000 --> 00:00:01,500\nich bin froh\n\n"
                                       "2\n00:00:04,200 --> 00:00:04,800\nwarum\n", encoding="utf-8")
    result = timeline(trained_run, rec, tmp_path / "out", config=FAST)
    text = {r["start_s"]: r["text"] for r in result.rows}
    assert text[0.0] == "ich bin froh" and text[1.0] == "ich bin froh" and text[2.0] == ""
    assert text[3.0] == "warum" and text[4.0] == "warum" and text[5.0] == ""


def test_a_recording_without_speech_says_so(tmp_path, trained_run):
    rec = tmp_path / "hum.wav"
    t = np.arange(16000 * 8) / 16000
    sf.write(rec, (0.01 * np.sin(2 * np.pi * 50 * t)).astype(np.float32), 16000)
    with pytest.warns(UserWarning, match=r"no speech found in 8\.0 s of audio"):
        result = timeline(trained_run, rec, tmp_path / "out", config=FAST)
    assert result.summary["n_scored_windows"] == 0 and result.summary["messages"]
    assert len(_rows(tmp_path / "out")) == 1 + len(result.rows) > 1  # not an empty file: every window says no_speech
    res = runner.invoke(app, ["timeline", str(trained_run), str(rec), "--out", str(tmp_path / "cli"),
                              "--window", "2", "--hop", "1"])
    assert res.exit_code == 3 and "no speech found in 8.0 s of audio" in res.output


def test_a_corrupt_stretch_is_reported_with_its_time_and_the_rest_is_scored(tmp_path, trained_run, speech):
    rec, wave = _recording(tmp_path / "talk.m4a", speech * 3, silence_s=[0.5] * 12)
    data = bytearray(rec.read_bytes())
    mid = len(data) // 2
    data[mid: mid + 3000] = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    rec.write_bytes(bytes(data))
    result = timeline(trained_run, rec, tmp_path / "out", config=FAST)
    [gap] = result.summary["decode_errors"]
    assert 5.0 < gap["start_s"] < gap["end_s"] < len(wave) / 16000 - 5.0
    errors = [r for r in result.rows if r["label"] == "error"]
    assert errors and all(f"could not decode {gap['start_s']:.2f} s" in r["note"] for r in errors)
    later = [r for r in result.rows if r["start_s"] > gap["end_s"] and r["label"] not in ("error", "no_speech")]
    assert later  # the rest is still scored


def test_resumed_equals_uninterrupted(tmp_path, trained_run, speech):
    rec, _ = _recording(tmp_path / "talk.wav", speech)
    timeline(trained_run, rec, tmp_path / "whole", config=FAST, picture=False)

    class Stop(Exception):
        pass

    def stop_after_two_groups(done, total, message):
        if done >= 7.0:
            raise Stop

    with pytest.raises(Stop):
        timeline(trained_run, rec, tmp_path / "cut", config=FAST, progress=stop_after_two_groups, picture=False)
    partial = _rows(tmp_path / "cut")
    assert 1 < len(partial) < len(_rows(tmp_path / "whole"))
    with (tmp_path / "cut" / "timeline.csv").open("a", encoding="utf-8") as fh:
        fh.write("99.000,101.0")  # a row cut short by the interruption
    with pytest.raises(OutputError, match="--resume"):
        timeline(trained_run, rec, tmp_path / "cut", config=FAST)
    with pytest.raises(ConfigError, match="config"):
        timeline(trained_run, rec, tmp_path / "cut", config=TimelineConfig(window=2.0, hop=1.0, group=8), resume=True)
    result = timeline(trained_run, rec, tmp_path / "cut", config=FAST, resume=True, picture=False)
    assert result.summary["resumed_from_window"] == 8
    assert (tmp_path / "cut" / "timeline.csv").read_bytes() == (tmp_path / "whole" / "timeline.csv").read_bytes()
    assert (tmp_path / "cut" / "segments.csv").read_bytes() == (tmp_path / "whole" / "segments.csv").read_bytes()


def test_cli_refuses_bad_options_before_any_work(tmp_path):
    res = runner.invoke(app, ["timeline", str(tmp_path / "no-run"), str(tmp_path / "x.wav"), "--out",
                              str(tmp_path / "o"), "--hop", "0.001"])
    assert res.exit_code == 1 and "hop 0.001 s: must be between 0.1 s" in res.output
    res = runner.invoke(app, ["timeline", str(tmp_path / "no-run"), str(tmp_path / "x.wav"), "--out",
                              str(tmp_path / "o"), "--smooth", "2"])
    assert res.exit_code == 1 and "smooth must be an odd number" in res.output
    assert not (tmp_path / "o").exists()


def test_frames_of_a_video_come_from_their_window(tmp_path):
    from openmer.timeline.frames import FrameGrid

    frames = np.stack([np.full((64, 64, 3), 10 + 6 * i, np.uint8) for i in range(40)])  # 4 s at 10 fps
    path = encode(tmp_path / "v.mp4", frames, 10, None, 16000)
    grid = FrameGrid(path, step=0.1)
    try:
        got = [grid.frames(0.0, 1.0, 4), grid.frames(2.0, 3.0, 4)]
    finally:
        grid.close()
    for window, start in zip(got, (0.0, 2.0), strict=True):
        times = start + (np.arange(4) + 0.5) * 0.25
        want = 10 + 6 * np.floor(times * 10)  # the frame shown at each time
        assert np.abs(np.median(window, axis=(1, 2, 3)) - want).max() <= 7, (window.mean(axis=(1, 2, 3)), want)


@pytest.fixture(scope="module")
def video_run(tmp_path_factory, tiny_paper_profile):
    """An ARPL run on video + audio (tiny CLIP vision and wav2vec2), known happy and sad."""
    from openmer.training import TrainConfig
    from openmer.training.run import train
    from tests.helpers.run_folders import KNOWN, write_manifest

    root = tmp_path_factory.mktemp("video-data")
    rows = []
    for g in range(4):
        for k, name in enumerate(("happy", "sad", "angry")):
            for j in range(2):
                frames = np.full((6, 32, 32, 3), 40 + 80 * k + 10 * j, np.uint8)
                t = np.arange(8000) / 16000
                audio = (0.3 * np.sin(2 * np.pi * (220 + 110 * k) * t)).astype(np.float32)
                sid = f"{name}-{g}-{j}"
                encode(root / f"{sid}.mp4", frames, 10, audio, 16000)
                rows.append({"id": sid, "video": f"{sid}.mp4", "label": name, "group": f"s{g}"})
    data = write_manifest(root / "manifest.csv", rows)
    return train(data, KNOWN, method="arpl", profile=tiny_paper_profile, out=root / "run",
                 modalities=["video", "audio"],
                 train_config=TrainConfig(epochs=1, optimizer="adam", lr=1e-3, batch_size=8),
                 cache_dir=tmp_path_factory.mktemp("cache"))


def test_a_video_recording_is_scored_from_its_frames_and_audio(tmp_path, video_run, speech):
    wave = np.concatenate([speech[0], np.zeros(16000, np.float32), speech[1]])
    n = int(len(wave) / 16000 * 10)
    frames = np.stack([np.full((32, 32, 3), (5 * i) % 250, np.uint8) for i in range(n)])
    rec = encode(tmp_path / "session.mp4", frames, 10, wave, 16000)
    result = timeline(video_run, rec, tmp_path / "out", config=FAST, picture=False)
    scored = [r for r in result.rows if r["label"] not in ("no_speech", "error")]
    assert scored and all(r["confidence"] is not None for r in scored)
    assert result.summary["modalities"] == ["video", "audio"]


def test_windows_leave_no_cached_encoder_states_behind(tmp_path, trained_run, speech):
    """Late prompt entry caches hidden states per input; a long recording's windows are each seen
    once, so the window paths empty the caches after each group (memory stays bounded)."""
    import torch

    from openmer.backbones.prefix import PrefixCache
    from openmer.inference import load_run, predict_file

    run = load_run(trained_run)
    cache = PrefixCache()
    run.encoders["audio"].prefix_cache = cache
    cache.get(["window"], lambda idx: [torch.zeros(200, 512) for _ in idx])
    assert len(cache) == 1
    rec, _ = _recording(tmp_path / "talk.wav", speech, silence_s=(0.5, 0.5, 0.5, 0.5))
    timeline(run, rec, tmp_path / "out", config=FAST, picture=False)
    assert len(cache) == 0
    cache.get(["window"], lambda idx: [torch.zeros(200, 512) for _ in idx])
    predict_file(run, rec, window=2.0, hop=1.0)
    assert len(cache) == 0


def test_loading_the_vad_keeps_the_callers_torch_threads():
    """silero_vad sets torch's threads to 1 when first imported; ``--threads 2`` must survive it
    (a fresh interpreter, so the import really happens)."""
    import subprocess
    import sys

    code = ("import torch; torch.set_num_threads(2)\n"
            "from openmer.timeline.vad import SileroVAD; SileroVAD()\n"
            "print(torch.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "2"
