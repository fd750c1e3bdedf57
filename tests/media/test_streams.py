"""The streams a file holds decide what `openmer predict` reads from it, never its suffix (issue 24,
WEAK: an audio-only ``.mp4`` was refused by a model with a video block, the same bytes renamed
``.m4a`` were scored)."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from openmer import inference
from openmer.inference.loaded import LoadedRun
from openmer.inference.predict import _media_files
from openmer.media import probe
from openmer.methods.base import OpenSetScores
from tests.media.conftest import encode, make_frames, sine


class _ModalityEcho(LoadedRun):
    """A loaded run whose clips decode as the real ones do (its own ``clips``), and whose scoring
    gives each clip a confidence that says which modalities it read (video 0.5, audio 0.25)."""

    seen: list

    def score(self, clips, **_):
        items = [clips[i] for i in range(len(clips))]  # decoding is where a wrongly routed file fails
        self.seen.extend(items)
        conf = [0.5 * (it["video"] is not None) + 0.25 * (it["audio"] is not None) for it in items]
        return OpenSetScores(torch.tensor(conf), torch.zeros(len(items), dtype=torch.int64), None)

    @property
    def known_classes(self):
        return ["a", "b"]

    @property
    def threshold(self):
        return 0.0


@pytest.fixture
def video_audio_run():
    """A run with video and audio blocks (:class:`_ModalityEcho`)."""
    video = SimpleNamespace(preprocess=lambda frames, path: torch.from_numpy(np.asarray(frames, np.float32)))
    info = SimpleNamespace(modalities=["video", "audio"], method="echo")
    run = _ModalityEcho(run_dir=Path("."), info=info, method=None, encoders={"video": video})
    run.seen = []
    return run, run.seen


def _same_bytes(src, dest):
    shutil.copyfile(src, dest)
    return dest


def test_an_audio_only_mp4_and_the_same_bytes_as_m4a_are_scored_alike(tmp_path, video_audio_run):
    run, seen = video_audio_run
    mp4 = encode(tmp_path / "speech.mp4", None, 10, sine(1.0, 16000), 16000)
    m4a = _same_bytes(mp4, tmp_path / "speech.m4a")
    assert probe(mp4) == probe(m4a)
    records = [inference.predict_file(run, f) for f in (mp4, m4a)]
    for r in records:
        assert "error" not in r and r["modalities"] == ["audio"] and r["confidence"] == 0.25, r
        assert r["warnings"] == ["no video: predicted from audio"]
    assert all(it["video"] is None and it["audio"] is not None for it in seen)


def test_a_video_named_m4a_is_read_as_the_video_it_is(tmp_path, video_audio_run):
    run, _ = video_audio_run
    mp4 = encode(tmp_path / "clip.mp4", make_frames(), 10, sine(1.0, 16000), 16000)
    m4a = _same_bytes(mp4, tmp_path / "clip.m4a")
    for f in (mp4, m4a):
        r = inference.predict_file(run, f)
        assert r["modalities"] == ["video", "audio"] and r["confidence"] == 0.75 and "warnings" not in r, r


def test_a_video_without_audio_named_m4a_is_still_a_video(tmp_path, video_audio_run):
    run, _ = video_audio_run
    mute = _same_bytes(encode(tmp_path / "mute.mp4", make_frames(), 10, None, 16000), tmp_path / "mute.m4a")
    r = inference.predict_file(run, mute)
    assert r["modalities"] == ["video"] and r["confidence"] == 0.5, r


def test_audio_named_wav_that_libsndfile_cannot_read_is_decoded_by_what_it_holds(tmp_path):
    """AAC bytes named ``.wav``: the suffix chose libsndfile, which refused them ("Format not
    recognised") although ``probe`` saw an audio stream; now PyAV decodes them as it does the ``.m4a``."""
    from openmer.media import load_audio
    from openmer.media.audio import stream_audio

    m4a = encode(tmp_path / "speech.m4a", None, 10, sine(1.0, 16000), 16000, container_format="mp4")
    wav = _same_bytes(m4a, tmp_path / "speech.wav")
    expected = load_audio(m4a)
    np.testing.assert_array_equal(load_audio(wav), expected)
    np.testing.assert_array_equal(np.concatenate(list(stream_audio(wav))), np.concatenate(list(stream_audio(m4a))))


def test_a_folder_given_to_predict_lists_every_file_the_loaders_accept(tmp_path):
    """One list of media suffixes (openmer.media's): a ``.aiff`` or ``.mts`` file in a folder was
    skipped by ``predict`` though ``load_audio`` / ``probe`` accept it."""
    from openmer.media.audio import MEDIA_SUFFIXES

    for name in ("a.aiff", "b.mts", "c.wav", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    listed = [f.name for f, error in _media_files([tmp_path]) if error is None]
    assert listed == ["a.aiff", "b.mts", "c.wav"]
    assert inference.AUDIO_EXT | inference.VIDEO_EXT == MEDIA_SUFFIXES
