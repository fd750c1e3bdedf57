"""The corruptions: identity at severity 0, the asked SNR, deterministic for a seed, bad input refused."""

from __future__ import annotations

import numpy as np
import pytest

from openmer.errors import ConfigError
from openmer.media.corruptions import (
    CORRUPTIONS,
    Augmentation,
    CorruptionPool,
    Sample,
    corrupt,
    parse_corruptions,
)


def _speech_like(seed: int, n: int = 16000) -> np.ndarray:
    r = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t + seed)
    return (0.2 * env * (np.sin(2 * np.pi * (150 + 40 * seed) * t) + 0.3 * r.standard_normal(n))).astype(np.float32)


@pytest.fixture
def sample() -> Sample:
    return Sample(audio=_speech_like(0), text="das will sie am Mittwoch abgeben", neighbour_text="heute abend")


@pytest.fixture
def pool() -> CorruptionPool:
    return CorruptionPool(babble=tuple(_speech_like(s, 12000) for s in (1, 2, 3, 4, 5)),
                          babble_groups=("a", "a", "b", "b", "c"), vocabulary=("Tisch", "Haus", "gelb"))


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_severity_zero_is_the_identity(name, sample, pool):
    out = corrupt(sample, name, 0, np.random.default_rng(0), pool)
    assert out.text == sample.text
    assert np.array_equal(out.audio, sample.audio)


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_every_severity_changes_the_sample_and_is_deterministic(name, sample, pool):
    c = CORRUPTIONS[name]
    for sev in c.severities:
        a = corrupt(sample, name, sev, np.random.default_rng(7), pool)
        b = corrupt(sample, name, sev, np.random.default_rng(7), pool)
        assert a.text == b.text
        if a.audio is None:
            assert b.audio is None
        else:
            assert a.audio.dtype == np.float32 and a.audio.shape == sample.audio.shape
            assert np.array_equal(a.audio, b.audio)
            assert np.isfinite(a.audio).all()
        changed = (a.text != sample.text) or a.audio is None or not np.array_equal(a.audio, sample.audio)
        if name != "word_substitution" and name != "word_deletion":  # a 10 % WER may hit no word of 6
            assert changed, f"{name} at severity {sev} left the sample unchanged"


@pytest.mark.parametrize("name", ["white_noise", "pink_noise", "babble"])
@pytest.mark.parametrize("severity", [1, 2, 3, 4])
def test_snr_is_the_one_asked_for(name, severity, sample, pool):
    out = corrupt(sample, name, severity, np.random.default_rng(3), pool)
    x, y = sample.audio.astype(np.float64), out.audio.astype(np.float64)
    snr = 10 * np.log10(np.sum(x ** 2) / np.sum((y - x) ** 2))
    assert snr == pytest.approx(CORRUPTIONS[name].levels[severity - 1], abs=0.05)


def test_babble_without_training_clips_is_refused(sample):
    with pytest.raises(ConfigError, match="training speakers"):
        corrupt(sample, "babble", 1, np.random.default_rng(0), CorruptionPool())


def test_codec_at_lower_bit_rate_loses_more(sample):
    x = sample.audio.astype(np.float64)
    err = [np.sum((corrupt(sample, "mp3", s, np.random.default_rng(0)).audio - x) ** 2) for s in (1, 3)]
    assert err[1] > err[0]


def test_text_corruptions_hit_the_asked_word_error_rate_on_average():
    words = " ".join(f"w{i}" for i in range(50))
    s = Sample(text=words)
    rng = np.random.default_rng(0)
    dels = [50 - len(corrupt(s, "word_deletion", 3, rng).text.split()) for _ in range(40)]
    assert np.mean(dels) / 50 == pytest.approx(0.4, abs=0.02)
    subs = corrupt(s, "word_substitution", 2, rng, CorruptionPool(vocabulary=("x",))).text.split()
    assert len(subs) == 50 and subs.count("x") == 10


def test_unknown_names_and_severities_are_refused(sample):
    with pytest.raises(ConfigError, match="choices"):
        corrupt(sample, "fog", 1, np.random.default_rng(0))
    with pytest.raises(ConfigError, match=r"severities 0\.\.3"):
        corrupt(sample, "mp3", 4, np.random.default_rng(0))
    with pytest.raises(ConfigError):
        parse_corruptions("noise,fog")


def test_families_expand():
    assert parse_corruptions("noise,mp3") == ("white_noise", "pink_noise", "babble", "mp3")


def test_augmentation_is_seeded_and_leaves_a_share_clean(sample, pool):
    aug = Augmentation(("white_noise", "reverb"), p=0.5)
    outs = [aug(sample, np.random.default_rng(s), pool) for s in range(40)]
    clean = sum(o is sample for o in outs)
    assert 8 <= clean <= 32
    again = aug(sample, np.random.default_rng(5), pool)
    assert np.array_equal(again.audio, outs[5].audio)
