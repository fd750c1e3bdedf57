"""Long input (issue 24 item 13): window options refused before any work, decoding that seeks,
memory bounded by the segment, and streaming decode that reports a corrupt stretch and goes on."""

from __future__ import annotations

import math
import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from openmer.errors import ConfigError
from openmer.media.audio import load_audio, stream_audio
from tests.media.conftest import encode


def _tone(seconds: float, sr: int) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.37 * t))).astype(np.float32)


def _write(path, wave: np.ndarray, sr: int):
    """``wave`` as a .wav (soundfile) or an AAC file (PyAV), by ``path``'s suffix."""
    if path.suffix == ".wav":
        sf.write(path, wave, sr)
    else:
        encode(path, None, 0, wave, sr)
    return path


def test_a_late_segment_of_a_long_pyav_file_costs_its_own_length(tmp_path):
    """Today's decoder reads from 0 s and keeps the prefix (58 MB for 1 s at 590 s of a 10-min file)."""
    path = tmp_path / "long.aiff"  # AIFF goes through PyAV (soundfile reads only .wav/.flac here)
    sf.write(path, _tone(600.0, 8000), 8000, format="AIFF")
    tracemalloc.start()
    try:
        wave = load_audio(path, start=590.0, end=591.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(wave) == 16000
    assert peak < 4e6, f"decoding 1 s at 590 s held {peak / 1e6:.1f} MB"


def test_seeking_decode_equals_decoding_from_the_start(tmp_path):
    path = encode(tmp_path / "talk.m4a", None, 0, _tone(30.0, 16000), 16000)
    whole = load_audio(path, min_rms=0)
    part = load_audio(path, start=20.0, end=22.0, min_rms=0)
    np.testing.assert_allclose(part, whole[320000:352000], atol=1e-6)


@pytest.mark.parametrize("suffix", [".wav", ".m4a"])
def test_streaming_blocks_join_into_the_whole_decode(tmp_path, suffix):
    path = _write(tmp_path / f"talk{suffix}", _tone(25.0, 22050), 22050)
    whole = load_audio(path, min_rms=0)
    blocks = list(stream_audio(path, block_seconds=3.0))
    assert all(len(b) == 48000 for b in blocks[:-1])
    joined = np.concatenate(blocks)
    assert abs(len(joined) - len(whole)) <= 1024
    n = min(len(joined), len(whole))
    if suffix == ".wav":  # the same resampler over a margin: equal to float rounding
        np.testing.assert_allclose(joined[:n], whole[:n], atol=1e-5)
    else:  # FFmpeg's resampler vs scipy's: the same signal
        assert np.corrcoef(joined[1000:n - 1000], whole[1000:n - 1000])[0, 1] > 0.99


def test_a_corrupt_stretch_is_reported_with_its_time_and_the_rest_decodes(tmp_path):
    path = encode(tmp_path / "talk.m4a", None, 0, _tone(60.0, 16000), 16000)
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    mid = len(data) // 2
    data[mid: mid + 4000] = rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    gaps = []
    joined = np.concatenate(list(stream_audio(path, gaps=gaps)))
    assert len(gaps) == 1 and 20.0 < gaps[0].start_s < gaps[0].end_s < 40.0, gaps
    assert abs(len(joined) / 16000 - 60.0) < 0.2  # the stretch is zeros: later times stay true
    gap = joined[int(gaps[0].start_s * 16000) + 800: int(gaps[0].end_s * 16000) - 800]
    assert np.abs(gap).max() == 0.0
    assert np.abs(joined[-16000 * 10:]).max() > 0.1


@pytest.mark.parametrize(("window", "hop", "match"), [
    (10.0, 0.001, "hop 0.001 s: must be between 0.1 s"),
    (math.inf, 5.0, "must be finite"),
    (0.1, 0.1, "window 0.1 s: must be between 0.25 s"),
    (10.0, 12.0, "hop 12 s: must be between 0.1 s and the window"),
])
def test_window_options_are_refused_before_the_run_is_read(tmp_path, window, hop, match):
    from openmer.inference import predict

    with pytest.raises(ConfigError, match=match):
        predict(tmp_path / "no-such-run", [tmp_path / "x.wav"], window=window, hop=hop)


def test_a_window_longer_than_the_encoder_takes_is_refused():
    from openmer.inference import check_windows, max_window_seconds

    run = SimpleNamespace(encoders={"audio": SimpleNamespace(max_audio_seconds=29.0)}, method=object())
    assert max_window_seconds(run) == 29.0
    check_windows(29.0, 5.0, max_window_seconds(run))
    with pytest.raises(ConfigError, match=r"window 29\.5 s: must be between 0\.25 s and 29 s"):
        check_windows(29.5, 5.0, max_window_seconds(run))


def test_whisper_declares_its_longest_clip():
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    from openmer.backbones.whisper import WhisperAudioEncoder

    config = WhisperConfig(d_model=8, encoder_layers=1, encoder_attention_heads=1, encoder_ffn_dim=8,
                           num_mel_bins=80, max_source_positions=1500)
    enc = WhisperEncoder(config)
    assert WhisperAudioEncoder(enc).max_audio_seconds == pytest.approx(29.0)  # 30 s less 2 x 0.5 s prompts
    assert WhisperAudioEncoder(enc, prompt_entry="features").max_audio_seconds == pytest.approx(30.0)


def _peak_while(iterable, consume) -> tuple[int, list]:
    """tracemalloc's peak (bytes, numpy buffers included) while ``consume`` takes ``iterable`` apart."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        kept = consume(iterable)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, kept


@pytest.mark.parametrize("suffix", [".wav", ".m4a"])
def test_a_streamed_block_costs_one_block_not_three(tmp_path, suffix):
    """Issue 26: a 2-hour timeline peaked 14-20 % above a 10-minute one. Each block of the stream
    was assembled from thousands of per-packet pieces (one block of small heap allocations that the
    heap kept after they were freed), then joined (a second copy) while the previous block's join
    stayed alive through the view of its remainder (a third). Now the pieces are copied into one
    block buffer as they come: while the consumer holds the previous block, the stream holds at
    most the block it is filling."""
    wave = _tone(120.0, 16000)
    path = _write(tmp_path / f"talk{suffix}", wave, 16000)
    block = 40.0 * 16000 * 4  # bytes of one 40 s float32 block (soundfile reads 10 s at a time)

    def consume(blocks):
        n = 0
        for b in blocks:  # the loop keeps the previous block alive while the next is decoded
            n += len(b)
        return n

    peak, n = _peak_while(stream_audio(path, block_seconds=40.0), consume)
    assert abs(n - len(wave)) <= 2048
    assert peak < 2.75 * block, f"streaming held {peak / block:.2f} blocks"


def test_cutting_windows_holds_a_block_and_a_window_not_a_copy_of_the_block():
    """Issue 26: ``cut_windows`` joined its remainder to each new block (a copy of the block) and
    kept the previous join alive through a view; now only the samples the next windows need are kept."""
    from openmer.timeline.windows import cut_windows

    n_block = 160_000  # 10 s at 16 kHz

    def blocks():
        for i in range(8):
            yield np.full(n_block, i, np.float32)

    def consume(windows):
        starts = []
        for w in windows:
            assert len(w.wave) == 64000 and w.wave[0] == w.start // n_block and w.wave[-1] == (w.end - 1) // n_block
            starts.append(w.start)
        return starts

    peak, starts = _peak_while(cut_windows(blocks(), 4.0, 2.0), consume)
    assert starts == [k * 32000 for k in range(len(starts))] and starts[-1] + 64000 == 8 * n_block
    assert peak < 2.5 * n_block * 4, f"cutting windows held {peak / (n_block * 4):.2f} blocks"


@pytest.mark.parametrize("seed", range(6))
def test_windows_cut_from_any_blocks_are_the_slices_of_the_whole_recording(seed):
    """Blocks of any size (shorter than a window included) give the windows of the module doc,
    each equal to the slice of the whole recording."""
    from openmer.timeline.windows import cut_windows

    rng = np.random.default_rng(seed)
    whole = rng.standard_normal(int(rng.integers(1, 400_000))).astype(np.float32)
    cuts = np.sort(rng.choice(np.arange(1, len(whole)), size=min(len(whole) - 1, int(rng.integers(0, 12))),
                              replace=False)) if len(whole) > 1 else np.zeros(0, int)
    blocks = np.split(whole, cuts)
    window, hop = float(rng.choice([0.5, 1.0, 4.0])), float(rng.choice([0.25, 0.5, 2.0]))
    got = list(cut_windows(iter(blocks), window, hop))
    w, h = round(window * 16000), round(hop * 16000)
    n = len(whole)
    want = [(k * h, k * h + w) for k in range(max(0, (n - w) // h + 1))] if n > w else [(0, n)]
    if n > w and n - want[-1][1] > 16:
        want.append((n - w, n))
    assert [(x.start, x.end) for x in got] == want
    for x in got:
        np.testing.assert_array_equal(x.wave, whole[x.start: x.end])
