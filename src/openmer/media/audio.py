"""Audio decoding: any audio file or a video's audio track -> float32 mono waveform at 16 kHz.

Decoders: ``soundfile`` (libsndfile) for ``.wav`` and ``.flac``; PyAV (FFmpeg) for every other
format, the audio track of a video included. Channels are averaged to mono, and the result is
resampled with :func:`scipy.signal.resample_poly` by the reduced fraction ``target / source``
(e.g. 22050 Hz -> 16000 Hz is up 320, down 441), whatever the decoder. See ``docs/media.md``.

Times (``start``/``end``) are seconds on the file's presentation timeline, measured from the
container's start (the first sample of a plain audio file is at 0 s).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import resample_poly

from openmer.errors import MediaError, SilentAudioError

#: The sample rate every openmer audio encoder expects (Hz).
SAMPLE_RATE = 16000

#: Files decoded with soundfile (libsndfile) when it recognises their bytes; everything else goes through PyAV.
SOUNDFILE_SUFFIXES = frozenset({".wav", ".flac"})
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".wma",
                            ".aiff", ".aif", ".amr"})
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".flv", ".mpg", ".mpeg",
                            ".ts", ".mts", ".m2ts", ".3gp", ".wmv", ".vob", ".ogv"})
#: File name suffixes (lower case) the loaders accept; any other suffix is "unsupported format".
MEDIA_SUFFIXES = AUDIO_SUFFIXES | VIDEO_SUFFIXES


# ---------------------------------------------------------------------------- shared helpers
def _check_file(path: str | Path) -> Path:
    """The path as a :class:`Path`, after checking it names a non-empty file of a known media type."""
    p = Path(path)
    if not p.exists():
        raise MediaError(p, "file not found")
    if not p.is_file():
        raise MediaError(p, "not a file")
    if p.suffix.lower() not in MEDIA_SUFFIXES:
        raise MediaError(p, f"unsupported format {p.suffix or '(no extension)'!r}; "
                            f"supported: {', '.join(sorted(MEDIA_SUFFIXES))}")
    if p.stat().st_size == 0:
        raise MediaError(p, "empty file (0 bytes)")
    return p


def _open_container(path: Path) -> Any:
    """``av.open(path)``, turning FFmpeg's errors into :class:`MediaError`."""
    import av

    try:
        return av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise MediaError(path, f"unreadable or corrupt media ({exc.__class__.__name__}: {exc})") from exc


def _check_segment(path: Path, start: float | None, end: float | None) -> None:
    if start is not None and (not math.isfinite(start) or start < 0):
        raise MediaError(path, f"invalid segment: start={start} s (need a finite start >= 0)")
    if end is not None and (not math.isfinite(end) or end <= (start or 0.0)):
        raise MediaError(path, f"invalid segment: end={end} s is not after start={start or 0.0} s")


def _segment_outside(path: Path, start: float | None, end: float | None, duration: float) -> MediaError:
    return MediaError(path, f"segment [{start or 0.0:g}, {'end' if end is None else f'{end:g}'}] s "
                            f"lies outside the file (duration {duration:.3f} s)")


def _container_start(container: Any) -> float:
    import av

    return 0.0 if container.start_time is None else container.start_time / av.time_base


# ---------------------------------------------------------------------------- public API
def resample(wave: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample along the last axis with a polyphase filter.

    Args:
        wave: (..., T) samples at ``orig_sr`` Hz.
        orig_sr: sample rate of ``wave`` (Hz, positive integer).
        target_sr: wanted sample rate (Hz, positive integer).

    Returns:
        (..., T') float32 with ``T' = ceil(T * target_sr / orig_sr)``; ``wave`` itself (as float32)
        when the rates are equal.

    Source: :func:`scipy.signal.resample_poly` with ``up/down = target_sr/orig_sr`` reduced.
    """
    if int(orig_sr) != orig_sr or int(target_sr) != target_sr or orig_sr <= 0 or target_sr <= 0:
        raise MediaError(None, f"sample rates must be positive integers, got {orig_sr} and {target_sr} Hz")
    x = np.asarray(wave, dtype=np.float32)
    if orig_sr == target_sr:
        return x
    ratio = Fraction(int(target_sr), int(orig_sr))
    return resample_poly(x, ratio.numerator, ratio.denominator, axis=-1).astype(np.float32)


def to_16k(wave: np.ndarray, sr: int) -> np.ndarray:
    """``wave`` (..., T) at ``sr`` Hz resampled to 16 kHz, float32 (see :func:`resample`).

    Accepts anything :func:`numpy.asarray` takes (CPU tensors included) and returns numpy.
    """
    return resample(wave, sr, SAMPLE_RATE)


def check_sample_rate(waveform_sr: int, expected: int = SAMPLE_RATE, *, path: str | Path | None = None) -> None:
    """Check the sample rate of a waveform handed in directly (not decoded by openmer).

    Raises:
        MediaError: "wrong sample rate: got X Hz, expected Y Hz" (naming ``path`` when given).
    """
    if int(waveform_sr) != int(expected):
        raise MediaError(path, f"wrong sample rate: got {waveform_sr} Hz, expected {expected} Hz "
                               f"(resample first, e.g. openmer.media.to_16k)")


def load_audio(path: str | Path, *, sample_rate: int = SAMPLE_RATE, start: float | None = None,
               end: float | None = None, min_rms: float = 1e-4) -> np.ndarray:
    """Decode an audio file, or the audio track of a video, to a mono waveform.

    Args:
        path: the file (``.wav``/``.flac`` through soundfile; mp3, m4a, ogg, videos... through PyAV).
        sample_rate: output rate in Hz (default 16000).
        start: segment start in seconds (``None`` = beginning of the file).
        end: segment end in seconds (``None`` = end of the file). An end past the end of the
            file is clipped to it (a segment is refused only when it does not overlap the file).
        min_rms: raise if the root-mean-square of the returned waveform is below this
            (full scale = 1.0); ``0`` disables the silence check.

    Returns:
        (T,) float32 mono samples at ``sample_rate``, channels averaged, in [-1, 1] for PCM input.

    Raises:
        MediaError: naming the file, when it is missing, empty (0 bytes), of an unsupported
            format, unreadable or corrupt, has no audio stream, holds zero samples, when the
            segment is invalid or lies outside the file; :class:`~openmer.errors.SilentAudioError`
            (a MediaError) when the audio is all silent.
    """
    p = _check_file(path)
    _check_segment(p, start, end)
    if _soundfile_reads(p):
        wave, sr = _read_soundfile(p, start, end)
    else:
        wave, sr = _read_pyav(p, start, end)
    wave = resample(wave, sr, sample_rate)
    if min_rms > 0:
        rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64))))
        if rms < min_rms:
            raise SilentAudioError(p, f"all silent: RMS {rms:.3g} is below min_rms={min_rms:g} "
                                f"(pass min_rms=0 to accept silent audio)")
    return wave


def _soundfile_reads(p: Path) -> bool:
    """Whether libsndfile decodes ``p``: a ``.wav``/``.flac`` name whose bytes it recognises. Other
    bytes under such a name (AAC in an MP4 container renamed ``.wav``, or a corrupt file) go to
    PyAV, which decodes what the file holds or raises a :class:`MediaError` naming it."""
    import soundfile as sf

    if p.suffix.lower() not in SOUNDFILE_SUFFIXES:
        return False
    try:
        sf.info(str(p))
    except (sf.LibsndfileError, RuntimeError):
        return False
    return True


def _cut(p: Path, n: int, sr: int, t0: float, start: float | None, end: float | None) -> tuple[int, int]:
    """Sample indices [i0, i1) of the segment in a signal of ``n`` samples whose first is at ``t0`` s."""
    duration = t0 + n / sr
    i0 = 0 if start is None else max(0, round((start - t0) * sr))
    i1 = n if end is None else min(n, max(0, round((end - t0) * sr)))
    if i1 <= i0:
        raise _segment_outside(p, start, end, duration)
    return i0, i1


def _read_soundfile(p: Path, start: float | None, end: float | None) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        with sf.SoundFile(str(p)) as f:
            sr, n = f.samplerate, f.frames
            if n == 0:
                raise MediaError(p, "zero duration: the file holds no audio samples")
            i0, i1 = _cut(p, n, sr, 0.0, start, end)
            f.seek(i0)
            data = f.read(i1 - i0, dtype="float32", always_2d=True)
    except sf.LibsndfileError as exc:
        raise MediaError(p, f"unreadable or corrupt audio ({exc})") from exc
    if len(data) == 0:
        raise MediaError(p, "zero duration: the file holds no audio samples")
    return data.mean(axis=1), sr


def _read_pyav(p: Path, start: float | None, end: float | None) -> tuple[np.ndarray, int]:
    """The segment's samples (channels averaged) and their rate, through PyAV.

    With a ``start``, the demuxer first seeks to the last packet at or before it (every audio
    packet is a key frame), so a segment late in a long file costs its own length, not the
    file's; decoded samples before ``start`` are dropped as they come, so memory holds the
    segment only.
    """
    import av

    with _open_container(p) as container:
        streams = container.streams.audio
        if not streams:
            raise MediaError(p, "no audio stream")
        stream = streams[0]
        origin = _container_start(container)
        sr = stream.codec_context.sample_rate
        if start and stream.time_base is not None:
            try:
                # 1 s early: codecs with overlapping frames (AAC, MP3, Opus) need the frames before
                # the segment to decode its first samples exactly as a decode from the start does
                container.seek(int((max(0.0, start - 1.0) + origin) / stream.time_base), stream=stream, backward=True)
            except av.FFmpegError:
                container.seek(0, stream=stream)
        resampler = av.AudioResampler(format="fltp")  # sample format only: keeps rate and layout
        chunks: list[np.ndarray] = []
        t0: float | None = None
        kept = 0
        try:
            for frame in container.decode(stream):
                if t0 is None:
                    t0 = (frame.time - origin) if frame.time is not None else 0.0
                    sr = frame.sample_rate
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().mean(axis=0))
                    kept += len(chunks[-1])
                if start is not None and t0 + kept / sr < start - 2.0 and len(chunks) > 1:
                    kept -= sum(len(c) for c in chunks[:-1])  # wholly before the segment: drop
                    t0 += sum(len(c) for c in chunks[:-1]) / sr
                    del chunks[:-1]
                if end is not None and frame.time is not None and frame.time - origin > end:
                    break  # the rest of the file lies after the segment
        except av.FFmpegError as exc:
            raise MediaError(p, f"unreadable or corrupt audio ({exc.__class__.__name__}: {exc})") from exc
    wave = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if len(wave) == 0:
        raise MediaError(p, "zero duration: the audio stream holds no samples" if not start else
                         f"segment starting at {start:g} s lies outside the audio stream")
    i0, i1 = _cut(p, len(wave), sr, t0 or 0.0, start, end)
    return wave[i0:i1], sr


# ---------------------------------------------------------------------------- streaming
@dataclass(frozen=True)
class DecodeGap:
    """A stretch of a recording that could not be decoded (its samples are zeros in the stream).

    Attributes:
        start_s, end_s: the stretch, seconds from the start of the recording.
        reason: what went wrong (FFmpeg's message, or "missing samples" for a jump in timestamps).
    """

    start_s: float
    end_s: float
    reason: str


def stream_audio(path: str | Path, *, block_seconds: float = 30.0, sample_rate: int = SAMPLE_RATE,
                 gaps: list[DecodeGap] | None = None) -> Iterator[np.ndarray]:
    """Decode a recording as consecutive mono blocks, in memory bounded by one block.

    Block ``k`` holds samples ``[k * B, (k + 1) * B)`` of the recording at ``sample_rate``
    (``B = block_seconds * sample_rate``; the last block is shorter), so sample ``n`` lies at
    ``n / sample_rate`` seconds whatever the block size. Decoders as :func:`load_audio`:
    soundfile reads ``.wav``/``.flac`` in blocks resampled with :func:`resample` over a margin of
    neighbouring samples (the result equals resampling the whole file, to float rounding);
    PyAV decodes packet by packet through FFmpeg's resampler (stateful, so blocks join without
    seams). A packet FFmpeg cannot decode, or a jump in timestamps, becomes zeros for its
    duration and a :class:`DecodeGap` appended to ``gaps``; the rest of the file is still decoded.

    Args:
        path: an audio file or a video with an audio track.
        block_seconds: B, seconds per block (> 0).
        sample_rate: output rate in Hz.
        gaps: a list that receives a :class:`DecodeGap` per stretch that could not be decoded.

    Yields:
        (T,) float32 blocks, channels averaged.

    Raises:
        MediaError: naming the file, when it cannot be opened at all or has no audio stream.
    """
    p = _check_file(path)
    if not block_seconds > 0:
        raise MediaError(p, f"block_seconds must be > 0, got {block_seconds}")
    block = max(1, round(block_seconds * sample_rate))
    source = _stream_soundfile(p, sample_rate) if _soundfile_reads(p) \
        else _stream_pyav(p, sample_rate, gaps if gaps is not None else [])
    # Each piece is copied into the block being filled as it comes and then dropped: the stream holds
    # one block (plus a piece), never a block's worth of small per-packet arrays, which the heap
    # kept after they were freed (a 2-hour timeline's resident memory rose by a block's worth).
    buf: np.ndarray | None = None
    filled = 0
    for piece in source:
        i = 0
        while i < len(piece):
            if buf is None:
                buf = np.empty(block, np.float32)
            n = min(block - filled, len(piece) - i)
            buf[filled: filled + n] = piece[i: i + n]
            filled += n
            i += n
            if filled == block:
                yield buf  # the consumer owns it: the next block is a new buffer
                buf, filled = None, 0
        del piece
    if buf is not None and filled:
        yield buf[:filled]


def _stream_soundfile(p: Path, sample_rate: int) -> Iterator[np.ndarray]:
    import soundfile as sf

    try:
        with sf.SoundFile(str(p)) as f:
            sr, n = f.samplerate, f.frames
            ratio = Fraction(int(sample_rate), int(sr))
            up, down = ratio.numerator, ratio.denominator
            step = down * max(1, round(10.0 * sr / down))  # ~10 s, a whole number of output samples
            margin = down * math.ceil(4096 / down)  # covers the polyphase filter's reach
            for i0 in range(0, n, step):
                a, b = max(0, i0 - margin), min(n, i0 + step + margin)
                f.seek(a)
                x = f.read(b - a, dtype="float32", always_2d=True)
                x = x[:, 0] if x.shape[1] == 1 else x.mean(axis=1)  # mono: no copy
                y = resample(x, sr, sample_rate)
                lo = (i0 - a) * up // down
                i1 = min(n, i0 + step)
                yield y[lo: lo + math.ceil(i1 * up / down) - i0 * up // down]
    except sf.LibsndfileError as exc:
        raise MediaError(p, f"unreadable or corrupt audio ({exc})") from exc


def _add_gap(gaps: list[DecodeGap], gap: DecodeGap) -> None:
    """Append ``gap``, merged into the last one when they touch (one report per corrupt stretch)."""
    if gaps and gap.start_s <= gaps[-1].end_s + 0.05:
        last = gaps[-1]
        gaps[-1] = DecodeGap(last.start_s, max(last.end_s, gap.end_s), last.reason)
    else:
        gaps.append(gap)


def _stream_pyav(p: Path, sample_rate: int, gaps: list[DecodeGap]) -> Iterator[np.ndarray]:
    import av

    with _open_container(p) as container:
        if not container.streams.audio:
            raise MediaError(p, "no audio stream")
        stream = container.streams.audio[0]
        origin = _container_start(container)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        emitted = 0
        tolerance = 0.1  # seconds of timestamp jump taken as missing samples, not jitter
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as exc:  # the demuxer lost the stream: the rest is unreadable
                _add_gap(gaps, DecodeGap(emitted / sample_rate, math.inf, f"{exc.__class__.__name__}: {exc}"))
                break
            try:
                frames = packet.decode()
            except av.FFmpegError as exc:
                t = (float(packet.pts * packet.time_base) - origin) if packet.pts is not None and packet.time_base \
                    else emitted / sample_rate
                dur = float(packet.duration * packet.time_base) if packet.duration and packet.time_base else 0.0
                _add_gap(gaps, DecodeGap(t, t + dur, f"{exc.__class__.__name__}: {exc}"))
                continue
            for frame in frames:
                if frame.time is not None:
                    missing = round((frame.time - origin) * sample_rate) - emitted
                    if missing > tolerance * sample_rate:
                        _add_gap(gaps, DecodeGap(emitted / sample_rate, (emitted + missing) / sample_rate,
                                              "missing samples (a jump in timestamps)"))
                        yield np.zeros(missing, np.float32)
                        emitted += missing
                for out in resampler.resample(frame):
                    x = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                    emitted += len(x)
                    yield x
        for out in resampler.resample(None):
            yield out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
