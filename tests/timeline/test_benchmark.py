"""The timeline benchmark's pieces: sessions from real clips, unknown stretches and their F1, and
one session scored end to end (timeline and oracle segmentation) with a tiny run."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from openmer.timeline.benchmark import build_sessions, f1, score_session, split_metrics, unknown_matches
from openmer.timeline.core import TimelineConfig
from tests.conftest import SHARED


def test_unknown_stretches_merge_across_silence_and_match_at_iou_half():
    ref = [(0.0, 2.0, "unknown"), (2.5, 4.0, "unknown"), (5.0, 7.0, "happy"), (8.0, 10.0, "unknown")]
    # one stretch 0-4 (two unknown clips with silence between) and one 8-10
    hyp = [(0.0, 1.0, "happy"), (1.0, 4.5, "unknown"), (4.5, 5.0, "no_speech"), (5.0, 8.5, "happy"),
           (8.5, 9.0, "unknown")]
    # hyp stretches: 1-4.5 (IoU with 0-4: 3/4.5 = 0.67, a match) and 8.5-9 (IoU 0.25: none)
    assert unknown_matches(ref, hyp) == (1, 2, 2)
    assert f1(1, 2, 2) == pytest.approx(0.5)
    assert f1(0, 0, 0) == 1.0 and f1(0, 1, 0) == 0.0


@pytest.fixture(scope="module")
def emodb():
    from openmer.datasets import resolve_data

    if not (SHARED / "data" / "emodb").is_dir():
        pytest.skip(f"needs {SHARED / 'data' / 'emodb'}")
    return resolve_data("emodb")[0]


def test_sessions_hold_one_speaker_each_with_real_gaps(tmp_path, emodb):
    speakers = sorted({s.group for s in emodb})[:2]
    rows = [i for i, s in enumerate(emodb) if s.group in speakers][::10]
    sessions = build_sessions(emodb, rows, ["anger", "sadness"], tmp_path, seed=3)
    assert len(sessions) == 2
    again = build_sessions(emodb, rows, ["anger", "sadness"], tmp_path / "again", seed=3)
    assert [c[3] for c in again[0]["clips"]] == [c[3] for c in sessions[0]["clips"]]  # seeded
    for session in sessions:
        clips = session["clips"]
        assert len({emodb[c[3]].group for c in clips}) == 1
        gaps = [b[0] - a[1] for a, b in itertools.pairwise(clips)]
        assert all(0.3 - 1e-3 <= g <= 2.0 + 1e-3 for g in gaps)
        for s, e, label, row in clips:
            want = emodb[row].label if emodb[row].label in ("anger", "sadness") else "unknown"
            assert label == want and e > s


def test_a_session_is_scored_with_and_without_oracle_segments(tmp_path, emodb, trained_run):
    from openmer.inference import load_run

    run = load_run(trained_run)  # known: happy, sad -> every EmoDB clip is unknown to it
    speaker = min({s.group for s in emodb})
    rows = [i for i, s in enumerate(emodb) if s.group == speaker][:5]
    [session] = build_sessions(emodb, rows, run.known_classes, tmp_path, seed=0)
    clips = session["clips"]
    session["clips"] = [(*clips[0][:2], "happy", clips[0][3]), (*clips[1][:2], "sad", clips[1][3]), *clips[2:]]
    t = run.threshold
    oracle = (np.array([t + 1, t + 1, t - 1, t - 1, t - 1]), np.array([0, 1, 0, 0, 0]))  # every clip right
    part = score_session(run, session, run.known_classes, TimelineConfig(window=2.0, hop=1.0, group=8), oracle)
    assert part["eder_oracle"]["eder"] == pytest.approx(0.0)
    assert 0.0 <= part["eder"]["eder"] <= 2.0
    tp, pos, true = part["vad"]
    assert true > 0 and tp / true > 0.7 and tp / max(pos, 1) > 0.7  # Silero finds the clips
    metrics = split_metrics([part], k=2)
    assert metrics["unknown_f1_oracle"] == pytest.approx(1.0) and metrics["frame_auroc_oracle"] == pytest.approx(1.0)
    assert metrics["vad_recall"] == pytest.approx(tp / true)


def test_bench_recordings_have_the_asked_length(tmp_path, emodb):
    from openmer.media import probe
    from openmer.timeline.bench import build_recording

    rec = build_recording(tmp_path / "r.wav", 0.25)
    assert probe(rec).duration_s == pytest.approx(15.0, abs=0.01)


def test_the_benchmark_is_registered_and_checks_its_output_first(tmp_path):
    from openmer.benchmarks.registry import plan_benchmark
    from openmer.errors import OutputError
    from openmer.timeline.benchmark import run_timeline_benchmark

    plan = plan_benchmark("timeline", quick=True)
    assert plan.config.methods == ("msp", "arpl") and plan.config.n_splits == 1 and len(plan.config.levels) == 2
    (tmp_path / "taken").write_text("x")
    with pytest.raises(OutputError, match="exists and is not a folder"):
        run_timeline_benchmark(plan.config, tmp_path / "taken")


def test_offset_cues_land_that_many_seconds_late(tmp_path, emodb):
    """--cue-offsets: each clip's transcript lands d s after the clip starts and runs d s past its end,
    over the silence and the next clip, as a late subtitle track would."""
    from openmer.timeline.benchmark import offset_cues
    from openmer.timeline.subtitles import CueIndex, read_cues

    speaker = min({s.group for s in emodb})
    rows = [i for i, s in enumerate(emodb) if s.group == speaker][:6]
    [session] = build_sessions(emodb, rows, ["anger"], tmp_path, seed=0, cue_offsets=(0.5, 2.0))
    assert set(session["transcripts"]) == {0.0, 0.5, 2.0} and session["transcripts"][0.0] == session["transcript"]
    aligned = read_cues(session["transcript"])
    clips = session["clips"]
    for d in (0.5, 2.0):
        cues = read_cues(session["transcripts"][d])
        assert [c.text for c in cues] == [c.text for c in aligned]
        for cue, (start, end, _, row) in zip(cues, clips, strict=True):
            assert cue.start == pytest.approx(start + d) and cue.end == pytest.approx(end + d)
            assert cue.text == " ".join(emodb.text_of(emodb[row]).split())
        index = CueIndex(cues)
        first_start = clips[0][0]
        assert index.text(first_start, first_start + d - 0.01) is None  # the first clip's words come late
        for _, end, _, row in clips[:-1]:
            own = " ".join(emodb.text_of(emodb[row]).split())
            assert own in (index.text(end + d - 0.01, end + d) or "")  # still on screen d s after the clip
    assert offset_cues([{"start": 0.2, "end": 1.0, "text": "a"}, {"start": 1.5, "end": 2.0, "text": "b"}], -1.0) == [
        {"start": 0.5, "end": 1.0, "text": "b"}]  # earlier: cut at 0, a cue ending by 0 dropped


def test_results_show_the_cue_offsets_beside_the_aligned_cues():
    from openmer.timeline.benchmark import TimelineBenchmarkConfig, results_markdown, summarise

    base = dict.fromkeys(("eder", "frame_auroc", "frame_oscr", "unknown_f1", "eder_oracle", "frame_auroc_oracle",
                          "frame_oscr_oracle", "unknown_f1_oracle", "vad_precision", "vad_recall", "real_time_factor"),
                         0.5)
    records = [{**base, "method": "msp", "level": "O(3:4)", "split": s, "cue_offset_s": d,
                "eder": 0.5 + d / 10} for s in (0, 1) for d in (0.0, 1.0)]
    rows = {(r["level"], r["cue_offset_s"]): r for r in summarise(records)}
    assert rows[("O(3:4)", 1.0)]["eder"][0] == pytest.approx(0.6) and rows[("all", 0.0)]["n"] == 2
    md = results_markdown(records, TimelineBenchmarkConfig(cue_offsets=(1.0,)), {"seconds": 60})
    assert "| msp | O(3:4) | 1 | 2 | 0.600 ± 0.000 (+0.100) |" in md
    assert md.count("| msp | O(3:4) |") == 2  # the aligned row in the main table, the offset one below


@pytest.mark.parametrize("args", [["emodb", "--cue-offsets", "1"], ["timeline", "--cue-offsets", "a,b"],
                                  ["timeline", "--cue-offsets", "0"]])
def test_bad_cue_offsets_are_refused_before_any_work(tmp_path, args):
    from typer.testing import CliRunner

    from openmer.cli.app import app

    res = CliRunner().invoke(app, ["benchmark", *args, "--out", str(tmp_path / "out")])
    assert res.exit_code != 0 and "--cue-offsets" in res.output and not (tmp_path / "out").exists()


def test_windows_encoded_once_score_as_if_encoded_again(tmp_path, emodb, trained_run):
    """The benchmark's cost cut: a second run on the same encoders reads the windows' features
    (feature cache) and encoder states (kept prefix cache) of the first; its scores are those of
    a timeline that encodes everything itself."""
    from openmer.inference import load_run
    from openmer.timeline import timeline

    speaker = min({s.group for s in emodb})
    rows = [i for i, s in enumerate(emodb) if s.group == speaker][:4]
    [session] = build_sessions(emodb, rows, ["happy", "sad"], tmp_path / "s", seed=0)
    config = TimelineConfig(window=2.0, hop=1.0, group=4)
    fresh = timeline(load_run(trained_run), session["audio"], None, config=config, picture=False)
    first = load_run(trained_run)
    cache = tmp_path / "cache"
    for _ in range(2):  # the first fills the caches, the second (other run objects, same encoders) reads them
        run = load_run(trained_run, encoders=first.encoders)
        got = timeline(run, session["audio"], None, config=config, picture=False, feature_cache=cache,
                       keep_encoder_states=True)
        assert got.rows == fresh.rows
    assert any(cache.iterdir())


def test_bench_video_recordings_hold_the_audio_and_a_looped_frame_track(tmp_path, emodb):
    import av

    from openmer.media import load_audio, probe
    from openmer.timeline.bench import FRAME_RATE, FRAME_SIZE, FrameTrack, build_recording

    track = FrameTrack(seed=1)
    assert np.array_equal(track.frame(7), FrameTrack(seed=1).frame(7))  # seeded
    assert track.frame(7).shape == (FRAME_SIZE[1], FRAME_SIZE[0], 3)
    video = build_recording(tmp_path / "r.mp4", 0.1, video=True, segment_s=2)  # 6 s: the 2 s track 3 times
    info = probe(video)
    assert info.has_audio and info.has_video and (info.width, info.height) == FRAME_SIZE and info.fps == FRAME_RATE
    with av.open(str(video)) as c:
        times = [f.time for f in c.decode(video=0)]
    assert np.all(np.diff(times) > 0) and abs(len(times) - 6 * FRAME_RATE) <= 4
    audio = build_recording(tmp_path / "r.m4a", 0.1)
    np.testing.assert_array_equal(load_audio(video, min_rms=0), load_audio(audio, min_rms=0))
