"""openmer.media.video (frames, probe, load_clip) and openmer.media.synth (composite clips)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from openmer.errors import MediaError
from openmer.media import (
    SAMPLE_RATE,
    Clip,
    load_audio,
    load_clip,
    load_frames,
    probe,
    sample_indices,
    write_composite_clip,
)
from tests.media.conftest import N_VIDEO_FRAMES, VIDEO_FPS, VIDEO_SIZE, frame_value, make_frames, sine


def _names(path) -> str:
    return re.escape(path.name)


def _frame_ids(frames: np.ndarray) -> list[int]:
    """Which source frame each decoded frame is, from its gray level (away from the red square)."""
    gray = frames[:, 32:, 32:].reshape(len(frames), -1).mean(axis=1)
    values = np.array([frame_value(i) for i in range(N_VIDEO_FRAMES)])
    return [int(np.argmin(np.abs(values - g))) for g in gray]


# ------------------------------------------------------------------------------ sampling rule
def test_sample_indices_rule():
    assert sample_indices(10, 5).tolist() == [1, 3, 5, 7, 9]
    assert sample_indices(8, 8).tolist() == list(range(8))
    assert sample_indices(3, 8).tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
    assert sample_indices(1, 4).tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="positive"):
        sample_indices(0, 8)


# ------------------------------------------------------------------------------ load_frames
def test_load_frames_shape_dtype_order(video_mp4):
    frames = load_frames(video_mp4)
    assert frames.shape == (8, VIDEO_SIZE, VIDEO_SIZE, 3) and frames.dtype == np.uint8
    assert _frame_ids(frames) == sample_indices(N_VIDEO_FRAMES, 8).tolist()
    # RGB order: the red square stays red
    r, g, b = frames[:, 4:12, 4:12].reshape(-1, 3).mean(axis=0)
    assert r > 200 and g < 50 and b < 50


def test_load_frames_counts(video_mp4):
    assert _frame_ids(load_frames(video_mp4, num_frames=5)) == [1, 3, 5, 7, 9]
    assert _frame_ids(load_frames(video_mp4, num_frames=1)) == [5]
    # more frames asked than the clip has: frames repeat, in order
    ids = _frame_ids(load_frames(video_mp4, num_frames=16))
    assert ids == sample_indices(N_VIDEO_FRAMES, 16).tolist() and ids == sorted(ids)


def test_load_frames_segment(video_mp4):
    assert _frame_ids(load_frames(video_mp4, num_frames=5, start=0.5)) == [5, 6, 7, 8, 9]
    assert _frame_ids(load_frames(video_mp4, num_frames=2, start=0.2, end=0.4)) == [2, 3]
    assert _frame_ids(load_frames(video_mp4, num_frames=3, end=0.3)) == [0, 1, 2]


def test_load_frames_of_video_without_audio(video_no_audio_mp4):
    assert load_frames(video_no_audio_mp4, num_frames=4).shape == (4, VIDEO_SIZE, VIDEO_SIZE, 3)


# ------------------------------------------------------------------------------ probe
def test_probe_video(video_mp4):
    info = probe(video_mp4)
    assert info.has_video and info.has_audio
    assert info.duration_s == pytest.approx(1.0, abs=0.1)
    assert info.fps == pytest.approx(VIDEO_FPS)
    assert (info.width, info.height) == (VIDEO_SIZE, VIDEO_SIZE)
    assert info.sample_rate == 22050


def test_probe_without_audio_and_audio_only(video_no_audio_mp4, sine_m4a, sine_wav):
    mute = probe(video_no_audio_mp4)
    assert mute.has_video and not mute.has_audio and mute.sample_rate is None
    for path, rate in ((sine_m4a, 22050), (sine_wav, 16000)):
        info = probe(path)
        assert not info.has_video and info.has_audio and info.fps is None and info.width is None
        assert info.sample_rate == rate


# ------------------------------------------------------------------------------ load_clip
def test_load_clip_both_tracks(video_mp4):
    clip = load_clip(video_mp4, num_frames=4)
    assert isinstance(clip, Clip) and clip.path == video_mp4
    assert clip.has_video and clip.frames.shape == (4, VIDEO_SIZE, VIDEO_SIZE, 3)
    assert clip.has_audio and clip.audio.dtype == np.float32 and clip.sample_rate == SAMPLE_RATE
    assert 15500 <= len(clip.audio) <= 17000


def test_load_clip_without_audio_track(video_no_audio_mp4):
    clip = load_clip(video_no_audio_mp4)
    assert clip.audio is None and not clip.has_audio and clip.frames.shape[0] == 8


def test_load_clip_audio_only(sine_m4a):
    clip = load_clip(sine_m4a)
    assert clip.frames is None and not clip.has_video and clip.audio is not None


def test_load_clip_segment(video_mp4):
    clip = load_clip(video_mp4, num_frames=2, start=0.5, end=1.0)
    assert _frame_ids(clip.frames) == [6, 8]
    assert abs(len(clip.audio) - 8000) <= 2


# ------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("loader", [load_frames, probe, load_clip])
def test_missing_file(loader, tmp_path):
    path = tmp_path / "gone.mp4"
    with pytest.raises(MediaError, match=f"{_names(path)}: file not found"):
        loader(path)


@pytest.mark.parametrize("loader", [load_frames, probe, load_clip])
def test_empty_file(loader, empty_mp4):
    with pytest.raises(MediaError, match=rf"{_names(empty_mp4)}: empty file \(0 bytes\)"):
        loader(empty_mp4)


@pytest.mark.parametrize("loader", [load_frames, probe, load_clip])
def test_corrupt_file(loader, corrupt_mp4):
    with pytest.raises(MediaError, match=f"{_names(corrupt_mp4)}: unreadable or corrupt"):
        loader(corrupt_mp4)


def test_unsupported_format(text_file_as_media):
    with pytest.raises(MediaError, match=f"{_names(text_file_as_media)}: unsupported format"):
        load_frames(text_file_as_media)


@pytest.mark.parametrize("fixture", ["sine_m4a", "sine_wav"])
def test_no_video_stream(fixture, request):
    path = request.getfixturevalue(fixture)
    with pytest.raises(MediaError, match=f"{_names(path)}: no video stream"):
        load_frames(path)


def test_zero_frames(zero_frames_mkv):
    assert probe(zero_frames_mkv).has_video
    with pytest.raises(MediaError, match=f"{_names(zero_frames_mkv)}: zero frames"):
        load_frames(zero_frames_mkv)


@pytest.mark.parametrize(("start", "end"), [(1.5, None), (2.0, 3.0)])
def test_segment_outside_the_video(video_mp4, start, end):
    with pytest.raises(MediaError, match=f"{_names(video_mp4)}: segment .* lies outside the file"):
        load_frames(video_mp4, start=start, end=end)


def test_invalid_segment(video_mp4):
    with pytest.raises(MediaError, match=f"{_names(video_mp4)}: invalid segment: end=0.1 s is not after"):
        load_frames(video_mp4, start=0.5, end=0.1)


def test_num_frames_must_be_positive(video_mp4):
    with pytest.raises(MediaError, match=f"{_names(video_mp4)}: num_frames must be positive"):
        load_frames(video_mp4, num_frames=0)


def test_load_clip_propagates_silent_audio(tmp_path):
    path = write_composite_clip(tmp_path / "quiet.mp4", make_frames(4), 10, np.zeros(16000, np.float32), 16000)
    with pytest.raises(MediaError, match=f"{_names(path)}: all silent"):
        load_clip(path)
    assert load_clip(path, min_rms=0).audio is not None


# ------------------------------------------------------------------------------ synth
def test_write_composite_clip_round_trips(tmp_path):
    frames = make_frames()
    audio = sine(1.0, 16000)
    path = write_composite_clip(tmp_path / "composite.mp4", frames, VIDEO_FPS, audio, 16000)
    assert path == tmp_path / "composite.mp4" and path.is_file()
    assert not list(tmp_path.glob(".*partial*"))
    info = probe(path)
    assert info.has_video and info.has_audio and info.fps == pytest.approx(VIDEO_FPS)
    clip = load_clip(path, num_frames=N_VIDEO_FRAMES)
    assert _frame_ids(clip.frames) == list(range(N_VIDEO_FRAMES))
    assert np.abs(clip.frames.astype(int) - frames.astype(int)).mean() < 3
    assert abs(len(clip.audio) - 16000) < 1100  # AAC priming / padding: at most one 1024-sample frame
    lag = np.argmax(np.correlate(clip.audio[:4000], audio[:2000], mode="valid"))
    np.testing.assert_allclose(clip.audio[lag:lag + 8000], audio[:8000], atol=0.05)
    np.testing.assert_allclose(load_audio(path)[:100], clip.audio[:100])


def test_write_composite_clip_real_face(tmp_path):
    """The documented composite: astronaut photo frames + a tone (an EmoDB file in the demo)."""
    skimage_data = pytest.importorskip("skimage.data")
    face = skimage_data.astronaut()
    path = write_composite_clip(tmp_path / "astronaut.mp4", np.stack([face] * 3), 5, sine(0.6, 16000), 16000)
    clip = load_clip(path, num_frames=2)
    assert clip.frames.shape == (2, 512, 512, 3)


@pytest.mark.parametrize(("frames", "audio", "problem"), [
    (np.zeros((2, 63, 64, 3), np.uint8), np.ones(100, np.float32), "frame height and width must be even"),
    (np.zeros((2, 64, 64), np.uint8), np.ones(100, np.float32), r"frames must be \(N, H, W, 3\) uint8"),
    (np.zeros((2, 64, 64, 3), np.float32), np.ones(100, np.float32), "frames must be"),
    (np.zeros((2, 64, 64, 3), np.uint8), np.ones(0, np.float32), "audio must be a non-empty"),
    (np.zeros((2, 64, 64, 3), np.uint8), np.full(10, np.nan, np.float32), "audio must be a non-empty finite"),
])
def test_write_composite_clip_rejects_bad_input(tmp_path, frames, audio, problem):
    with pytest.raises(MediaError, match=f"bad.mp4: {problem}"):
        write_composite_clip(tmp_path / "bad.mp4", frames, 10, audio, 16000)
    assert not (tmp_path / "bad.mp4").exists()


def test_write_composite_clip_unencodable_rate(tmp_path):
    with pytest.raises(MediaError, match=r"odd\.mp4: cannot encode the clip"):
        write_composite_clip(tmp_path / "odd.mp4", make_frames(2), 10, sine(0.1, 12345), 12345)
    assert not list(tmp_path.iterdir())
