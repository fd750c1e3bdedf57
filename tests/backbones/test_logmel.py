"""log_mel_spectrogram vs transformers' WhisperFeatureExtractor, and its differentiability."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from openmer.backbones.logmel import frames_touching_audio, log_mel_spectrogram, mel_filters

EMODB_FILE = "data/emodb/wav/03a01Fa.wav"
WHISPER_DIR = "models/whisper-base-encoder"


@pytest.fixture(scope="module")
def speech_16k(request) -> np.ndarray:
    from tests.conftest import SHARED

    if not (SHARED / EMODB_FILE).is_file():
        pytest.skip(f"needs {SHARED / EMODB_FILE} (see shared/README.md)")
    import soundfile as sf
    from scipy.signal import resample_poly

    wav, sr = sf.read(SHARED / EMODB_FILE, dtype="float32")
    assert sr == 22050
    return resample_poly(wav, 320, 441).astype(np.float32)  # 22.05 kHz -> 16 kHz


@pytest.fixture(scope="module")
def extractor():
    from tests.conftest import SHARED

    if not (SHARED / WHISPER_DIR).is_dir():
        pytest.skip(f"needs {SHARED / WHISPER_DIR} (see shared/README.md)")
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor.from_pretrained(SHARED / WHISPER_DIR)


def test_mel_filters_match_extractor(extractor):
    np.testing.assert_allclose(mel_filters().numpy(), extractor.mel_filters, atol=1e-7)


def test_padded_matches_feature_extractor(speech_16k, extractor):
    ref = extractor(speech_16k, sampling_rate=16000, return_tensors="np").input_features[0]  # (80, 3000)
    out = log_mel_spectrogram(torch.from_numpy(speech_16k)[None], pad_to_seconds=30)[0].numpy()
    assert out.shape == ref.shape == (80, 3000)
    covering = frames_touching_audio(len(speech_16k))  # frames whose window overlaps the speech
    assert np.abs(out[:, :covering] - ref[:, :covering]).max() < 1e-4
    assert np.abs(out - ref).max() < 1e-4


def test_short_mode_equals_reference_prefix(speech_16k, extractor):
    ref = extractor(speech_16k, sampling_rate=16000, return_tensors="np").input_features[0]
    n = 2 * int(np.ceil(len(speech_16k) / 320)) + 2
    out = log_mel_spectrogram(torch.from_numpy(speech_16k), n_frames=n).numpy()  # 1-D input -> (80, n)
    assert out.shape == (80, n)
    assert np.abs(out - ref[:, :n]).max() < 1e-4


def test_lengths_zero_the_padding(rng):
    a = torch.from_numpy(rng.standard_normal(4000).astype(np.float32)) * 0.1
    batch = torch.zeros(2, 6000)
    batch[0, :4000] = a
    batch[1] = torch.from_numpy(rng.standard_normal(6000).astype(np.float32))
    batch[0, 4000:] = 5.0  # garbage past the length must be ignored
    out = log_mel_spectrogram(batch, lengths=torch.tensor([4000, 6000]), n_frames=30)
    alone = log_mel_spectrogram(a[None], n_frames=30)
    torch.testing.assert_close(out[0], alone[0], atol=1e-5, rtol=0)


def test_differentiable_in_the_waveform(rng):
    x = torch.from_numpy(rng.standard_normal((2, 3200)).astype(np.float32) * 0.1).requires_grad_(True)
    log_mel_spectrogram(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_shapes_and_errors():
    assert log_mel_spectrogram(torch.zeros(3, 16000)).shape == (3, 80, 100)
    assert log_mel_spectrogram(torch.zeros(1, 16000), pad_to_seconds=1.5).shape == (1, 80, 150)
    with pytest.raises(ValueError, match="waveform must be"):
        log_mel_spectrogram(torch.zeros(1, 1, 100))
    with pytest.raises(ValueError, match="lengths"):
        log_mel_spectrogram(torch.zeros(2, 100), lengths=torch.tensor([1, 2, 3]))
