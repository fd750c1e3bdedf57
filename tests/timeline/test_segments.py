"""EDER, smoothing and segments on hand-made cases (no model, no media)."""

from __future__ import annotations

import numpy as np
import pytest

from openmer.timeline.segments import decisions, eder, segments, smooth
from openmer.timeline.subtitles import Cue, CueIndex, read_cues
from openmer.timeline.windows import tiles


def test_eder_of_a_perfect_hypothesis_is_zero():
    ref = [(0.0, 2.0, "happy"), (3.0, 5.0, "unknown")]
    assert eder(ref, ref)["eder"] == 0.0


def test_eder_counts_an_unknown_segment_predicted_as_known_and_a_missed_one():
    # reference: happy 0-4, (silence 4-5), unknown 5-8, sad 8-10 -> 9 s of labelled time
    ref = [(0.0, 4.0, "happy"), (5.0, 8.0, "unknown"), (8.0, 10.0, "sad")]
    # hypothesis: happy 0-3 then unknown 3-4 (1 s confusion), no_speech 4-5 (right), the unknown
    # stretch predicted as "sad" 5-8 (3 s confusion), the sad stretch missed (2 s), and a false
    # alarm "happy" 10-11 (1 s; the reference has no speech there)
    hyp = [(0.0, 3.0, "happy"), (3.0, 4.0, "unknown"), (4.0, 5.0, "no_speech"), (5.0, 8.0, "sad"),
           (8.0, 10.0, "no_speech"), (10.0, 11.0, "happy")]
    r = eder(ref, hyp)
    assert r["total"] == pytest.approx(9.0)
    assert r["confusion"] == pytest.approx(4.0)
    assert r["missed"] == pytest.approx(2.0)
    assert r["false_alarm"] == pytest.approx(1.0)
    assert r["overlap"] == 0.0
    assert r["eder"] == pytest.approx(7.0 / 9.0)


def test_eder_counts_overlapping_hypotheses():
    ref = [(0.0, 2.0, "happy")]
    hyp = [(0.0, 2.0, "happy"), (1.0, 2.0, "unknown")]
    r = eder(ref, hyp)
    assert r["overlap"] == pytest.approx(1.0) and r["eder"] == pytest.approx(0.5)


def test_eder_needs_labelled_reference_time():
    with pytest.raises(ValueError, match="labelled time"):
        eder([], [(0.0, 1.0, "happy")])


def _boundaries(labels):
    return [i for i in range(1, len(labels)) if labels[i] != labels[i - 1]]


@pytest.mark.parametrize("k", [3, 5, 9])
def test_smoothing_moves_no_boundary_farther_than_its_bound(k):
    rng = np.random.default_rng(k)
    classes, h = ["a", "b", "c"], (k - 1) // 2
    for _ in range(200):
        n = int(rng.integers(5, 40))
        # runs of raw decisions, some windows without speech
        probs = rng.dirichlet(np.ones(3) * 0.5, size=n)
        conf = probs.max(axis=1) + rng.normal(0, 0.1, n)
        scored = rng.random(n) > 0.15
        raw = decisions(conf, probs, scored, 0.6, classes, ["no_speech"] * n)
        sc, sp = smooth(conf, probs, scored, k)
        smoothed = decisions(sc, sp, scored, 0.6, classes, ["no_speech"] * n)
        raw_b = _boundaries(raw)
        for b in _boundaries(smoothed):
            assert raw_b and min(abs(b - r) for r in raw_b) <= h, (raw, smoothed, b)
        # windows whose whole neighbourhood agrees keep their decision
        for i in range(n):
            if scored[i] and all(raw[j] == raw[i] for j in range(max(0, i - h), min(n, i + h + 1))):
                assert smoothed[i] == raw[i]


def test_smoothing_needs_an_odd_window_count():
    with pytest.raises(ValueError, match="odd"):
        smooth(np.zeros(3), np.zeros((3, 2)), np.ones(3, bool), 2)


def test_segments_merge_tiles_and_drop_short_runs():
    starts = np.arange(6) * 1.0
    t0, t1 = tiles(starts, starts + 2.0)
    assert t0.tolist() == [0.0, 1.5, 2.5, 3.5, 4.5, 5.5] and t1.tolist() == [1.5, 2.5, 3.5, 4.5, 5.5, 7.0]
    labels = ["a", "a", "unknown", "a", "b", "b"]
    conf = np.array([0.9, 0.7, 0.2, 0.8, 0.6, 0.8])
    segs = segments(t0, t1, labels, conf)
    assert [(s.start, s.end, s.label, s.n_windows) for s in segs] == [
        (0.0, 2.5, "a", 2), (2.5, 3.5, "unknown", 1), (3.5, 4.5, "a", 1), (4.5, 7.0, "b", 2)]
    assert segs[0].confidence == pytest.approx(0.8)
    merged = segments(t0, t1, labels, conf, min_segment=1.5)
    assert [(s.start, s.end, s.label) for s in merged] == [(0.0, 4.5, "a"), (4.5, 7.0, "b")]


def test_cues_land_in_the_windows_they_overlap(tmp_path):
    srt = tmp_path / "talk.srt"
    srt.write_text("1\n00:00:00,500 --> 00:00:01,500\nhello there\n\n2\n00:00:03,000 --> 00:00:06,000\n"
                   "I am  so\nangry\n", encoding="utf-8")
    vtt = tmp_path / "talk.vtt"
    vtt.write_text("WEBVTT\n\n00:00.500 --> 00:01.500\nhello there\n\n00:03.000 --> 00:06.000\nI am so angry\n",
                   encoding="utf-8")
    js = tmp_path / "talk.json"
    js.write_text('{"segments": [{"start": 0.5, "end": 1.5, "text": "hello there"}, '
                  '{"start": 3, "end": 6, "text": "I am so angry"}]}', encoding="utf-8")
    expected = [Cue(0.5, 1.5, "hello there"), Cue(3.0, 6.0, "I am so angry")]
    for f in (srt, vtt, js):
        assert read_cues(f) == expected, f
    index = CueIndex(expected)
    got = [index.text(s, s + 2.0) for s in (0.0, 1.0, 2.0, 4.0, 6.0)]
    assert got == ["hello there", "hello there", "I am so angry", "I am so angry", None]


def test_a_broken_transcript_is_one_error_naming_the_file(tmp_path):
    from openmer.errors import DataError

    bad = tmp_path / "talk.json"
    bad.write_text('[{"start": 2, "end": 1, "text": "x"}]', encoding="utf-8")
    with pytest.raises(DataError, match=r"talk\.json.*cue 1"):
        read_cues(bad)
    bad.write_text("[{", encoding="utf-8")
    with pytest.raises(DataError, match="cannot read the transcript"):
        read_cues(bad)


def test_segments_are_cut_to_speech_and_short_pauses_are_bridged():
    from openmer.timeline.segments import Segment, cut_to_speech

    segs = [Segment(0.0, 4.0, "happy", 0.9, 2), Segment(4.0, 5.0, "no_speech", float("nan"), 1),
            Segment(5.0, 9.0, "unknown", 0.2, 2)]
    speech = [(0.5, 1.5), (1.6, 3.0), (5.5, 6.0), (7.0, 8.0)]  # 0.1 s pause bridged, 1 s pause kept
    got = [(s.start, s.end, s.label) for s in cut_to_speech(segs, speech, min_pause=0.3)]
    assert got == [(0.0, 0.5, "no_speech"), (0.5, 3.0, "happy"), (3.0, 5.5, "no_speech"), (5.5, 6.0, "unknown"),
                   (6.0, 7.0, "no_speech"), (7.0, 8.0, "unknown"), (8.0, 9.0, "no_speech")]
