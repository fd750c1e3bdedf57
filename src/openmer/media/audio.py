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
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from openmer.errors import MediaError

#: The sample rate every openmer audio encoder expects (Hz).
SAMPLE_RATE = 16000

#: Files decoded with soundfile (libsndfile); everything else goes through PyAV.
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


def _open_container(path: Path):
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


def _container_start(container) -> float:
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
            segment is invalid or lies outside the file, or when the audio is all silent.
    """
    p = _check_file(path)
    _check_segment(p, start, end)
    if p.suffix.lower() in SOUNDFILE_SUFFIXES:
        wave, sr = _read_soundfile(p, start, end)
    else:
        wave, sr = _read_pyav(p, start, end)
    wave = resample(wave, sr, sample_rate)
    if min_rms > 0:
        rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64))))
        if rms < min_rms:
            raise MediaError(p, f"all silent: RMS {rms:.3g} is below min_rms={min_rms:g} "
                                f"(pass min_rms=0 to accept silent audio)")
    return wave


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
    import av

    with _open_container(p) as container:
        streams = container.streams.audio
        if not streams:
            raise MediaError(p, "no audio stream")
        stream = streams[0]
        origin = _container_start(container)
        resampler = av.AudioResampler(format="fltp")  # sample format only: keeps rate and layout
        chunks: list[np.ndarray] = []
        t0: float | None = None
        sr = stream.codec_context.sample_rate
        try:
            for frame in container.decode(stream):
                if t0 is None:
                    t0 = (frame.time - origin) if frame.time is not None else 0.0
                    sr = frame.sample_rate
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().mean(axis=0))
                if end is not None and frame.time is not None and frame.time - origin > end:
                    break  # the rest of the file lies after the segment
        except av.FFmpegError as exc:
            raise MediaError(p, f"unreadable or corrupt audio ({exc.__class__.__name__}: {exc})") from exc
    wave = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if len(wave) == 0:
        raise MediaError(p, "zero duration: the audio stream holds no samples")
    i0, i1 = _cut(p, len(wave), sr, t0 or 0.0, start, end)
    return wave[i0:i1], sr
