"""Seeded corruptions of a clip's audio and transcript: what real recordings do to "unknown".

Every corruption is a :class:`Corruption` in :data:`CORRUPTIONS`, applied with :func:`corrupt`
to a :class:`Sample` (16 kHz mono float32 audio and/or a transcript) at a *severity*: ``0`` is the
identity (the same object comes back), ``1..len(levels)`` picks the corruption's parameter
``levels[severity - 1]`` (an SNR in dB, an RT60 in s, a bit rate in kbit/s...). Randomness comes
only from the ``numpy.random.Generator`` passed in, so a corruption is deterministic for a seed.

Families (docs/robustness.md):

- ``noise``: ``white_noise``, ``pink_noise`` (1/f power), ``babble`` (4 talkers drawn from
  :attr:`CorruptionPool.babble`, real clips of the *training* speakers) added at SNR 20/10/5/0 dB,
  the SNR over the whole clip being exactly the one asked for (noise power scaled to it, no clipping).
- ``reverb``: a synthetic room impulse response at RT60 0.3/0.6/0.9/1.2 s: a direct path plus
  exponentially decaying Gaussian noise (Polack's statistical model, energy decaying 60 dB in
  RT60), convolved (:func:`scipy.signal.fftconvolve`), output at the input's RMS.
- ``codec``: ``mp3`` (libmp3lame) and ``opus`` (libopus, at 48 kHz) at 64/32/16 kbit/s, encoded
  and decoded in memory with PyAV, realigned to the input by cross-correlation.
  ``telephone``: 300-3400 Hz band (4th-order Butterworth) at 8 kHz (severity 1), plus G.711
  mu-law 8-bit companding (severity 2), back at 16 kHz.
- ``level``: ``gain`` at -20 dB (severity 1) and +20 dB clipped at full scale (severity 2);
  ``clipping`` at 50/25/10 % of the clip's peak.
- ``misalignment``: ``shifted_audio``: audio delayed against its transcript by 10/25/50 % of the
  clip (silence before, the end cut); ``neighbour_text``: the transcript of a neighbouring clip
  of the same speaker (:attr:`Sample.neighbour_text`, a misaligned subtitle).
- ``text``: ``word_deletion`` / ``word_substitution`` at word error rates 10/20/40 % (the number
  of words hit is ``floor(WER * n + u)``, ``u ~ U(0, 1)``: the asked WER in expectation);
  substitutes come from :attr:`CorruptionPool.vocabulary` (the training transcripts' words).
- ``missing``: ``drop_audio``, ``drop_text``: the modality is absent (as a clip without it).

Libraries: numpy and scipy (noise, filters, convolution), PyAV (codecs). ``audiomentations``
installs here but pulls librosa and numba and draws its SNR from a range; ``pyroomacoustics``
builds from source: neither is needed for what is measured here.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from openmer.errors import ConfigError, MediaError
from openmer.media.audio import SAMPLE_RATE, resample


@dataclass(frozen=True)
class Sample:
    """What a corruption reads and returns.

    Attributes:
        audio: (T,) float32 mono at 16 kHz, or ``None`` (absent).
        text: the transcript, or ``None`` (absent).
        neighbour_text: the transcript of a neighbouring clip of the same speaker (``neighbour_text``
            corruption); ``None``: none, that corruption leaves the transcript as it is.
    """

    audio: np.ndarray | None = None
    text: str | None = None
    neighbour_text: str | None = None


@dataclass(frozen=True)
class CorruptionPool:
    """Material a corruption draws from, never from the sample's own speaker's test clips.

    Attributes:
        babble: (T_i,) float32 16 kHz clips of the training speakers (``babble``).
        babble_groups: their speakers (checked by the tests: never a test speaker).
        vocabulary: words substitutes are drawn from (``word_substitution``).
    """

    babble: tuple[np.ndarray, ...] = ()
    babble_groups: tuple[str, ...] = ()
    vocabulary: tuple[str, ...] = ()


#: ``apply(sample, level, rng, pool) -> sample``
Apply = Callable[[Sample, float, np.random.Generator, CorruptionPool], Sample]


@dataclass(frozen=True)
class Corruption:
    """One corruption: its family, the modality it touches and its parameter per severity.

    Attributes:
        name, family: e.g. ``"babble"``, ``"noise"`` (held-out families: train on some, test on others).
        modality: ``"audio"`` or ``"text"``.
        levels: the parameter at severity ``1..len(levels)``, in ``unit``.
        apply: the function (module docstring).
    """

    name: str
    family: str
    modality: Literal["audio", "text"]
    levels: tuple[float, ...]
    unit: str
    apply: Apply = field(repr=False)

    @property
    def severities(self) -> tuple[int, ...]:
        """``1..len(levels)``."""
        return tuple(range(1, len(self.levels) + 1))


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def mix_at_snr(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``x + g * noise`` with ``g`` such that ``10 log10(P(x) / P(g noise)) = snr_db`` over the clip.

    Args:
        x, noise: (T,) float arrays of the same length. A silent ``x`` comes back unchanged.

    Raises:
        MediaError: ``noise`` silent while ``x`` is not, or lengths differ.
    """
    if len(noise) != len(x):
        raise MediaError(None, f"noise of {len(noise)} samples for a clip of {len(x)}")
    px, pn = _power(x), _power(noise)
    if px == 0.0:
        return x.copy()
    if pn == 0.0:
        raise MediaError(None, "the noise to mix is silent")
    g = np.sqrt(px / (pn * 10.0 ** (snr_db / 10.0)))
    return (x.astype(np.float64) + g * noise).astype(np.float32)


def _audio(fn: Callable[[np.ndarray, float, np.random.Generator, CorruptionPool], np.ndarray | None]) -> Apply:
    def apply(s: Sample, level: float, rng: np.random.Generator, pool: CorruptionPool) -> Sample:
        if s.audio is None or len(s.audio) == 0:
            return s
        return replace(s, audio=fn(np.asarray(s.audio, dtype=np.float32), level, rng, pool))
    return apply


def _white(x: np.ndarray, snr: float, rng: np.random.Generator, pool: CorruptionPool) -> np.ndarray:
    return mix_at_snr(x, rng.standard_normal(len(x)), snr)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) noise of power spectral density ~ 1/f (white noise shaped in the frequency domain)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    return np.fft.irfft(spec / np.sqrt(f), n)


def _pink(x: np.ndarray, snr: float, rng: np.random.Generator, pool: CorruptionPool) -> np.ndarray:
    return mix_at_snr(x, pink_noise(len(x), rng), snr)


#: talkers summed into one babble
BABBLE_TALKERS = 4


def babble_noise(n: int, pool: CorruptionPool, rng: np.random.Generator, talkers: int = BABBLE_TALKERS) -> np.ndarray:
    """(n,) babble: ``talkers`` clips of ``pool.babble``, each at unit power, looped to ``n`` samples
    from a random offset, summed.

    Raises:
        ConfigError: an empty pool.
    """
    clips = [c for c in pool.babble if len(c) > 0 and _power(c) > 0]
    if not clips:
        raise ConfigError("babble needs clips of the training speakers (CorruptionPool.babble is empty)")
    out = np.zeros(n, dtype=np.float64)
    for j in rng.choice(len(clips), size=min(talkers, len(clips)), replace=False):
        c = clips[int(j)].astype(np.float64)
        c = c / np.sqrt(_power(c))
        start = int(rng.integers(len(c)))
        out += np.resize(np.roll(c, -start), n)
    return out


def _babble(x: np.ndarray, snr: float, rng: np.random.Generator, pool: CorruptionPool) -> np.ndarray:
    return mix_at_snr(x, babble_noise(len(x), pool, rng), snr)


def room_impulse_response(rt60: float, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """A synthetic room impulse response: direct path 1, then Gaussian noise under an exponential
    envelope decaying by 60 dB in ``rt60`` seconds (Polack 1993), ``rt60`` seconds long."""
    n = max(int(rt60 * sr), 2)
    t = np.arange(n) / sr
    h = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60) * 0.3
    h[0] = 1.0
    return h


def _reverb(x: np.ndarray, rt60: float, rng: np.random.Generator, pool: CorruptionPool) -> np.ndarray:
    from scipy.signal import fftconvolve

    y = fftconvolve(x.astype(np.float64), room_impulse_response(rt60, rng))[: len(x)]
    py = _power(y)
    return (y * np.sqrt(_power(x) / py) if py > 0 else y).astype(np.float32)


def _align(y: np.ndarray, x: np.ndarray, max_lag: int = 4000) -> np.ndarray:
    """``y`` shifted to best match ``x`` (cross-correlation within ``max_lag`` samples), cut or
    zero-padded to ``len(x)`` (codecs add a delay)."""
    n = len(x)
    m = 1 << int(np.ceil(np.log2(len(x) + len(y))))
    cc = np.fft.irfft(np.fft.rfft(y, m) * np.conj(np.fft.rfft(x, m)), m)
    lags = np.r_[np.arange(0, max_lag + 1), np.arange(-max_lag, 0)]
    lag = int(lags[np.argmax(cc[lags])])  # y[t + lag] ~ x[t]
    out = np.zeros(n, dtype=np.float32)
    src = y[max(lag, 0):]
    dst = max(-lag, 0)
    k = min(len(src), n - dst)
    out[dst:dst + k] = src[:k]
    return out


#: codec -> (PyAV encoder, container, the encoder's sample rate)
CODECS: dict[str, tuple[str, str, int]] = {"mp3": ("libmp3lame", "mp3", 16000), "opus": ("libopus", "ogg", 48000)}


def codec_roundtrip(x: np.ndarray, codec: str, kbps: float) -> np.ndarray:
    """(T,) 16 kHz ``x`` encoded with ``codec`` (:data:`CODECS`) at ``kbps`` kbit/s and decoded, in
    memory with PyAV, back at 16 kHz, realigned to ``x`` and of its length.

    Raises:
        MediaError: PyAV cannot encode or decode it.
    """
    import av

    name, fmt, rate = CODECS[codec]
    src = resample(x, SAMPLE_RATE, rate)
    buf = io.BytesIO()
    try:
        with av.open(buf, "w", format=fmt) as out:
            c: Any = out
            stream: Any = c.add_stream(name, rate=rate)
            stream.bit_rate = int(kbps * 1000)
            stream.layout = "mono"
            frame = av.AudioFrame.from_ndarray(np.clip(src, -1, 1)[None, :].astype(np.float32), format="flt",
                                               layout="mono")
            frame.sample_rate = rate
            for p in stream.encode(frame):
                c.mux(p)
            for p in stream.encode(None):
                c.mux(p)
        buf.seek(0)
        with av.open(buf) as inp:
            c = inp
            got = c.streams.audio[0].rate
            frames = [f.to_ndarray().astype(np.float32).reshape(-1) for f in c.decode(audio=0)]  # mono
    except (av.FFmpegError, ValueError) as exc:
        raise MediaError(None, f"{codec} at {kbps:g} kbit/s: {exc}") from exc
    y = resample(np.concatenate(frames) if frames else np.zeros(0, np.float32), got, SAMPLE_RATE)
    return _align(y, x)


def _codec(codec: str) -> Callable[[np.ndarray, float, np.random.Generator, CorruptionPool], np.ndarray]:
    def fn(x: np.ndarray, kbps: float, rng: np.random.Generator, pool: CorruptionPool) -> np.ndarray:
        return codec_roundtrip(x, codec, kbps)
    return fn


def _mu_law(x: np.ndarray, mu: float = 255.0) -> np.ndarray:
    """G.711 mu-law companding with 8-bit quantisation, expanded back."""
    y = np.sign(x) * np.log1p(mu * np.abs(np.clip(x, -1, 1))) / np.log1p(mu)
    q = np.round(y * 127.0) / 127.0
    return (np.sign(q) * np.expm1(np.abs(q) * np.log1p(mu)) / mu).astype(np.float32)


def _telephone(x: np.ndarray, level: float, rng: np.random.Generator, pool: CorruptionPool) -> np.ndarray:
    from scipy.signal import butter, sosfiltfilt

    sos = butter(4, [300.0, 3400.0], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    y = resample(sosfiltfilt(sos, x.astype(np.float64)).astype(np.float32), SAMPLE_RATE, 8000)
    if level >= 2:
        y = _mu_law(y)
    return resample(y, 8000, SAMPLE_RATE)[: len(x)]


def _gain(x: np.ndarray, db: float, rng: np.random.Generator, pool: CorruptionPool) -> np.ndarray:
    return np.clip(x * np.float32(10.0 ** (db / 20.0)), -1.0, 1.0).astype(np.float32)


def _clipping(x: np.ndarray, fraction: float, rng: np.random.Generator, pool: CorruptionPool) -> np.ndarray:
    peak = float(np.max(np.abs(x)))
    return np.clip(x, -fraction * peak, fraction * peak).astype(np.float32)


def _shift(x: np.ndarray, fraction: float, rng: np.random.Generator, pool: CorruptionPool) -> np.ndarray:
    k = int(round(fraction * len(x)))
    return np.concatenate([np.zeros(k, np.float32), x[: len(x) - k]])


def _neighbour(s: Sample, level: float, rng: np.random.Generator, pool: CorruptionPool) -> Sample:
    return s if s.text is None or s.neighbour_text is None else replace(s, text=s.neighbour_text)


def _hit_words(n: int, wer: float, rng: np.random.Generator) -> np.ndarray:
    k = min(n, int(np.floor(wer * n + rng.random())))
    return rng.choice(n, size=k, replace=False)


def _deletion(s: Sample, wer: float, rng: np.random.Generator, pool: CorruptionPool) -> Sample:
    if not s.text:
        return s
    words = s.text.split()
    hit = set(_hit_words(len(words), wer, rng).tolist())
    return replace(s, text=" ".join(w for i, w in enumerate(words) if i not in hit))


def _substitution(s: Sample, wer: float, rng: np.random.Generator, pool: CorruptionPool) -> Sample:
    if not s.text:
        return s
    words = s.text.split()
    vocab = pool.vocabulary or ("<unk>",)
    for i in _hit_words(len(words), wer, rng).tolist():
        choices = [v for v in vocab if v.lower() != words[i].lower()] or ["<unk>"]
        words[i] = choices[int(rng.integers(len(choices)))]
    return replace(s, text=" ".join(words))


def _drop(modality: str) -> Apply:
    def apply(s: Sample, level: float, rng: np.random.Generator, pool: CorruptionPool) -> Sample:
        return replace(s, **{modality: None})
    return apply


SNRS = (20.0, 10.0, 5.0, 0.0)
KBPS = (64.0, 32.0, 16.0)
WERS = (0.1, 0.2, 0.4)

#: every corruption, by name (module docstring)
CORRUPTIONS: dict[str, Corruption] = {c.name: c for c in (
    Corruption("white_noise", "noise", "audio", SNRS, "dB SNR", _audio(_white)),
    Corruption("pink_noise", "noise", "audio", SNRS, "dB SNR", _audio(_pink)),
    Corruption("babble", "noise", "audio", SNRS, "dB SNR", _audio(_babble)),
    Corruption("reverb", "reverb", "audio", (0.3, 0.6, 0.9, 1.2), "s RT60", _audio(_reverb)),
    Corruption("mp3", "codec", "audio", KBPS, "kbit/s", _audio(_codec("mp3"))),
    Corruption("opus", "codec", "audio", KBPS, "kbit/s", _audio(_codec("opus"))),
    Corruption("telephone", "codec", "audio", (1.0, 2.0), "1: 300-3400 Hz at 8 kHz, 2: + mu-law", _audio(_telephone)),
    Corruption("gain", "level", "audio", (-20.0, 20.0), "dB (clipped at full scale)", _audio(_gain)),
    Corruption("clipping", "level", "audio", (0.5, 0.25, 0.1), "x peak", _audio(_clipping)),
    Corruption("shifted_audio", "misalignment", "audio", (0.1, 0.25, 0.5), "x clip length", _audio(_shift)),
    Corruption("neighbour_text", "misalignment", "text", (1.0,), "neighbouring clip's transcript", _neighbour),
    Corruption("word_deletion", "text", "text", WERS, "WER", _deletion),
    Corruption("word_substitution", "text", "text", WERS, "WER", _substitution),
    Corruption("drop_audio", "missing", "audio", (1.0,), "audio absent", _drop("audio")),
    Corruption("drop_text", "missing", "text", (1.0,), "text absent", _drop("text")),
)}


def get_corruption(name: str) -> Corruption:
    """The corruption ``name``.

    Raises:
        ConfigError: an unknown name (the message lists the choices).
    """
    if name not in CORRUPTIONS:
        raise ConfigError(f"unknown corruption {name!r}; choices: {', '.join(CORRUPTIONS)}")
    return CORRUPTIONS[name]


def parse_corruptions(spec: str | Sequence[str]) -> tuple[str, ...]:
    """Names from ``"babble,mp3"`` or a list; a family name (``"noise"``) stands for its members.

    Raises:
        ConfigError: an unknown name or family.
    """
    names = [n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec) if n.strip()]
    out: list[str] = []
    for n in names:
        members = [c.name for c in CORRUPTIONS.values() if c.family == n]
        if not members and n not in CORRUPTIONS:
            raise ConfigError(f"unknown corruption {n!r}; corruptions: {', '.join(CORRUPTIONS)}; families: "
                              f"{', '.join(dict.fromkeys(c.family for c in CORRUPTIONS.values()))}")
        for m in members or [n]:
            if m not in out:
                out.append(m)
    return tuple(out)


def corrupt(sample: Sample, name: str, severity: int, rng: np.random.Generator,
            pool: CorruptionPool = CorruptionPool()) -> Sample:
    """``sample`` under corruption ``name`` at ``severity`` (0: ``sample`` itself).

    Raises:
        ConfigError: an unknown corruption, or a severity outside ``0..len(levels)``.
    """
    c = get_corruption(name)
    if severity == 0:
        return sample
    if not 1 <= severity <= len(c.levels):
        raise ConfigError(f"corruption {name} has severities 0..{len(c.levels)}, not {severity}")
    return c.apply(sample, c.levels[severity - 1], rng, pool)


@dataclass(frozen=True)
class Augmentation:
    """Corruptions applied to training clips (``--augment``).

    With probability ``p`` a clip gets one of ``names`` (uniform) at a severity drawn uniformly
    from ``1..min(max_severity, len(levels))``; otherwise it is left clean (the same object comes
    back). Applied to training clips only: :mod:`openmer.data.augment`.

    Raises:
        ConfigError: an unknown name, ``p`` outside [0, 1], ``max_severity`` below 1.
    """

    names: tuple[str, ...]
    p: float = 0.5
    max_severity: int = 3

    def __post_init__(self) -> None:
        for n in self.names:
            get_corruption(n)
        if not 0.0 <= self.p <= 1.0:
            raise ConfigError(f"augmentation probability must be in [0, 1], got {self.p}")
        if self.max_severity < 1:
            raise ConfigError(f"augmentation's highest severity must be at least 1, got {self.max_severity}")

    def to_dict(self) -> dict[str, Any]:
        """``{"names": [...], "p": ..., "max_severity": ...}`` (what ``run.json`` records)."""
        return {"names": list(self.names), "p": self.p, "max_severity": self.max_severity}

    def __call__(self, sample: Sample, rng: np.random.Generator, pool: CorruptionPool = CorruptionPool()) -> Sample:
        if not self.names or rng.random() >= self.p:
            return sample
        c = CORRUPTIONS[self.names[int(rng.integers(len(self.names)))]]
        severity = int(rng.integers(1, min(self.max_severity, len(c.levels)) + 1))
        return corrupt(sample, c.name, severity, rng, pool)
