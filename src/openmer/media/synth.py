"""Writing synthetic media: a composite clip from given frames and a waveform.

Used by tests and the demo to assemble a real-input tri-modal *composite* (e.g. frames of
``skimage.data.astronaut()`` + an EmoDB recording); such a file is a composite, not a recorded video.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Final, cast

import numpy as np

from openmer.errors import MediaError

#: Video encoders tried in order (the first one this PyAV build has is used).
VIDEO_CODECS = ("libx264", "mpeg4")
AUDIO_CODEC: Final = "aac"


def _has_encoder(name: str) -> bool:
    import av

    try:
        av.codec.Codec(name, "w")
    except Exception:  # noqa: BLE001 - PyAV raises different types for unknown / decoder-only codecs
        return False
    return True


def video_codec() -> str:
    """The H.264 encoder (libx264) if PyAV has it, else MPEG-4 Part 2."""
    for name in VIDEO_CODECS:
        if _has_encoder(name):
            return name
    raise MediaError(None, f"none of the video encoders {VIDEO_CODECS} is available in this PyAV build")


def write_composite_clip(path: str | Path, frames_rgb: np.ndarray, fps: float, audio: np.ndarray,
                         sample_rate: int) -> Path:
    """Write an mp4 with an H.264 (or MPEG-4) video track and an AAC audio track.

    Args:
        path: output file (``.mp4``; the container follows the suffix). Written to a temporary
            name first and renamed, so a failure leaves no half-written file.
        frames_rgb: (N, H, W, 3) uint8 RGB, N >= 1, H and W even (yuv420p).
        fps: frame rate in frames per second.
        audio: (T,) float mono samples in [-1, 1] (values outside are clipped by the encoder), T >= 1.
        sample_rate: rate of ``audio`` in Hz (one AAC supports, e.g. 16000, 22050, 44100, 48000).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        MediaError: naming ``path`` for invalid inputs or when encoding fails.
    """
    import av

    p = Path(path)
    frames = np.asarray(frames_rgb)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3 or len(frames) == 0:
        raise MediaError(p, f"frames must be (N, H, W, 3) uint8 with N >= 1, got {frames.shape} {frames.dtype}")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise MediaError(p, f"frame height and width must be even for yuv420p, got {frames.shape[1]}x{frames.shape[2]}")
    wave = np.asarray(audio, dtype=np.float32)
    if wave.ndim != 1 or len(wave) == 0 or not np.all(np.isfinite(wave)):
        raise MediaError(p, f"audio must be a non-empty finite (T,) array, got shape {wave.shape}")
    if not fps > 0 or int(sample_rate) != sample_rate or sample_rate <= 0:
        raise MediaError(p, f"fps and sample_rate must be positive, got fps={fps}, sample_rate={sample_rate}")

    tmp = p.with_name(f".{p.stem}.partial{p.suffix}")
    try:
        with av.open(str(tmp), "w") as container:
            # a video codec's name gives a VideoStream (PyAV types only literal names that precisely)
            vs = cast("av.VideoStream", container.add_stream(video_codec(), rate=Fraction(fps).limit_denominator(1001)))
            vs.width, vs.height = frames.shape[2], frames.shape[1]
            vs.pix_fmt = "yuv420p"
            aus = container.add_stream(AUDIO_CODEC, rate=int(sample_rate))
            aus.layout = "mono"
            for f in frames:
                for packet in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                    container.mux(packet)
            for packet in vs.encode():
                container.mux(packet)
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[None, :]), format="fltp", layout="mono")
            af.sample_rate = int(sample_rate)
            af.pts = 0
            for packet in aus.encode(af):
                container.mux(packet)
            for packet in aus.encode():
                container.mux(packet)
        os.replace(tmp, p)
    except (av.FFmpegError, ValueError) as exc:
        tmp.unlink(missing_ok=True)
        raise MediaError(p, f"cannot encode the clip ({exc.__class__.__name__}: {exc})") from exc
    return p
