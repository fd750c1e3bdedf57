"""`openmer discover` and `openmer enrol` on a tiny trained run (ARPL on the tiny paper profile)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from openmer.cli.app import app
from openmer.data.manifest import Manifest
from openmer.discovery import clip_manifest, discover, write_discovery
from openmer.discovery.enrol import enrol
from openmer.discovery.sources import cluster_manifest
from openmer.errors import ConfigError, NotSupportedError
from openmer.inference import load_run, predict
from openmer.runs import read_run_info
from tests.helpers.run_folders import KNOWN

runner = CliRunner()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENMER_CACHE", str(tmp_path / "cache"))


def _wavs(data, label=None, groups=None):
    m = Manifest.read(data)
    return [m.path(s, "audio") for s in m if (label is None or s.label == label)
            and (groups is None or s.group in groups)]


def test_discover_writes_clusters_names_and_map(trained_run, audio_text_data, tmp_path):
    run = load_run(trained_run)
    manifest, skipped = clip_manifest([audio_text_data.parent / "wav"])
    assert not skipped and len(manifest) == 24
    result = discover(run, manifest, min_size=2, k_max=4)
    assert result.rejected.sum() >= 1
    files = write_discovery(result, tmp_path / "out", title="tiny")
    assert {f.name for f in files} == {"clusters.json", "clusters.md", "assignments.csv", "map.png"}
    body = json.loads((tmp_path / "out" / "clusters.json").read_text())
    assert body["n_clips"] == 24 and body["n_rejected"] == int(result.rejected.sum())
    assert sum(c["size"] for c in body["clusters"]) + body["n_unclustered"] == body["n_rejected"]
    for c in body["clusters"]:
        assert c["size"] >= 2 and len(c["members"]) == c["size"]
        assert c["medoid"]["id"] in {m["id"] for m in c["members"]}
        assert len(c["names"]) == 3  # ARPL has no text alignment: a ridge map fitted on its training clips
        assert all(n["word"] not in KNOWN for n in c["names"])
    assert "ridge" in body["naming"]
    rows = (tmp_path / "out" / "assignments.csv").read_text().splitlines()
    assert len(rows) == 25
    if body["clusters"]:  # a cluster's members read back as examples
        assert len(cluster_manifest(f"{tmp_path / 'out'}#0")) == body["clusters"][0]["size"]


def test_enrol_adds_a_class_and_keeps_the_old_predictions(trained_run, audio_text_data, tmp_path):
    run = load_run(trained_run)
    examples, _ = clip_manifest(_wavs(audio_text_data, "angry", {"s0", "s1"}))
    held_known, _ = clip_manifest([p for lab in KNOWN for p in _wavs(audio_text_data, lab, {"s2", "s3"})])
    held_new, _ = clip_manifest(_wavs(audio_text_data, "angry", {"s2", "s3"}))
    from openmer.discovery.core import run_scores_and_features

    before = run_scores_and_features(run, held_known)[0].prediction.numpy()
    result = enrol(run, "angry", examples, tmp_path / "new", steps=150, lr=0.05)
    assert result.method.known_classes == [*KNOWN, "angry"]
    new = load_run(tmp_path / "new")
    assert new.known_classes == [*KNOWN, "angry"]
    info = read_run_info(tmp_path / "new")
    assert info.enrolments[0]["class"] == "angry" and info.enrolments[0]["n_examples"] == 4
    assert info.samples["enrolled"] == examples.ids and info.threshold.source == "train"
    # the examples and the held-out clips of the new class are predicted as it
    ex_pred = run_scores_and_features(new, examples)[0].prediction.numpy()
    assert (ex_pred == 2).all()
    new_pred = run_scores_and_features(new, held_new)[0].prediction.numpy()
    assert (new_pred == 2).mean() >= 0.75
    # the old classes' held-out clips keep their prediction: bound, at most 1 in 8 changes
    after = run_scores_and_features(new, held_known)[0].prediction.numpy()
    assert (after != before).mean() <= 0.125
    # the enrolled folder loads and predicts like any other
    records = predict(tmp_path / "new", [held_new.samples[0].audio])
    assert records[0]["label"] in {*KNOWN, "angry", "unknown"} and "angry" in records[0]["probabilities"]


def test_enrol_refuses_a_known_class_and_an_unsupported_method(trained_run, audio_text_data, tmp_path):
    run = load_run(trained_run)
    examples, _ = clip_manifest(_wavs(audio_text_data, "angry", {"s0"}))
    with pytest.raises(ConfigError, match="already a known class"):
        enrol(run, "happy", examples, None)
    run.method.class_parameters = lambda: None  # type: ignore[method-assign]
    with pytest.raises(NotSupportedError, match="cannot take a new class"):
        enrol(run, "angry", examples, None)


def test_cli_discover_and_enrol_from_a_cluster(trained_run, audio_text_data, tmp_path):
    out = tmp_path / "disc"
    r = runner.invoke(app, ["discover", str(trained_run), str(audio_text_data.parent / "wav"), "--out", str(out),
                            "--min-size", "2", "--no-map"])
    assert r.exit_code == 0, r.output
    assert (out / "clusters.json").is_file() and not (out / "map.png").exists()
    body = json.loads((out / "clusters.json").read_text())
    if body["clusters"]:
        r = runner.invoke(app, ["enrol", str(trained_run), f"{out}#0", "--class", "novel", "--out",
                                str(tmp_path / "new"), "--steps", "20"])
        assert r.exit_code == 0, r.output
        assert load_run(tmp_path / "new").known_classes[-1] == "novel"
    r = runner.invoke(app, ["enrol", str(trained_run), f"{out}#99", "--class", "x", "--out", str(tmp_path / "n2")])
    assert r.exit_code == 1 and "no cluster 99" in r.output
    r = runner.invoke(app, ["discover", str(trained_run), str(tmp_path / "nothing"), "--out", str(out)])
    assert r.exit_code == 1 and "no clip" in r.output
