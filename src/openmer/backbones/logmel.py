"""Whisper's log-mel spectrogram in torch, differentiable with respect to the waveform.

Reproduces ``transformers.WhisperFeatureExtractor`` (which follows OpenAI Whisper's
``log_mel_spectrogram``): STFT with a periodic Hann window (``n_fft`` 400, hop 160, centred,
reflect padding), power spectrum with the last frame dropped, Slaney mel filters (80 bins,
0-8000 Hz), ``log10(max(mel, 1e-10))``, a dynamic-range clamp at ``max - 8`` (per sample) and
``(x + 4) / 4``. It is written in torch so that learnable waveform prompts (audio prompts of
SMEP/CUEP) stay differentiable.

Two modes:

- ``pad_to_seconds=30``: the waveform is zero-padded (or cut) to 30 s, exactly as the feature
  extractor does; the output has ``30 * 16000 / 160 = 3000`` frames. Used as the reference.
- default (short): the waveform is treated as followed by silence (zeros), as in the padded
  mode, but only the frames asked for are returned. The ``max - 8`` clamp uses the maximum over
  every frame that touches the audio plus silent frames, which is the same maximum as the padded
  30 s reference (silent frames are ``log10(1e-10) = -10`` and never exceed it unless the whole
  clip is silent, where both are -10). So the short-mode frames equal the reference's first
  frames up to float rounding. The one difference: audio longer than ``pad_to_seconds`` is not
  cut in short mode.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import Tensor

SAMPLE_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160
N_MELS = 80


@functools.lru_cache(maxsize=8)
def _mel_filters_np(n_fft: int, n_mels: int, sample_rate: int) -> np.ndarray:
    from transformers.audio_utils import mel_filter_bank

    # The same call as WhisperFeatureExtractor.__init__ (Slaney scale and norm).
    return mel_filter_bank(
        num_frequency_bins=1 + n_fft // 2, num_mel_filters=n_mels, min_frequency=0.0,
        max_frequency=sample_rate / 2.0, sampling_rate=sample_rate, norm="slaney", mel_scale="slaney",
    )


def mel_filters(n_fft: int = N_FFT, n_mels: int = N_MELS, sample_rate: int = SAMPLE_RATE, *,
                device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """The Slaney mel filter bank of Whisper, ``(1 + n_fft // 2, n_mels)`` (= extractor ``mel_filters``)."""
    return torch.as_tensor(_mel_filters_np(n_fft, n_mels, sample_rate), dtype=dtype, device=device)


def frames_touching_audio(n_samples: int, n_fft: int = N_FFT, hop: int = HOP_LENGTH) -> int:
    """Number of (centred) STFT frames whose window overlaps the first ``n_samples`` samples."""
    return max(1, math.ceil((n_samples + n_fft // 2) / hop))


def log_mel_spectrogram(
    waveform: Tensor,
    n_fft: int = N_FFT,
    hop: int = HOP_LENGTH,
    n_mels: int = N_MELS,
    sample_rate: int = SAMPLE_RATE,
    *,
    lengths: Tensor | None = None,
    n_frames: int | None = None,
    pad_to_seconds: float | None = None,
) -> Tensor:
    """Whisper log-mel features of raw waveforms, differentiable.

    Args:
        waveform: (B, T) or (T,) float mono waveforms at ``sample_rate`` (16 kHz for Whisper).
        n_fft: STFT window length, samples.
        hop: STFT hop, samples (160 = 10 ms at 16 kHz).
        n_mels: mel bins.
        sample_rate: Hz; only used for the mel filters (the input is not resampled).
        lengths: (B,) real lengths in samples; samples beyond them are set to zero (silence),
            so right-padded batches give each clip the features it has alone. ``None``: all T.
        n_frames: short mode only: number of frames returned (default ``T // hop``, the
            extractor's count for an unpadded waveform). Frames past the audio are silence.
        pad_to_seconds: reference mode: zero-pad or cut to this duration first, as
            ``WhisperFeatureExtractor`` does with 30 s; returns ``seconds * sample_rate / hop`` frames.

    Returns:
        (B, n_mels, frames) float32 (or (n_mels, frames) for a 1-D input).

    Raises:
        ValueError: ``waveform`` is not 1-D or 2-D, or ``lengths`` has the wrong shape.
    """
    squeeze = waveform.dim() == 1
    if squeeze:
        waveform = waveform[None]
    if waveform.dim() != 2:
        raise ValueError(f"waveform must be (B, T) or (T,) samples, got shape {tuple(waveform.shape)}")
    waveform = waveform.float()
    b, t = waveform.shape
    if lengths is not None:
        lengths = torch.as_tensor(lengths, device=waveform.device).long().reshape(-1)
        if lengths.numel() != b:
            raise ValueError(f"lengths must have one entry per waveform ({b}), got {lengths.numel()}")
        keep = torch.arange(t, device=waveform.device)[None, :] < lengths[:, None]
        waveform = waveform * keep
    if pad_to_seconds is not None:
        n = int(round(pad_to_seconds * sample_rate))
        waveform = torch.nn.functional.pad(waveform, (0, n - t)) if n > t else waveform[:, :n]
        total = n // hop  # STFT gives n // hop + 1 frames, the last is dropped
        keep_frames = total
        max_frames = total
    else:
        keep_frames = t // hop if n_frames is None else int(n_frames)
        # Frames needed for an exact max: all frames touching audio, and the ones asked for.
        max_frames = max(keep_frames, frames_touching_audio(t, n_fft, hop))
        need = max_frames * hop + n_fft  # silence after the audio, so the end reflection is zeros
        if need > t:
            waveform = torch.nn.functional.pad(waveform, (0, need - t))
    window = torch.hann_window(n_fft, device=waveform.device, dtype=waveform.dtype)
    stft = torch.stft(waveform, n_fft, hop, window=window, center=True, pad_mode="reflect", return_complex=True)
    stft = stft[..., :max_frames]
    power = stft.real.square() + stft.imag.square()  # |X|^2, differentiable everywhere
    filters = mel_filters(n_fft, n_mels, sample_rate, device=waveform.device, dtype=power.dtype)
    mel = filters.T @ power  # (B, n_mels, frames)
    log_spec = torch.clamp(mel, min=1e-10).log10()
    peak = log_spec.amax(dim=(1, 2), keepdim=True)
    log_spec = torch.maximum(log_spec, peak - 8.0)
    out = ((log_spec + 4.0) / 4.0)[..., :keep_frames]
    return out[0] if squeeze else out
