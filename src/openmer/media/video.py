"""Video decoding with PyAV: uniformly sampled RGB frames, stream info, and both tracks of a clip.

Frame sampling rule (TSN-style segment centres): the M frames of the clip (or of the segment
``[start, end)``) are split into N equal parts and the frame at the centre of each part is kept,
i.e. frame ``floor((i + 0.5) * M / N)`` for ``i = 0..N-1``. When M < N this repeats frames
(each kept in temporal order, e.g. M=3, N=8 -> 0 0 0 1 1 2 2 2), so the output always has N frames.

Only the N chosen frames are converted to RGB: a first pass reads packet timestamps (no
decoding) to count the frames, a second decodes up to the last chosen one. See ``docs/media.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from openmer.errors import MediaError
from openmer.media.audio import (
    SAMPLE_RATE,
    _check_file,
    _check_segment,
    _container_start,
    _open_container,
    _segment_outside,
    load_audio,
)

if TYPE_CHECKING:
    import av


@dataclass(frozen=True)
class MediaInfo:
    """What a media file holds, read from its headers (nothing is decoded).

    Attributes:
        has_video: a video stream is present (cover art in audio files does not count).
        has_audio: an audio stream is present.
        duration_s: container duration in seconds (``None`` if the headers do not say).
        fps: average frame rate of the video stream (``None`` without video).
        width, height: frame size in pixels (``None`` without video).
        sample_rate: native rate of the audio stream in Hz (``None`` without audio).
    """

    has_video: bool
    has_audio: bool
    duration_s: float | None
    fps: float | None
    width: int | None
    height: int | None
    sample_rate: int | None


@dataclass(frozen=True)
class Clip:
    """The decoded tracks of one file.

    Attributes:
        frames: (N, H, W, 3) uint8 RGB, or ``None`` when the file has no video stream.
        audio: (T,) float32 mono at ``sample_rate``, or ``None`` when the file has no audio stream.
        path: the file.
        sample_rate: rate of ``audio`` in Hz.
    """

    frames: np.ndarray | None
    audio: np.ndarray | None
    path: Path
    sample_rate: int = SAMPLE_RATE

    @property
    def has_video(self) -> bool:
        return self.frames is not None

    @property
    def has_audio(self) -> bool:
        return self.audio is not None


def _video_stream(container: av.container.InputContainer) -> av.VideoStream | None:
    """The first real video stream (cover art / attached pictures skipped), or ``None``."""
    import av

    for s in container.streams.video:
        if not s.disposition & av.stream.Disposition.attached_pic:
            return s
    return None


def sample_indices(num_available: int, num_frames: int) -> np.ndarray:
    """Indices of ``num_frames`` frames sampled uniformly from ``num_available`` (segment centres).

    Returns:
        (num_frames,) int64, non-decreasing, ``floor((i + 0.5) * num_available / num_frames)``;
        indices repeat when ``num_available < num_frames``.
    """
    if num_available <= 0 or num_frames <= 0:
        raise ValueError(f"need positive counts, got num_available={num_available}, num_frames={num_frames}")
    i = np.arange(num_frames, dtype=np.float64)
    return np.minimum(np.floor((i + 0.5) * num_available / num_frames).astype(np.int64), num_available - 1)


def probe(path: str | Path) -> MediaInfo:
    """Read the streams of a media file without decoding it.

    Raises:
        MediaError: naming the file, when it is missing, empty, of an unsupported format, or
            unreadable/corrupt.
    """
    import av

    p = _check_file(path)
    with _open_container(p) as container:
        vs = _video_stream(container)
        aus = container.streams.audio[0] if container.streams.audio else None
        duration = container.duration / av.time_base if container.duration is not None else None
        if duration is None:
            for s in (vs, aus):
                if s is not None and s.duration is not None and s.time_base is not None:
                    duration = float(s.duration * s.time_base)
                    break
        fps = None
        if vs is not None:
            rate = vs.average_rate or vs.guessed_rate or vs.base_rate
            fps = float(rate) if rate else None
        return MediaInfo(
            has_video=vs is not None,
            has_audio=aus is not None,
            duration_s=duration,
            fps=fps,
            width=vs.codec_context.width if vs is not None else None,
            height=vs.codec_context.height if vs is not None else None,
            sample_rate=aus.codec_context.sample_rate if aus is not None else None,
        )


def load_frames(path: str | Path, *, num_frames: int = 8, start: float | None = None,
                end: float | None = None) -> np.ndarray:
    """Decode ``num_frames`` RGB frames sampled uniformly over a video (or a segment of it).

    Args:
        path: a video file.
        num_frames: N, frames returned (default 8). Frames repeat when the clip has fewer (see
            :func:`sample_indices`).
        start: segment start in seconds (``None`` = first frame).
        end: segment end in seconds, exclusive (``None`` = last frame).

    Returns:
        (N, H, W, 3) uint8 RGB frames in temporal order (stored pixel size; rotation metadata
        and non-square pixel aspect ratios are not applied).

    Raises:
        MediaError: naming the file, when it is missing, empty, of an unsupported format,
            unreadable or corrupt, has no video stream, holds zero frames, or when the segment is
            invalid or holds no frame.
    """
    import av

    if num_frames <= 0:
        raise MediaError(path, f"num_frames must be positive, got {num_frames}")
    p = _check_file(path)
    _check_segment(p, start, end)

    # Pass 1: presentation timestamps of every frame, from packets (no decoding).
    with _open_container(p) as container:
        stream = _video_stream(container)
        if stream is None:
            raise MediaError(p, "no video stream")
        origin = _container_start(container)
        tb = stream.time_base
        pts_all: list[int] = []
        try:
            for k, packet in enumerate(container.demux(stream)):
                if packet.size == 0:
                    continue  # flush packet
                pts_all.append(packet.pts if packet.pts is not None else (packet.dts if packet.dts is not None else k))
        except av.FFmpegError as exc:
            raise MediaError(p, f"unreadable or corrupt video ({exc.__class__.__name__}: {exc})") from exc
    if not pts_all:
        raise MediaError(p, "zero frames: the video stream holds no frames")
    pts_all.sort()
    times = [float(t * tb) - origin for t in pts_all] if tb is not None else [float(k) for k in range(len(pts_all))]
    in_segment = [pts for pts, t in zip(pts_all, times, strict=True)
                  if (start is None or t >= start - 1e-6) and (end is None or t < end - 1e-6)]
    if not in_segment:
        step = times[-1] - times[-2] if len(times) > 1 else 0.0
        raise _segment_outside(p, start, end, times[-1] + step)
    wanted = [in_segment[i] for i in sample_indices(len(in_segment), num_frames)]
    wanted_set, last_wanted = set(wanted), max(wanted)

    # Pass 2: decode up to the last wanted frame, converting only the wanted ones.
    got: dict[int, np.ndarray] = {}
    decoded_pts: list[int] = []
    with _open_container(p) as container:
        stream = _video_stream(container)
        if stream is None:  # (pass 1 found one in the same file)
            raise MediaError(p, "no video stream")
        stream.thread_type = "AUTO"
        try:
            for k, frame in enumerate(container.decode(stream)):
                pts = frame.pts if frame.pts is not None else pts_all[min(k, len(pts_all) - 1)]
                decoded_pts.append(pts)
                if pts in wanted_set and pts not in got:
                    got[pts] = frame.to_ndarray(format="rgb24")
                if pts >= last_wanted and len(got) == len(wanted_set):
                    break
        except av.FFmpegError as exc:
            raise MediaError(p, f"unreadable or corrupt video ({exc.__class__.__name__}: {exc})") from exc
    if not got:
        raise MediaError(p, "unreadable or corrupt video: no frame of the clip could be decoded")
    return np.stack([_nearest(got, pts) for pts in wanted])


def _nearest(got: dict[int, np.ndarray], pts: int) -> np.ndarray:
    """The frame at ``pts``, or the decoded one closest in time (a frame the decoder dropped)."""
    if pts in got:
        return got[pts]
    return got[min(got, key=lambda q: abs(q - pts))]


def load_clip(path: str | Path, num_frames: int = 8, *, start: float | None = None, end: float | None = None,
              sample_rate: int = SAMPLE_RATE, min_rms: float = 1e-4) -> Clip:
    """Both tracks of a media file: sampled frames and the mono waveform.

    A missing track is ``None`` (a video without sound, an audio-only file), not an error.

    Args:
        path: a video or audio file.
        num_frames: frames sampled per video (see :func:`load_frames`).
        start, end: optional segment in seconds, applied to both tracks.
        sample_rate: rate of the returned audio in Hz.
        min_rms: silence threshold of :func:`~openmer.media.audio.load_audio` (0 disables it).

    Raises:
        MediaError: naming the file, as :func:`load_frames` and
            :func:`~openmer.media.audio.load_audio` do, or when it has neither an audio nor a
            video stream.
    """
    info = probe(path)
    if not info.has_video and not info.has_audio:
        raise MediaError(path, "no audio or video stream")
    frames = load_frames(path, num_frames=num_frames, start=start, end=end) if info.has_video else None
    audio = (load_audio(path, sample_rate=sample_rate, start=start, end=end, min_rms=min_rms)
             if info.has_audio else None)
    return Clip(frames=frames, audio=audio, path=Path(path), sample_rate=sample_rate)
