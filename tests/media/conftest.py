"""Tiny media generated in ``tmp_path`` (never committed): sine WAVs, short mp4/m4a/flac/mp3 files,
and silent, empty, corrupt and zero-duration files for the error paths.

The video fixtures have 10 frames at 10 fps (1 s), 64x64; frame ``i`` is uniformly gray at
:func:`frame_value` ``(i)`` except for a pure red 16x16 square in the top-left corner, so tests can
tell which frames were sampled and that channels are in RGB order.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

N_VIDEO_FRAMES = 10
VIDEO_FPS = 10
VIDEO_SIZE = 64
TONE_HZ = 440.0


def frame_value(i: int) -> int:
    return 10 + 24 * i


def sine(seconds: float, sample_rate: int, amplitude: float = 0.5, hz: float = TONE_HZ) -> np.ndarray:
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def make_frames(n: int = N_VIDEO_FRAMES, size: int = VIDEO_SIZE) -> np.ndarray:
    frames = np.stack([np.full((size, size, 3), frame_value(i), np.uint8) for i in range(n)])
    frames[:, :16, :16] = (255, 0, 0)
    return frames



def encode(path: Path, frames: np.ndarray | None, fps: int, audio: np.ndarray | None, sample_rate: int,
           *, video_codec: str = "libx264", audio_codec: str = "aac", container_format: str | None = None) -> Path:
    """Write ``frames`` and/or ``audio`` with PyAV (independent of openmer.media.synth)."""
    import av

    with av.open(str(path), "w", format=container_format) as c:
        vs = aus = None
        if frames is not None:
            vs = c.add_stream(video_codec, rate=Fraction(fps))
            vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if audio is not None:
            aus = c.add_stream(audio_codec, rate=sample_rate)
            aus.layout = "mono"
        if frames is not None:
            for f in frames:
                for pkt in vs.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                    c.mux(pkt)
            for pkt in vs.encode():
                c.mux(pkt)
        if audio is not None:
            af = av.AudioFrame.from_ndarray(audio[None, :], format="fltp", layout="mono")
            af.sample_rate, af.pts = sample_rate, 0
            for pkt in aus.encode(af):
                c.mux(pkt)
            for pkt in aus.encode():
                c.mux(pkt)
    return path


def has_encoder(name: str) -> bool:
    import av

    try:
        av.codec.Codec(name, "w")
    except Exception:  # noqa: BLE001
        return False
    return True


# ------------------------------------------------------------------------------ audio files
@pytest.fixture
def sine_wav(tmp_path) -> Path:
    """0.5 s, 16 kHz, mono 440 Hz sine at amplitude 0.5 (8000 samples)."""
    import soundfile as sf

    path = tmp_path / "sine.wav"
    sf.write(path, sine(0.5, 16000), 16000)
    return path


@pytest.fixture
def stereo_wav_44k(tmp_path) -> Path:
    """0.5 s, 44.1 kHz stereo: the sine on the left, silence on the right (16-bit PCM)."""
    import soundfile as sf

    path = tmp_path / "stereo44k.wav"
    left = sine(0.5, 44100)
    sf.write(path, np.stack([left, np.zeros_like(left)], axis=1), 44100, subtype="PCM_16")
    return path


@pytest.fixture
def sine_flac(tmp_path) -> Path:
    """0.5 s, 8 kHz sine as FLAC (soundfile)."""
    import soundfile as sf

    path = tmp_path / "sine.flac"
    sf.write(path, sine(0.5, 8000), 8000)
    return path


@pytest.fixture
def sine_m4a(tmp_path) -> Path:
    """1 s, 22.05 kHz sine, AAC in an audio-only MPEG-4 (.m4a) container."""
    return encode(tmp_path / "sine.m4a", None, VIDEO_FPS, sine(1.0, 22050), 22050)


@pytest.fixture
def sine_mp3(tmp_path) -> Path:
    """1 s, 22.05 kHz sine as MP3 (skipped when PyAV has no libmp3lame encoder)."""
    if not has_encoder("libmp3lame"):
        pytest.skip("this PyAV build has no MP3 encoder (libmp3lame)")
    return encode(tmp_path / "sine.mp3", None, VIDEO_FPS, sine(1.0, 22050), 22050, audio_codec="libmp3lame")


@pytest.fixture
def silent_wav(tmp_path) -> Path:
    """0.5 s of digital silence at 16 kHz."""
    import soundfile as sf

    path = tmp_path / "silent.wav"
    sf.write(path, np.zeros(8000, np.float32), 16000)
    return path


@pytest.fixture
def zero_duration_wav(tmp_path) -> Path:
    """A valid WAV header with zero samples (44 bytes)."""
    import soundfile as sf

    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros(0, np.float32), 16000)
    return path


# ------------------------------------------------------------------------------ video files
@pytest.fixture
def video_mp4(tmp_path) -> Path:
    """1 s mp4: 10 frames of 64x64 at 10 fps (H.264) + a 440 Hz tone at 22.05 kHz (AAC)."""
    return encode(tmp_path / "clip.mp4", make_frames(), VIDEO_FPS, sine(1.0, 22050), 22050)


@pytest.fixture
def video_no_audio_mp4(tmp_path) -> Path:
    """The same 10 frames, without an audio track."""
    return encode(tmp_path / "mute.mp4", make_frames(), VIDEO_FPS, None, 22050)


@pytest.fixture
def zero_frames_mkv(tmp_path) -> Path:
    """A Matroska file whose video stream holds no frames (plus 1 s of audio)."""
    import av

    path = tmp_path / "noframes.mkv"
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=VIDEO_FPS)
        vs.width = vs.height = VIDEO_SIZE
        vs.pix_fmt = "yuv420p"
        aus = c.add_stream("aac", rate=16000)
        aus.layout = "mono"
        af = av.AudioFrame.from_ndarray(sine(1.0, 16000)[None, :], format="fltp", layout="mono")
        af.sample_rate = 16000
        for pkt in aus.encode(af):
            c.mux(pkt)
        for pkt in aus.encode():
            c.mux(pkt)
    return path


# ------------------------------------------------------------------------------ broken files
@pytest.fixture
def empty_mp4(tmp_path) -> Path:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    return path


@pytest.fixture
def empty_wav(tmp_path) -> Path:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    return path


@pytest.fixture
def corrupt_mp4(tmp_path) -> Path:
    """4 KiB of random bytes named .mp4."""
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    return path


@pytest.fixture
def corrupt_wav(tmp_path) -> Path:
    """4 KiB of random bytes named .wav."""
    path = tmp_path / "corrupt.wav"
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    return path


@pytest.fixture
def text_file_as_media(tmp_path) -> Path:
    """A file of an unsupported type (.txt)."""
    path = tmp_path / "notes.txt"
    path.write_text("not media", encoding="utf-8")
    return path
