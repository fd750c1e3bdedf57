"""`openmer starter` at a tiny budget: both corpora, the shared vocabulary, held-out speakers, a card, a prediction."""

from __future__ import annotations

import gzip
import json

import pytest
import yaml
from typer.testing import CliRunner

from openmer.cli.app import app
from openmer.datasets.vocabulary import common_classes
from openmer.model_card import CARD_FILE, read_card_notes
from openmer.starter import CORPORA, KNOWN, METHOD, build_starter, starter_manifest
from tests.conftest import REPO_ROOT, requires_shared_path

needs_corpora = [requires_shared_path("data/emodb"), requires_shared_path("data/ravdess-speech")]


def test_known_classes_are_shared_by_both_corpora_and_leave_shared_unknowns():
    shared = common_classes(*CORPORA)
    assert set(KNOWN) < set(shared)
    assert set(shared) - set(KNOWN) == {"disgust", "fear"}  # the card's shared-vocabulary unknowns


def test_the_method_is_the_one_the_speech_benchmarks_rank_first_by_oscr():
    def best(table: str, modalities: str) -> str:
        folder = REPO_ROOT / "docs" / "results" / table
        raw = (folder / "results.json").read_bytes() if (folder / "results.json").is_file() else gzip.decompress(
            (folder / "results.json.gz").read_bytes())
        records = json.loads(raw)["records"]
        rows = [r for r in records if r["modalities"] == modalities and "[" not in r["method"]]
        levels = sorted({r["level"] for r in rows})
        mean = {m: sum(sum(r["oscr"] for r in rows if r["method"] == m and r["level"] == lv)
                       / sum(1 for r in rows if r["method"] == m and r["level"] == lv) for lv in levels) / len(levels)
                for m in {r["method"] for r in rows}}
        return max(mean, key=mean.__getitem__)

    assert best("emodb-dropout", "text+audio") == METHOD
    assert best("ravdess-dropout", "audio_wav") == METHOD


@pytest.mark.timeout(300)
@needs_corpora[0]
@needs_corpora[1]
def test_tiny_starter_trains_scores_both_corpora_and_predicts(tmp_path, monkeypatch, tiny_light_models, shared):
    monkeypatch.setenv("OPENMER_CACHE", str(tmp_path / "cache"))
    man = starter_manifest(max_per_class=1)
    assert {s.id.split("/")[0] for s in man} == set(CORPORA) and {s.split for s in man} == {"train", "val", "test"}
    assert "angry" not in man.classes and "anger" in man.classes  # the shared vocabulary
    for corpus in CORPORA:  # speakers never cross parts
        parts = {p: {s.group for s in man if s.split == p and s.id.startswith(corpus)}
                 for p in ("train", "val", "test")}
        assert not (parts["train"] & parts["test"]) and not (parts["val"] & parts["test"])

    out = tmp_path / "starter"
    profile = tiny_light_models["profile"]  # tiny random Whisper: seconds
    result = build_starter(out, profile=profile, max_per_class=1, epochs=1, cache_dir=tmp_path / "cache")
    info = json.loads((out / "run.json").read_text())
    assert info["known_classes"] == list(KNOWN) and info["method"] == METHOD and info["preset"] == "cpu"
    assert info["modalities"] == ["audio"]
    rows = read_card_notes(out).rows
    assert [(r.tested_on, r.shift) for r in rows] == [
        ("emodb", "in-corpus"), ("ravdess-speech", "in-corpus"), ("ravdess-speech", "cross-corpus"),
        ("emodb", "cross-corpus")]
    assert rows == result["rows"]
    assert {"fear", "disgust"} <= set(rows[0].unknown_classes) and "boredom" in rows[0].unknown_classes
    text = (out / CARD_FILE).read_text()
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["datasets"] == list(CORPORA) and meta["license"] == "cc-by-nc-sa-4.0"
    assert "docs/results/emodb-dropout/results.md" in text and rows[1].oscr.text() in text

    # a held-out actor's clip that the tiny budget did not score either
    seen = {s.audio for s in starter_manifest(max_per_class=1)}
    clip = next(p for p in sorted((shared / "data" / "ravdess-speech" / "Actor_24").iterdir()) if str(p) not in seen)
    profile.to_json(tmp_path / "profile.json")  # a run's encoders load from a profile, never from its folder
    res = CliRunner().invoke(app, ["predict", str(out), str(clip), "--profile", str(tmp_path / "profile.json")])
    assert res.exit_code == 0, res.output
    record = json.loads(res.stdout.strip().splitlines()[-1])
    assert record["label"] in [*KNOWN, "unknown"]


def test_starter_refuses_a_folder_holding_a_run(tmp_path):
    (tmp_path / "run.json").write_text("{}")
    res = CliRunner().invoke(app, ["starter", "--out", str(tmp_path)])
    assert res.exit_code == 1 and "already holds a run" in res.output
