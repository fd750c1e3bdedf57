"""openmer.media.audio: decoding, downmix, resampling, segments, and every MediaError."""

from __future__ import annotations

import re

import numpy as np
import pytest

from openmer.errors import MediaError
from openmer.media import SAMPLE_RATE, check_sample_rate, load_audio, resample, to_16k
from tests.media.conftest import TONE_HZ, sine


def _names(path) -> str:
    """A regex matching the file's name in a message."""
    return re.escape(path.name)


def _peak_hz(wave: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / sr)[np.argmax(spectrum)])


# ------------------------------------------------------------------------------ decoding
def test_wav_at_16k_is_returned_unchanged(sine_wav):
    wave = load_audio(sine_wav)
    assert wave.dtype == np.float32 and wave.shape == (8000,)
    np.testing.assert_allclose(wave, sine(0.5, 16000), atol=1e-4)  # soundfile's default 16-bit PCM


def test_stereo_44k_is_downmixed_and_resampled(stereo_wav_44k):
    wave = load_audio(stereo_wav_44k)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert len(wave) == 8000  # 0.5 s at 16 kHz
    assert abs(_peak_hz(wave, SAMPLE_RATE) - TONE_HZ) < 5
    # mean of (sine, silence): amplitude halves
    assert np.abs(wave[1000:-1000]).max() == pytest.approx(0.25, abs=0.02)


def test_flac_8k_is_upsampled(sine_flac):
    wave = load_audio(sine_flac)
    assert len(wave) == 8000
    assert abs(_peak_hz(wave, SAMPLE_RATE) - TONE_HZ) < 5


@pytest.mark.parametrize("fixture", ["sine_m4a", "sine_mp3", "video_mp4"])
def test_pyav_formats_and_video_audio_track(fixture, request):
    path = request.getfixturevalue(fixture)
    wave = load_audio(path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    # about 1 s at 16 kHz (encoder padding may add a few ms)
    assert 15500 <= len(wave) <= 17000, len(wave)
    assert abs(_peak_hz(wave, SAMPLE_RATE) - TONE_HZ) < 5
    assert 0.3 < np.abs(wave).max() < 0.7


def test_other_output_rate(sine_wav):
    assert len(load_audio(sine_wav, sample_rate=8000)) == 4000


def test_segment_of_wav(sine_wav):
    wave = load_audio(sine_wav, start=0.1, end=0.3)
    assert wave.shape == (3200,)
    np.testing.assert_allclose(wave, sine(0.5, 16000)[1600:4800], atol=1e-4)
    assert len(load_audio(sine_wav, start=0.25)) == 4000
    assert len(load_audio(sine_wav, end=0.25)) == 4000


def test_segment_of_video_audio_track(video_mp4):
    wave = load_audio(video_mp4, start=0.25, end=0.75)
    assert abs(len(wave) - 8000) <= 2
    assert abs(_peak_hz(wave, SAMPLE_RATE) - TONE_HZ) < 5


def test_segment_end_past_the_file_is_clipped(sine_wav, sine_m4a):
    assert len(load_audio(sine_wav, start=0.4, end=0.55)) == 1600
    assert len(load_audio(sine_wav, end=30.0)) == 8000
    assert 15500 <= len(load_audio(sine_m4a, start=0.0, end=30.0)) <= 17000


def test_silence_check_can_be_disabled(silent_wav):
    wave = load_audio(silent_wav, min_rms=0)
    assert wave.shape == (8000,) and not wave.any()


# ------------------------------------------------------------------------------ resampling helpers
def test_resample_reduced_fraction_lengths():
    x = sine(1.0, 22050)
    assert resample(x, 22050, 16000).shape == (16000,)
    assert to_16k(x, 22050).dtype == np.float32
    np.testing.assert_array_equal(resample(x, 22050, 22050), x)
    assert to_16k(np.stack([x, x]), 22050).shape == (2, 16000)


def test_to_16k_keeps_the_tone():
    assert abs(_peak_hz(to_16k(sine(1.0, 48000), 48000), 16000) - TONE_HZ) < 2


def test_check_sample_rate():
    check_sample_rate(16000, 16000)
    check_sample_rate(16000)
    with pytest.raises(MediaError, match="wrong sample rate: got 44100 Hz, expected 16000 Hz"):
        check_sample_rate(44100, 16000)
    with pytest.raises(MediaError, match=r"^clip\.wav: wrong sample rate"):
        check_sample_rate(8000, path="clip.wav")


def test_resample_rejects_bad_rates():
    with pytest.raises(MediaError, match="sample rates must be positive integers"):
        resample(np.zeros(10), 0, 16000)


# ------------------------------------------------------------------------------ errors
def test_missing_file(tmp_path):
    path = tmp_path / "nope.wav"
    with pytest.raises(MediaError, match=f"{_names(path)}: file not found"):
        load_audio(path)


def test_directory_is_not_a_file(tmp_path):
    folder = tmp_path / "dir.wav"
    folder.mkdir()
    with pytest.raises(MediaError, match=f"{_names(folder)}: not a file"):
        load_audio(folder)


@pytest.mark.parametrize("fixture", ["empty_wav", "empty_mp4"])
def test_empty_file(fixture, request):
    path = request.getfixturevalue(fixture)
    with pytest.raises(MediaError, match=rf"{_names(path)}: empty file \(0 bytes\)"):
        load_audio(path)


@pytest.mark.parametrize("fixture", ["corrupt_wav", "corrupt_mp4"])
def test_corrupt_file(fixture, request):
    path = request.getfixturevalue(fixture)
    with pytest.raises(MediaError, match=f"{_names(path)}: unreadable or corrupt"):
        load_audio(path)


def test_unsupported_format(text_file_as_media):
    with pytest.raises(MediaError, match=f"{_names(text_file_as_media)}: unsupported format '.txt'"):
        load_audio(text_file_as_media)


def test_no_audio_stream(video_no_audio_mp4):
    with pytest.raises(MediaError, match=f"{_names(video_no_audio_mp4)}: no audio stream"):
        load_audio(video_no_audio_mp4)


def test_zero_duration(zero_duration_wav):
    with pytest.raises(MediaError, match=f"{_names(zero_duration_wav)}: zero duration"):
        load_audio(zero_duration_wav)


@pytest.mark.parametrize("fixture", ["silent_wav", "sine_wav"])
def test_all_silent(fixture, request):
    path = request.getfixturevalue(fixture)
    threshold = 1e-4 if fixture == "silent_wav" else 1.0  # a 0.5-amplitude sine is "silent" under RMS 1
    with pytest.raises(MediaError, match=f"{_names(path)}: all silent: RMS .* below min_rms"):
        load_audio(path, min_rms=threshold)


@pytest.mark.parametrize("fixture", ["sine_wav", "sine_m4a"])
@pytest.mark.parametrize(("start", "end"), [(2.0, None), (2.0, 3.0), (1.5, 5.0)])
def test_segment_outside_the_file(fixture, start, end, request):
    path = request.getfixturevalue(fixture)
    with pytest.raises(MediaError, match=f"{_names(path)}: segment .* lies outside the file \\(duration"):
        load_audio(path, start=start, end=end)


@pytest.mark.parametrize(("start", "end", "problem"), [(-1.0, None, "start=-1.0"),
                                                       (0.3, 0.2, "end=0.2 s is not after start=0.3 s"),
                                                       (float("nan"), None, "start=nan")])
def test_invalid_segment(sine_wav, start, end, problem):
    with pytest.raises(MediaError, match=f"{_names(sine_wav)}: invalid segment: {re.escape(problem)}"):
        load_audio(sine_wav, start=start, end=end)


def test_message_holds_the_path_attribute(corrupt_mp4):
    with pytest.raises(MediaError) as info:
        load_audio(corrupt_mp4)
    assert info.value.path == corrupt_mp4
    assert "unreadable or corrupt" in info.value.reason
