"""`openmer train / evaluate / predict` on hostile input: one clear line, no lost work, one bad file costs
nothing else."""

from __future__ import annotations

import errno
import json
import os

import pytest
from typer.testing import CliRunner

from openmer.cli.app import app
from openmer.cli.common import EXIT_SOME_FAILED
from tests.helpers.run_folders import KNOWN, clip_rows, copy_run, profile_json, write_manifest, write_wav
from tests.media.conftest import encode, make_frames

runner = CliRunner()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENMER_CACHE", str(tmp_path / "cache"))


def _train_args(data, profile_file, out, *extra):
    return ["train", "--data", str(data), "--known", ",".join(KNOWN), "--method", "arpl", "--profile",
            str(profile_file), "--out", str(out), "--epochs", "2", "--batch-size", "4", "--optimizer", "adam",
            "--lr", "1e-3", *extra]


def _lines(text):
    return [json.loads(line) for line in text.strip().splitlines()]


# ----------------------------------------------------------------------------- train
def test_train_prints_a_plain_line_per_epoch_and_refuses_to_overwrite(tmp_path, cache, tiny_paper_profile,
                                                                      audio_text_data):
    prof = profile_json(tiny_paper_profile, tmp_path / "profile.json")
    res = runner.invoke(app, _train_args(audio_text_data, prof, tmp_path / "run"))
    assert res.exit_code == 0, res.output
    epochs = [line for line in res.stderr.splitlines() if line.startswith("train arpl: ")]
    assert len(epochs) == 2 and epochs[0].startswith("train arpl: 1/2 done, elapsed 0:0") and "remaining ~" in epochs[0]
    assert "note: left out 8 row(s) whose label is not a known class: angry 8" in res.stderr
    assert "threshold" in res.stderr and "known-class training" in res.stderr

    again = runner.invoke(app, _train_args(audio_text_data, prof, tmp_path / "run"))
    assert again.exit_code == 1 and "already holds a run" in again.output and "--overwrite" in again.output
    over = runner.invoke(app, _train_args(audio_text_data, prof, tmp_path / "run", "--overwrite"))
    assert over.exit_code == 0, over.output


@pytest.mark.parametrize(("extra", "match"), [
    (["--acceptance", "1.5"], "--acceptance: acceptance must be in (0, 1], got 1.5"),
    (["--threshold-from", "test"], "--threshold-from must be 'train'"),
    (["--resume", "--overwrite"], "give one of them"),
    (["--augment", "noise,hail"], "--augment: unknown corruption 'hail'; corruptions: white_noise"),
    (["--augment", "reverb", "--augment-p", "1.5"], "--augment: augmentation probability must be in [0, 1]"),
    (["--augment-max-severity", "2"], "--augment-p and --augment-max-severity apply with --augment"),
])
def test_train_option_errors_come_first(tmp_path, tiny_paper_profile, audio_text_data, extra, match):
    res = runner.invoke(app, _train_args(audio_text_data, profile_json(tiny_paper_profile, tmp_path / "p.json"),
                                         tmp_path / "run", *extra))
    assert res.exit_code == 1 and match in res.output and "Traceback" not in res.output
    assert not (tmp_path / "run").exists()


def test_train_score_option_sets_the_runs_confidence(tmp_path, cache, tiny_paper_profile, audio_text_data):
    """Issue 16: ``--score NAME`` trains the method with that confidence (a post-hoc score fitted on
    the training clips), recorded in run.json; a score the method cannot report is one clear line."""
    from openmer.runs import read_run_info

    prof = profile_json(tiny_paper_profile, tmp_path / "p.json")
    res = runner.invoke(app, _train_args(audio_text_data, prof, tmp_path / "run", "--score", "mahalanobis"))
    assert res.exit_code == 0, res.output
    assert read_run_info(tmp_path / "run").method_config["score"] == "mahalanobis"
    bad = runner.invoke(app, _train_args(audio_text_data, prof, tmp_path / "bad", "--score", "odin"))
    assert bad.exit_code == 1 and "cannot report score 'odin'" in bad.output and "mahalanobis" in bad.output
    assert "Traceback" not in bad.output and not (tmp_path / "bad").exists()


def test_disk_full_during_training_names_the_file_and_leaves_no_partial_file(tmp_path, cache, tiny_paper_profile,
                                                                            audio_text_data, monkeypatch):
    import safetensors.torch

    def full_disk(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"\x00" * 10)  # half a file...
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    out = tmp_path / "run"
    res = runner.invoke(app, _train_args(audio_text_data, profile_json(tiny_paper_profile, tmp_path / "p.json"), out))
    assert res.exit_code == 1, res.output
    assert (f"error: {out / 'last'}: cannot write the checkpoint of epoch 1 (model.safetensors: No space left on "
            "device); there is no earlier checkpoint") in res.output
    assert "Traceback" not in res.output
    assert [p for p in out.rglob("*") if p.is_file()] == []  # ...removed


def test_manifest_path_leaving_its_root_is_refused(tmp_path, tiny_paper_profile):
    data = write_manifest(tmp_path / "m.csv", [{"id": "1", "audio": "../../etc/passwd", "label": "happy"}])
    res = runner.invoke(app, _train_args(data, profile_json(tiny_paper_profile, tmp_path / "p.json"), tmp_path / "r"))
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "m.csv: row 1 (id '1'): audio path '../../etc/passwd' leaves the manifest root" in res.output
    assert "--allow-outside-root" in res.output


# ----------------------------------------------------------------------------- evaluate
def test_evaluate_leaves_out_training_clips_and_reports_operating_points(run_profile, tmp_path, cache, trained_run):
    root = tmp_path / "data"
    rows = clip_rows(root, groups=4) + [dict(r, id=r["id"] + "-new", group="s9") for r in clip_rows(root, groups=1)]
    data = write_manifest(root / "m.csv", rows)
    res = runner.invoke(app, ["evaluate", str(trained_run), "--profile", str(run_profile),
                              "--data", str(data), "--out", str(tmp_path / "eval")])
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.stdout)
    assert metrics["n_excluded_seen"] == 16 and metrics["n_known"] == 4 and metrics["n_unknown"] == 10
    assert "left out 16 clip(s)" in res.stderr
    assert metrics["threshold_source"] == "train"
    assert [p["acceptance"] for p in metrics["at_acceptance"]] == [0.6, 0.61, 0.62, 0.63, 0.64, 0.65, 0.66, 0.9]
    for point in [metrics["at_threshold"], *metrics["at_acceptance"]]:
        assert set(point) >= {"threshold", "known_acceptance", "tpr", "fpr", "ccr"}
        assert 0 <= point["ccr"] <= point["tpr"] == point["known_acceptance"] <= 1
    assert "TPR" in res.stderr and "0.66 target" in res.stderr
    assert (tmp_path / "eval" / "evaluation.json").is_file() and (tmp_path / "eval" / "roc.png").is_file()


def test_evaluate_score_rescores_the_trained_head_fitted_on_the_runs_training_clips(run_profile,
                                                                                    tmp_path, cache, trained_run):
    """Issue 16: ``evaluate --score NAME``. The run's own score (ARPL: max logit) through --score gives
    the same metrics and threshold as without it; a fitted score (Mahalanobis) is fitted and thresholded
    on the run's training clips, so without them in DATA it is one clear line."""
    root = tmp_path / "data"
    rows = clip_rows(root, groups=4) + [dict(r, id=r["id"] + "-new", group="s9") for r in clip_rows(root, groups=1)]
    data = write_manifest(root / "m.csv", rows)
    runs = {}
    for score in (None, "max_logit", "mahalanobis"):
        extra = ["--score", score] if score else []
        res = runner.invoke(app, ["evaluate", str(trained_run), "--profile", str(run_profile),
                                  "--data", str(data), "--out", str(tmp_path / str(score)),
                                  *extra])
        assert res.exit_code == 0, res.output
        runs[score] = json.loads(res.stdout)
    own, same, maha = runs[None], runs["max_logit"], runs["mahalanobis"]
    assert own["score"] == same["score"] == "max_logit" and maha["score"] == "mahalanobis"
    assert same["auroc"] == pytest.approx(own["auroc"])
    assert same["threshold"] == pytest.approx(own["threshold"], rel=1e-5)
    assert maha["closed_acc"] == own["closed_acc"] and maha["threshold_source"] == "train"
    assert maha["threshold"] != own["threshold"]
    unseen = write_manifest(root / "unseen.csv", [dict(r, id=r["id"] + "-u") for r in rows])
    bad = runner.invoke(app, ["evaluate", str(trained_run), "--profile", str(run_profile),
                              "--data", str(unseen), "--score", "knn"])
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    assert "unseen.csv" in bad.output and "are not rows of this data" in bad.output


def test_evaluate_uses_the_test_rows_of_a_split_column_and_warns_about_near_labels(run_profile,
                                                                                   tmp_path, cache, trained_run):
    root = tmp_path / "data"
    rows = [dict(r, id=r["id"] + "-x", split="test" if r["group"] == "s3" else "train") for r in clip_rows(root)]
    rows.append({"id": "odd", "audio": rows[0]["audio"], "text": "hm", "label": "Happy", "group": "s3",
                 "split": "test"})
    res = runner.invoke(app, ["evaluate", str(trained_run), "--profile", str(run_profile),
                              "--data", str(write_manifest(root / "m.csv", rows)),
                              "--out", str(tmp_path / "eval")])
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.stdout)
    assert metrics["clips"] == "manifest split column: test rows"
    assert metrics["n_known"] == 4 and metrics["n_unknown"] == 3  # group s3: 2 happy, 2 sad, 2 angry + "Happy"
    assert "label 'Happy' differs from the known class 'happy' only in case or spaces" in res.stderr


def test_evaluate_out_not_writable_fails_first(run_profile, tmp_path, trained_run):
    (tmp_path / "f").write_text("x")
    res = runner.invoke(app, ["evaluate", str(trained_run), "--profile", str(run_profile),
                              "--data", "nope.csv", "--out", str(tmp_path / "f")])
    assert res.exit_code == 1 and f"error: {tmp_path / 'f'}: exists and is not a folder" in res.output


# ----------------------------------------------------------------------------- predict
def test_predict_scores_good_files_and_reports_bad_ones(run_profile, tmp_path, trained_run):
    folder = tmp_path / "clips"
    good = write_wav(folder / "good.wav", 440.0)
    (folder / "good.txt").write_text("i feel happy now", encoding="utf-8")
    (folder / "corrupt.wav").write_bytes(os.urandom(4096))
    (folder / "empty.wav").write_bytes(b"")
    write_wav(folder / "latin1.wav", 220.0)
    (folder / "latin1.txt").write_bytes("ich f\xfchle".encode("latin-1"))
    encode(folder / "mute.mp4", make_frames(), 10, None, 22050)  # a video without an audio track, no transcript
    short = write_wav(folder / "short.wav", 440.0, seconds=0.05)
    res = runner.invoke(app, ["predict", str(trained_run), "--profile", str(run_profile),
                              str(folder), str(tmp_path / "missing.wav")])
    assert res.exit_code == EXIT_SOME_FAILED, res.output
    records = {os.path.basename(r["file"]): r for r in _lines(res.stdout)}
    assert sorted(records) == ["corrupt.wav", "empty.wav", "good.wav", "latin1.wav", "missing.wav", "mute.mp4",
                               "short.wav"]
    assert records["good.wav"]["label"] in [*KNOWN, "unknown"]
    assert records["good.wav"]["modalities"] == ["audio", "text"]
    assert records["good.wav"]["file"] == str(good.resolve()) and "error" not in records["good.wav"]
    assert "corrupt.wav: unreadable or corrupt" in records["corrupt.wav"]["error"]
    assert "empty.wav" in records["empty.wav"]["error"]
    assert "latin1.txt: transcript is not valid UTF-8" in records["latin1.wav"]["error"]
    assert "missing.wav: no such file or folder" in records["missing.wav"]["error"]
    mute = records["mute.mp4"]["error"]
    assert "mute.mp4: has none of the modalities the model uses (audio, text)" in mute and "no transcript" in mute
    assert records["short.wav"]["file"] == str(short.resolve()) and records["short.wav"]["warnings"] == [
        "0.050 s is shorter than 0.25 s: too short for a reliable prediction", "no transcript: predicted from audio"]
    assert "error: 5 of 7 file(s) could not be used" in res.stderr
    assert "Traceback" not in res.output


def test_predict_warns_on_a_very_short_clip(tmp_path, trained_run, tiny_paper_profile):
    from openmer.inference import predict

    [record] = predict(trained_run, [write_wav(tmp_path / "blip.wav", 440.0, seconds=0.2)], text="hm",
                       profile=tiny_paper_profile)
    assert "error" not in record, record
    assert record["warnings"] == ["0.200 s is shorter than 0.25 s: too short for a reliable prediction"]


def test_predict_scores_a_long_clip_in_windows(run_profile, tmp_path, trained_run):
    long = write_wav(tmp_path / "interview.wav", 440.0, seconds=4.5)
    res = runner.invoke(app, ["predict", str(trained_run), "--profile", str(run_profile),
                              str(long), "--text", "i feel happy", "--window", "2",
                              "--hop", "1"])
    assert res.exit_code == 0, res.output
    [record] = _lines(res.stdout)
    assert record["window_s"] == 2.0 and record["hop_s"] == 1.0
    assert [(w["start_s"], w["end_s"]) for w in record["windows"]] == [(0.0, 2.0), (1.0, 3.0), (2.0, 4.0), (2.5, 4.5)]
    assert record["confidence"] == pytest.approx(sum(w["confidence"] for w in record["windows"]) / 4)
    assert record["label"] in [*KNOWN, "unknown"]
    assert sum(record["probabilities"].values()) == pytest.approx(1.0)


def test_a_silent_window_is_reported_and_the_others_are_scored(run_profile, tmp_path, trained_run):
    """A window of pure digital silence failed the whole file ("all silent"); now that window is
    ``silent`` without a score, the others are scored and the file's result averages them."""
    import soundfile as sf

    tone = sf.read(write_wav(tmp_path / "tone.wav", 440.0, seconds=4.5), dtype="float32")[0]
    tone[:32000] = 0.0  # the first 2 s: digital silence
    sf.write(tmp_path / "pause.wav", tone, 16000)
    res = runner.invoke(app, ["predict", str(trained_run), "--profile", str(run_profile), str(tmp_path / "pause.wav"),
                              "--text", "i feel happy", "--window", "2", "--hop", "1"])
    assert res.exit_code == 0, res.output
    [record] = _lines(res.stdout)
    assert "error" not in record, record
    windows = record["windows"]
    assert (windows[0]["start_s"], windows[0]["label"]) == (0.0, "silent")
    assert windows[0]["confidence"] is None and windows[0]["probabilities"] is None
    scored = windows[1:]
    assert all(w["label"] in [*KNOWN, "unknown"] and w["confidence"] is not None for w in scored)
    assert record["confidence"] == pytest.approx(sum(w["confidence"] for w in scored) / 3)
    assert record["warnings"] == ["1 of 4 windows is digital silence (0.0-2.0 s): not scored"]


def test_a_file_whose_every_window_is_silent_is_an_error(run_profile, tmp_path, trained_run):
    import numpy as np
    import soundfile as sf

    sf.write(tmp_path / "quiet.wav", np.zeros(72000, np.float32), 16000)
    res = runner.invoke(app, ["predict", str(trained_run), "--profile", str(run_profile), str(tmp_path / "quiet.wav"),
                              "--text", "hm", "--window", "2", "--hop", "1"])
    [record] = _lines(res.stdout)
    assert "quiet.wav" in record["error"] and "all silent" in record["error"], record


def test_predict_reports_progress_over_the_windows_of_a_long_file(run_profile, tmp_path, trained_run):
    """Issue 24 (WEAK): a long file printed nothing until its end; now a line per group of windows
    (plain lines when stdout is not a terminal, as here), the JSON line still alone on stdout."""
    long = write_wav(tmp_path / "session.wav", 440.0, seconds=4.5)
    res = runner.invoke(app, ["predict", str(trained_run), "--profile", str(run_profile), str(long),
                              "--text", "i feel happy", "--window", "2", "--hop", "1"])
    assert res.exit_code == 0, res.output
    assert "windows" in res.stderr and "4/4" in res.stderr, res.stderr
    [record] = _lines(res.stdout)
    assert len(record["windows"]) == 4


def test_predict_text_only_clip_for_an_audio_model_uses_what_is_there(run_profile, tmp_path, trained_run):
    """A video without audio but with a transcript: predicted from the text, said in "warnings"."""
    encode(tmp_path / "mute.mp4", make_frames(), 10, None, 22050)
    res = runner.invoke(app, ["predict", str(trained_run), "--profile", str(run_profile),
                              str(tmp_path / "mute.mp4"), "--text", "so happy"])
    assert res.exit_code == 0, res.output
    [record] = _lines(res.stdout)
    assert record["modalities"] == ["text"] and record["warnings"] == ["no audio: predicted from text"]


@pytest.mark.parametrize(("damage", "match"), [
    (lambda r: (r / "model.safetensors").write_bytes(b"oops"), "model.safetensors: not a readable safetensors file"),
    (lambda r: (r / "run.json").write_text("{"), "run.json: not valid JSON"),
])
def test_predict_on_a_damaged_run_is_one_line(run_profile, tmp_path, trained_run, damage, match):
    run = copy_run(trained_run, tmp_path / "run")
    damage(run)
    res = runner.invoke(app, ["predict", str(run), "--profile", str(run_profile), str(write_wav(tmp_path / "a.wav"))])
    assert res.exit_code == 1 and f"error: {run}" in res.output and match in res.output
    assert "Traceback" not in res.output and [ln for ln in res.output.splitlines() if "error" in ln] == \
        [ln for ln in res.output.splitlines() if ln.startswith("error: ")] and res.output.count("error: ") == 1


# ----------------------------------------------------------------------------- --models-dir
def test_light_profile_from_a_models_dir_mirror(tmp_path, cache, monkeypatch, tiny_light_models, audio_text_data):
    """Issue 25: `--profile light --models-dir MIRROR` trains with the mirror's models; run.json records
    hub ids, not folders; predict finds them through the same option; without it (and offline) the
    error names the ids, the folders tried and the environment variable."""
    from openmer.backbones.resolve import use_models_dir
    from openmer.runs import read_run_info

    monkeypatch.setenv("SHARED_DIR", str(tmp_path / "no-shared"))
    monkeypatch.delenv("OPENMER_MODELS_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    mirror = str(tiny_light_models["mirror"])
    try:
        args = ["train", "--data", str(audio_text_data), "--known", ",".join(KNOWN), "--method", "arpl",
                "--profile", "light", "--out", str(tmp_path / "run"), "--epochs", "1", "--batch-size", "4"]
        res = runner.invoke(app, [*args, "--models-dir", mirror])
        assert res.exit_code == 0, res.output
        profile = read_run_info(tmp_path / "run").profile
        assert profile["audio"]["name_or_path"] == "openai/whisper-base"
        assert profile["text"]["name_or_path"] == "sentence-transformers/all-MiniLM-L6-v2"

        wav = write_wav(tmp_path / "clip.wav")
        res = runner.invoke(app, ["predict", str(tmp_path / "run"), str(wav), "--text", "a happy voice",
                                  "--models-dir", mirror])
        assert res.exit_code == 0, res.output
        assert "label" in _lines(res.stdout)[0]

        res = runner.invoke(app, [*args[:-4], "--out", str(tmp_path / "run2"), "--epochs", "1"])
        assert res.exit_code == 1 and "Traceback" not in res.output
        line = " ".join(res.output.split())
        assert "openai/whisper-base" in line or "sentence-transformers/all-MiniLM-L6-v2" in line
        assert "OPENMER_MODELS_DIR" in line and "--models-dir" in line

        res = runner.invoke(app, [*args, "--models-dir", str(tmp_path / "nowhere")])
        assert res.exit_code == 2 and "--models-dir" in res.output and "nowhere" in res.output
    finally:
        use_models_dir(None)


# ----------------------------------------------------------------------------- hostile run folders (issue 24)
def _edit_run(run, change):
    data = json.loads((run / "run.json").read_text())
    change(data)
    (run / "run.json").write_text(json.dumps(data))  # Python's json writes NaN / Infinity as given


def _refuse_constant(token):
    raise ValueError(f"not JSON: {token}")


def _one_error_line(res, *needles):
    """The command failed with one ``error:`` line that holds every needle, no traceback, and its
    stdout (if any) is strict JSON."""
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    errors = [ln for ln in res.output.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1, res.output
    text = " ".join(res.stderr.split())  # rich wraps long lines
    for needle in needles:
        assert needle in text, (needle, text)
    for line in res.stdout.splitlines():
        json.loads(line, parse_constant=_refuse_constant)


class _Planted:
    """A pickle that creates ``marker`` when unpickled (what a planted pytorch_model.bin could do)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


@pytest.mark.parametrize("where", ["${SHARED_DIR}/../../../elsewhere", "absolute"])
@pytest.mark.parametrize("profile_name", ["paper", "not-registered"])
def test_a_run_folder_cannot_make_predict_load_encoder_files_it_names(run_profile, tmp_path, trained_run,
                                                                      tiny_paper_models, monkeypatch, where,
                                                                      profile_name):
    """Issue 24.1: run.json naming an encoder folder elsewhere (above the shared folder, or an
    absolute path) holding a planted pytorch_model.bin. Encoders load only from the run's profile
    (a registered one, or the one given with --profile), never from a path in the run folder: one
    line naming run.json and the rule, and nothing from that folder is read."""
    import pickle
    import shutil

    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(tiny_paper_models["wav2vec2_dir"], elsewhere)
    for f in elsewhere.glob("*.safetensors"):
        f.unlink()
    marker = tmp_path / "planted-code-ran"
    (elsewhere / "pytorch_model.bin").write_bytes(pickle.dumps(_Planted(marker)))
    monkeypatch.setenv("SHARED_DIR", str(tmp_path / "a" / "b" / "c"))
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    run = copy_run(trained_run, tmp_path / "run")
    path = str(elsewhere) if where == "absolute" else where

    def plant(d):
        d["profile"].update(name=profile_name)
        d["profile"]["audio"].update(name_or_path=path)

    _edit_run(run, plant)
    wav = write_wav(tmp_path / "a.wav")
    for extra in ([], ["--profile", str(run_profile)]):
        res = runner.invoke(app, ["predict", str(run), *extra, str(wav)])
        _one_error_line(res, f"{run / 'run.json'}:", "never from a path in the run folder")
    assert not marker.exists()


def test_reversed_known_classes_in_run_json_are_refused(run_profile, tmp_path, trained_run):
    """Issue 24.2: known_classes reversed in run.json would silently permute the labels;
    model.safetensors' header records the classes it was trained with, and a mismatch is refused."""
    run = copy_run(trained_run, tmp_path / "run")
    _edit_run(run, lambda d: d.update(known_classes=d["known_classes"][::-1]))
    res = runner.invoke(app, ["predict", str(run), "--profile", str(run_profile), str(write_wav(tmp_path / "a.wav"))])
    _one_error_line(res, "model.safetensors: was trained with known classes (in class-index order) "
                         '["happy", "sad"] but', 'run.json says ["sad", "happy"]')
    _edit_run(run, lambda d: d.update(known_classes=d["known_classes"][::-1]))  # back: the header agrees again
    _edit_run(run, lambda d: d["method_config"].update(weight_pl=0.5))
    res = runner.invoke(app, ["predict", str(run), "--profile", str(run_profile), str(write_wav(tmp_path / "a.wav"))])
    _one_error_line(res, "model.safetensors: was trained with method config (SHA-256)")


@pytest.mark.parametrize(("change", "match"), [
    (lambda d: d["threshold"].update(value=float("nan")), "run.json: not valid JSON (NaN is not a JSON number"),
    (lambda d: d["threshold"].update(value=float("inf")), "run.json: not valid JSON (Infinity is not a JSON number"),
    (lambda d: d["threshold"].update(value="1e999"), "run.json: the number 1e999 is out of range"),
    (lambda d: d["threshold"]["at_acceptance"][0].update(threshold=float("-inf")), "-Infinity is not a JSON number"),
    (lambda d: d["method_config"].update(dropout=float("nan")), "run.json: not valid JSON (NaN is not"),
    (lambda d: d["threshold"].update(acceptance=1.5), "threshold.acceptance: input should be less than or equal to 1"),
    (lambda d: d.update(n_train=-3), "n_train: input should be greater than or equal to 0"),
])
def test_every_number_of_run_json_is_checked(run_profile, tmp_path, trained_run, change, match):
    """Issue 24.3: a NaN threshold made every clip "unknown" and printed a non-JSON line. Every
    number read from run.json is checked (finite, in range), and nothing printed is non-JSON."""
    run = copy_run(trained_run, tmp_path / "run")
    _edit_run(run, change)
    if "1e999" in (run / "run.json").read_text():
        (run / "run.json").write_text((run / "run.json").read_text().replace('"1e999"', "1e999"))
    res = runner.invoke(app, ["predict", str(run), "--profile", str(run_profile), str(write_wav(tmp_path / "a.wav"))])
    _one_error_line(res, match)


def test_non_finite_weights_are_refused_naming_the_tensor(run_profile, tmp_path, trained_run):
    """Issue 24 (WEAK): NaN or bit-flipped weights were blamed on the audio file; they are refused at
    load, naming the file and the tensor."""
    from safetensors.torch import save_file

    from openmer.files import read_safetensors

    run = copy_run(trained_run, tmp_path / "run")
    tensors, meta = read_safetensors(run / "model.safetensors")
    name = min(k for k, t in tensors.items() if t.is_floating_point() and t.numel() > 1)
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[1] = float("nan")
    save_file(tensors, str(run / "model.safetensors"), metadata=meta)
    res = runner.invoke(app, ["predict", str(run), "--profile", str(run_profile), str(write_wav(tmp_path / "a.wav"))])
    _one_error_line(res, f"model.safetensors: tensor '{name}' holds 1 non-finite value(s)")


def test_printed_and_written_json_is_strict(run_profile, tmp_path, trained_run):
    """What predict prints and evaluate writes parses as strict JSON (no NaN)."""
    from openmer.files import json_line

    assert json_line({"a": float("nan"), "b": [float("inf"), 1.5]}) == '{"a": null, "b": [null, 1.5]}'
    res = runner.invoke(app, ["predict", str(trained_run), "--profile", str(run_profile),
                              str(write_wav(tmp_path / "a.wav")), "--text", "i feel happy"])
    assert res.exit_code == 0, res.output
    [record] = [json.loads(ln, parse_constant=_refuse_constant) for ln in res.stdout.splitlines()]
    assert record["label"] in [*KNOWN, "unknown"]


def test_a_run_of_an_unregistered_profile_loads_its_encoders_by_hub_id_only(tmp_path, cache, monkeypatch,
                                                                           tiny_light_models, audio_text_data):
    """A run whose profile is neither registered nor given loads when every encoder is named by hub
    id (from the model mirrors or the hub, never a folder); a folder in its place is refused in one
    line naming run.json and the rule."""
    from openmer.backbones.resolve import use_models_dir

    monkeypatch.setenv("SHARED_DIR", str(tmp_path / "no-shared"))
    monkeypatch.delenv("OPENMER_MODELS_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    mirror = str(tiny_light_models["mirror"])
    run = tmp_path / "run"
    wav = write_wav(tmp_path / "clip.wav")
    try:
        res = runner.invoke(app, ["train", "--data", str(audio_text_data), "--known", ",".join(KNOWN), "--method",
                                  "arpl", "--profile", "light", "--out", str(run), "--epochs", "1", "--batch-size", "4",
                                  "--models-dir", mirror])
        assert res.exit_code == 0, res.output
        _edit_run(run, lambda d: d["profile"].update(name="my-light"))
        res = runner.invoke(app, ["predict", str(run), str(wav), "--text", "a happy voice", "--models-dir", mirror])
        assert res.exit_code == 0, res.output
        _edit_run(run, lambda d: d["profile"]["audio"].update(name_or_path=str(tiny_light_models["whisper_dir"])))
        res = runner.invoke(app, ["predict", str(run), str(wav), "--text", "a happy voice", "--models-dir", mirror])
        _one_error_line(res, f"{run / 'run.json'}: its audio encoder is named", "'my-light' is not a profile",
                        "never from a path in the run folder")
    finally:
        use_models_dir(None)
