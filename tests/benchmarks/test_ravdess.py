"""``openmer benchmark ravdess`` with real-audio feature sets, on tiny generated RAVDESS folders and toy encoders."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile as sf

from openmer.benchmarks import media
from openmer.benchmarks.ravdess import MODALITY_SETS, RavdessBenchmarkConfig, ravdess_config, run_ravdess
from openmer.datasets import RAVDESS_CLASSES
from openmer.errors import ConfigError, DataError
from openmer.training import TrainConfig
from tests.helpers.tiny_media import stub_encoders

ACTORS = ("01", "17", "21")  # one train, one val, one test actor of the ravdess protocol


def _write_folders(root):
    """Both shared RAVDESS folders in miniature: 3 actors x 8 emotions x 2 clips, same order."""
    feats, speech = root / "au", root / "speech"
    feats.mkdir()
    speech.mkdir()
    rng = np.random.default_rng(0)
    rows, ids = [], []
    t = np.arange(800) / 16000
    for a in ACTORS:
        (speech / f"Actor_{a}").mkdir()
        for e, emotion in enumerate(RAVDESS_CLASSES):
            for r in (1, 2):
                av = f"01-01-{e + 1:02d}-01-01-{r:02d}-{a}"
                file = f"Actor_{a}/03-01-{e + 1:02d}-01-01-{r:02d}-{a}.flac"
                sf.write(speech / file, 0.3 * np.sin(2 * np.pi * (150 + 60 * e + 9 * r) * t), 16000)
                rows.append({"file": file, "av_clip_id": av, "clip_id": av, "actor": a, "emotion": emotion,
                             "text": "Kids are talking by the door"})
                ids.append(av)
    x = rng.normal(size=(len(ids), 294)) + np.repeat(np.arange(len(ids)) // 2 % 8, 1)[:, None]
    np.savez(feats / "au_mfcc.npz", clip_id=np.array(ids), features=x)
    for folder, cols in ((feats, ("clip_id", "actor", "emotion")), (speech, tuple(rows[0]))):
        with (folder / "labels.csv").open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(cols), extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
    return feats, speech


@pytest.fixture
def folders(tmp_path, monkeypatch):
    stub_encoders(monkeypatch)
    monkeypatch.setenv("OPENMER_CACHE", str(tmp_path / "cache"))
    return _write_folders(tmp_path)


def tiny_config(**update) -> RavdessBenchmarkConfig:
    base = RavdessBenchmarkConfig(
        dataset="ravdess", profile="toy", modalities=("text", "audio"), methods=("msp", "hcep"),
        levels=("O(2:6)",), n_splits=1, feature_sets=(("face_au",), ("audio_wav",), ("text", "audio_wav")),
        hcep_train=TrainConfig(epochs=1, optimizer="adam", lr=1e-2, batch_size=16),
        baseline_train=TrainConfig(epochs=2, optimizer="adam", lr=1e-3, batch_size=16),
        hcep_options={"cuep_audio_samples": 400}, posthoc=(), clip_posthoc=(),
    )
    return base.model_copy(update=update)


def test_real_audio_sets_next_to_the_au_features(folders):
    feats, speech = folders
    result = run_ravdess(tiny_config(), root=feats, speech_root=speech)
    got = [(r["method"], r["modalities"]) for r in result.records]
    assert got == [("msp", "face_au"), ("msp", "audio_wav"), ("msp", "text+audio_wav"), ("hcep", "text+audio_wav")]
    assert [r.modality_label for r in result.runs] == [m for _, m in got]
    assert all(r["level"] == "O(2:6)" and 0 <= r["oscr"] <= r["auroc"] <= 1 for r in result.records)
    assert result.runs[-1].labels.shape == (16,)  # actor 21's clips, known and unknown
    assert set(result.meta["timings_s"]) == {"encode_features_s", "msp_s", "hcep_s"}  # seconds per method
    # the audio features come through the (toy) audio encoder: 5-d, not the 259-d MFCC contour
    assert result.meta["config"]["feature_sets"] == [["face_au"], ["audio_wav"], ["text", "audio_wav"]]


def test_hcep_post_hoc_rows_carry_the_encoded_modality_names(folders):
    """Issue 16: HCEP's max-logit / energy rows (its DPOL head) sit beside its own row, named like it."""
    feats, speech = folders
    result = run_ravdess(tiny_config(methods=("hcep",), clip_posthoc=("max_logit", "energy")), root=feats,
                         speech_root=speech)
    got = [(r["method"], r["modalities"], r.get("posthoc_of")) for r in result.records]
    assert got == [("hcep", "text+audio_wav", None), ("hcep[max_logit]", "text+audio_wav", "hcep"),
                   ("hcep[energy]", "text+audio_wav", "hcep")]
    own, logit, energy = result.records
    assert own["closed_acc"] == logit["closed_acc"] == energy["closed_acc"]  # the same predictions


def test_features_only_needs_no_speech_folder(folders, tmp_path):
    feats, _ = folders
    cfg = tiny_config(methods=("msp",), feature_sets=(("face_au",), ("face_au", "audio")))
    result = run_ravdess(cfg, root=feats, speech_root=tmp_path / "nowhere")
    assert [r["modalities"] for r in result.records] == ["face_au", "face_au+audio"]


def test_unknown_feature_set_is_an_error(folders):
    feats, speech = folders
    with pytest.raises(ConfigError, match=r"unknown RAVDESS feature set\(s\) \['video'\]; "
                                          r"choose from \['face_au', 'audio', 'audio_wav', 'text'\]"):
        run_ravdess(tiny_config(feature_sets=(("video", "audio"),)), root=feats, speech_root=speech)


def test_mismatched_folders_are_an_error(folders):
    feats, speech = folders
    lines = (speech / "labels.csv").read_text(encoding="utf-8").splitlines()
    (speech / "labels.csv").write_text("\n".join([lines[0], lines[2], lines[1], *lines[3:]]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="not the clips of the AU/MFCC features"):
        run_ravdess(tiny_config(), root=feats, speech_root=speech)


def test_preset():
    cfg, emodb = ravdess_config(), media.emodb_config()
    assert cfg.feature_sets == MODALITY_SETS and ("text", "audio_wav") in cfg.feature_sets
    assert cfg.hcep_train == emodb.hcep_train and cfg.hcep_options == emodb.hcep_options
    assert cfg.modalities == ("text", "audio") and cfg.n_splits == 4 and cfg.levels is None
    quick = ravdess_config(quick=True)
    assert quick.hcep_train == media.emodb_config(quick=True).hcep_train
    assert quick.levels == ("O(2:6)",) and quick.n_splits == 1
