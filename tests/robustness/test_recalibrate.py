"""Threshold recalibration on clips of a new environment (no unknown-class data)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from openmer.errors import DataError
from openmer.inference.loaded import load_run
from openmer.inference.recalibrate import recalibrate, recalibrated_threshold
from openmer.media.corruptions import Sample, corrupt
from openmer.methods.threshold import Threshold
from tests.helpers.run_folders import KNOWN, clip_rows, write_manifest


def test_the_rule_keeps_the_acceptance_on_the_new_clips():
    old = Threshold.from_confidences(np.linspace(0.5, 1.0, 50), 0.9, "val")
    new_conf = np.linspace(0.1, 0.6, 40)  # every confidence fell in the new room
    new = recalibrated_threshold(old, new_conf, what="phone line")
    assert new.acceptance == old.acceptance and new.source == old.source
    assert np.mean(new_conf >= new.value) == pytest.approx(0.9, abs=0.03)
    assert "recalibrated" in new.rule and "phone line" in new.rule
    with pytest.raises(ValueError, match="at least one clip"):
        recalibrated_threshold(old, np.array([]))


@pytest.fixture(scope="module")
def noisy_room(tmp_path_factory):
    """The tiny clips again, as recorded in a noisy room (white noise at 0 dB SNR)."""
    root = tmp_path_factory.mktemp("room")
    rows = clip_rows(root)
    for r in rows:
        path = root / r["audio"]
        wave, sr = sf.read(path, dtype="float32")
        noisy = corrupt(Sample(audio=wave), "white_noise", 4, np.random.default_rng(len(r["id"]))).audio
        sf.write(path, noisy, sr)
    return write_manifest(root / "manifest.csv", rows), rows


def test_recalibrate_writes_a_run_with_the_new_threshold(trained_run, tiny_paper_profile, noisy_room, tmp_path):
    manifest, rows = noisy_room
    run = load_run(trained_run, profile=tiny_paper_profile)
    res = recalibrate(run, manifest, tmp_path / "new", clips="known")
    assert res.n_clips == sum(r["label"] in KNOWN for r in rows)
    again = load_run(tmp_path / "new", profile=tiny_paper_profile)
    assert again.threshold == pytest.approx(res.threshold.value)
    assert again.info.threshold.acceptance == run.info.threshold.acceptance
    conf = again.score(again.clips(*_known(manifest, again))).confidence.numpy()
    assert np.mean(conf >= again.threshold) >= run.info.threshold.acceptance - 1 / len(conf)
    unlabeled = recalibrate(run, manifest, None, clips="unlabeled")
    assert unlabeled.n_clips == len(rows) and unlabeled.run_dir is None


def _known(manifest, run):
    from openmer.data.manifest import Manifest

    man = Manifest.read(manifest)
    man = man.subset([i for i, s in enumerate(man) if s.label in run.known_classes])
    return man, [-1] * len(man)


def test_recalibration_without_known_clips_is_refused(trained_run, tiny_paper_profile, tmp_path):
    rows = [r for r in clip_rows(tmp_path) if r["label"] not in KNOWN]
    manifest = write_manifest(tmp_path / "other.csv", rows)
    with pytest.raises(DataError, match="known class"):
        recalibrate(load_run(trained_run, profile=tiny_paper_profile), manifest, None)
