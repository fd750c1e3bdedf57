"""``openmer benchmark cross-speech``: its protocol, its splits per test set, and a tiny end-to-end run.

The end-to-end tests use two tiny generated corpora under the real corpora's names and speaker
ids (the shipped cross-speech protocol names them) and toy encoders; the real-data checks read
../shared and are skipped without it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from openmer.benchmarks import cross_speech, media
from openmer.benchmarks.cross_speech import (
    CrossSpeechConfig,
    corpus_test_split,
    cross_speech_config,
    direction_protocol,
    split_by_test_set,
)
from openmer.data.manifest import Manifest, Sample
from openmer.datasets.vocabulary import LABEL_VOCABULARY, shared_classes
from openmer.protocol import load_protocol, open_set_subsets
from openmer.reporting.scores import RunScores
from openmer.training import TrainConfig
from tests.conftest import requires_shared_path
from tests.helpers.tiny_media import stub_encoders

PROTOCOL = load_protocol("cross-speech")
DIRECTIONS = [("emodb", "ravdess-speech"), ("ravdess-speech", "emodb")]
ALL_LEVELS = list(PROTOCOL.levels)


def _corpus(group: str) -> str:
    return group.split("/")[0]


# ------------------------------------------------------------------ protocol of a direction
@pytest.mark.parametrize(("source", "target"), DIRECTIONS)
def test_no_speaker_of_the_test_corpus_is_trained_or_selected_on(source, target):
    proto = direction_protocol(PROTOCOL, source, target, ALL_LEVELS, 4)
    p = proto.partition
    assert {_corpus(g) for g in p.train_groups + p.val_groups} == {source}
    assert not set(p.train_groups + p.val_groups) & {g for g in PROTOCOL.partition.groups if _corpus(g) == target}
    # the test part is both corpora's held-out speakers, and only those
    assert set(p.test_groups) == set(PROTOCOL.partition.test_groups)
    assert set(p.train_groups) == {g for g in PROTOCOL.partition.train_groups if _corpus(g) == source}


@pytest.mark.parametrize(("source", "target"), DIRECTIONS)
def test_every_split_is_the_stored_known_set(source, target):
    proto = direction_protocol(PROTOCOL, source, target, ALL_LEVELS, 4)
    universe = set(shared_classes(source)) | set(shared_classes(target))
    assert set(proto.classes) == universe and len(proto.classes) == 9
    stored = [s for lv in ALL_LEVELS for s in PROTOCOL.levels[lv]]
    mine = proto.splits()
    assert [s.known_classes for s in mine] == [s.known_classes for s in stored]
    for s in mine:
        assert set(s.unknown_classes) == universe - set(s.known_classes)


@pytest.mark.parametrize("corpus", ["emodb", "ravdess-speech"])
def test_unknown_set_of_each_test_set_is_exactly_the_classes_outside_the_known_set(corpus):
    for split in PROTOCOL.splits():
        test = corpus_test_split(split.known_classes, corpus, split.index)
        assert test.known_classes == split.known_classes
        assert set(test.unknown_classes) == set(shared_classes(corpus)) - set(split.known_classes)
        assert set(test.classes) == set(LABEL_VOCABULARY[corpus].values())
    extra = {"emodb": {"boredom"}, "ravdess-speech": {"calm", "surprise"}}[corpus]
    assert corpus_test_split(("anger", "fear"), corpus, 0).n_unknown == 4 + len(extra)


def test_levels_and_splits_follow_the_config():
    proto = direction_protocol(PROTOCOL, "emodb", "ravdess-speech", ["O(2:4)"], 2)
    assert [s.n_known for s in proto.splits()] == [2, 2]
    with pytest.raises(Exception, match="not in the cross-speech protocol"):
        direction_protocol(PROTOCOL, "emodb", "ravdess-speech", ["O(6:2)"], 1)


def test_split_by_test_set_gives_one_record_per_corpus():
    groups = ["emodb/09", "ravdess-speech/21", "emodb/12", "ravdess-speech/22", "ravdess-speech/21", "emodb/09"]
    names = ["anger", "calm", "boredom", "anger", "fear", "sadness"]
    known = ("anger", "sadness")
    run = RunScores("msp", ("text", "audio"), "O(2:7)", 0.5, 1, list(known), ["x"],
                    confidence=np.array([0.9, 0.2, 0.3, 0.8, 0.1, 0.7]), prediction=np.array([0, 0, 1, 0, 1, 1]),
                    labels=np.array([0, -1, -1, 0, -1, 1]), class_names=names, features=np.eye(6),
                    threshold=0.5, threshold_confidence=np.array([0.6, 0.4, 0.9]), threshold_source="val")
    (rec_in, run_in), (rec_x, run_x) = split_by_test_set(run, groups, "O(2:4)", "emodb")
    # both test sets keep the threshold chosen on the training corpus's validation speakers (Figs. 10/11)
    assert run_x.threshold == run_in.threshold == rec_x["threshold"] == 0.5 and run_x.threshold_source == "val"
    np.testing.assert_array_equal(run_x.threshold_confidence, [0.6, 0.4, 0.9])
    assert (rec_in["train_set"], rec_in["test_set"], rec_in["shift"]) == ("emodb", "emodb", "in-corpus")
    assert (rec_x["test_set"], rec_x["shift"]) == ("ravdess-speech", "cross-corpus")
    assert rec_in["level"] == rec_x["level"] == "O(2:4)" == run_in.level
    assert rec_in["test_level"] == "O(2:5)" and rec_x["test_level"] == "O(2:6)"  # the test set's own unknowns
    assert run_in.class_names == ["anger", "boredom", "sadness"] and run_x.class_names == ["calm", "anger", "fear"]
    assert run_in.features.shape == (3, 6) and rec_in["auroc"] == 1.0 and rec_x["auroc"] == 1.0
    assert run_x.unknown_classes == [c for c in shared_classes("ravdess-speech") if c not in known]
    assert run_x.transfer == "emodb -> ravdess-speech" and run_x.file_stem != run_in.file_stem
    with pytest.raises(ValueError, match="5 test groups for 6 scored samples"):
        split_by_test_set(run, groups[:5], "O(2:4)", "emodb")


def test_shift_rows_pair_in_corpus_with_cross_corpus():
    def rec(method, level, test_level, test_set, split, auroc):
        return {"method": method, "modalities": "text+audio", "level": level, "openness": 0.2, "split": split,
                "auroc": auroc, "oscr": auroc / 2, "aupr_in": 0.5, "aupr_out": 0.5, "closed_acc": 0.5,
                "macro_f1": 0.5, "fpr95": 0.5,
                "train_set": "emodb", "test_set": test_set, "test_level": test_level}

    records = [rec(m, lv, tl, t, s, a + 0.1 * s)
               for lv, (tl_in, tl_x) in (("O(5:1)", ("O(5:2)", "O(5:3)")), ("O(2:4)", ("O(2:5)", "O(2:6)")))
               for m in ("msp", "hcep") for s in (0, 1)
               for t, tl, a in (("emodb", tl_in, 0.7), ("ravdess-speech", tl_x, 0.5))]
    rows = cross_speech.shift_rows(records)
    assert [(r["method"], r["level"]) for r in rows] == [("msp", "O(5:1)"), ("msp", "O(2:4)"),
                                                         ("hcep", "O(5:1)"), ("hcep", "O(2:4)")]
    first = rows[0]
    assert (first["in_level"], first["cross_level"], first["test_set"]) == ("O(5:2)", "O(5:3)", "ravdess-speech")
    assert first["in_auroc"] == pytest.approx(0.75) and first["cross_auroc"] == pytest.approx(0.55)
    assert first["cross_oscr"] == pytest.approx(0.275)
    (_title, lines), _ = cross_speech.report_sections(records, ["emodb", "ravdess-speech"])
    text = "\n".join(lines)
    assert ("| msp | text+audio | emodb -> ravdess-speech | O(5:1), O(2:4) | 75.0 / 37.5 | 55.0 / 27.5 "
            "| -20.0 | -10.0 |") in text
    assert ("| hcep | text+audio | emodb -> ravdess-speech | O(2:4) | O(2:5): 75.0 / 37.5 "
            "| O(2:6): 55.0 / 27.5 |") in text


def test_preset_takes_hcep_training_from_the_emodb_preset():
    for quick in (False, True):
        cfg, emodb = cross_speech_config(quick=quick), media.emodb_config(quick=quick)
        assert cfg.hcep_train == emodb.hcep_train and cfg.hcep_options == emodb.hcep_options
        assert cfg.baseline_train == emodb.baseline_train
        assert cfg.directions == tuple(DIRECTIONS) and "hcep" in cfg.methods
    from openmer.methods import METHODS

    assert set(cross_speech_config().methods) == set(METHODS)
    assert cross_speech_config(quick=True).levels == ("O(2:4)",)
    with pytest.raises(ValueError, match="need two different corpora"):
        CrossSpeechConfig.model_validate({**cross_speech_config().model_dump(), "directions": [("emodb", "emodb")]})


# ------------------------------------------------------------------ real data
@requires_shared_path("data/ravdess-speech")
@requires_shared_path("data/emodb")
@pytest.mark.parametrize(("source", "target"), DIRECTIONS)
def test_real_corpora_no_test_speaker_in_training(source, target):
    manifest = cross_speech.load_cross_speech()
    assert len(manifest) == 535 + 1440 and len(set(manifest.ids)) == len(manifest)
    assert set(manifest.groups) == set(PROTOCOL.partition.groups)
    proto = direction_protocol(PROTOCOL, source, target, ALL_LEVELS, 4)
    keep = set(proto.partition.groups)
    sub = manifest.subset([i for i, s in enumerate(manifest) if s.group in keep])
    for split in proto.splits():
        out = open_set_subsets(sub.labels, sub.groups, split, proto.partition)
        trained = {sub[i].group for i in np.concatenate([out["train"], out["val"]])}
        assert {_corpus(g) for g in trained} == {source}
        for corpus in (source, target):
            test = [i for i in out["test"] if _corpus(sub[i].group) == corpus]
            unknown = {sub[i].label for i in test if out["labels"][i] < 0}
            assert unknown == set(shared_classes(corpus)) - set(split.known_classes), (corpus, split.known_classes)
            assert {sub[i].label for i in test if out["labels"][i] >= 0} == set(split.known_classes)


# ------------------------------------------------------------------ tiny end-to-end
SPEAKERS = {"emodb": ("10", "03", "09"), "ravdess-speech": ("01", "17", "21")}  # one train, val, test speaker


def _tiny_corpus(root, corpus: str) -> Manifest:
    t = np.arange(800) / 16000
    samples = []
    labels = list(LABEL_VOCABULARY[corpus])
    for c, label in enumerate(labels):
        for g in SPEAKERS[corpus]:
            for r in range(2):
                name = f"{corpus}_{label}_{g}_{r}.wav"
                sf.write(root / name, 0.3 * np.sin(2 * np.pi * (180 + 90 * c + 11 * r) * t), 16000)
                samples.append(Sample(id=name[:-4], label=label, group=g, audio=name, text=f"word{c} {label}"))
    return Manifest(samples, root=root, name=corpus)


def tiny_config(*, seed: int = 0, quick: bool = False) -> CrossSpeechConfig:
    return CrossSpeechConfig(
        dataset="cross-speech", profile="toy", modalities=("text", "audio"), methods=("msp", "hcep"),
        levels=("O(2:4)",), n_splits=1, seed=seed,
        hcep_train=TrainConfig(epochs=1, optimizer="adam", lr=1e-2, batch_size=16, seed=seed),
        baseline_train=TrainConfig(epochs=2, optimizer="adam", lr=1e-3, batch_size=16, seed=seed),
        hcep_options={"cuep_audio_samples": 400}, preset_note="tiny test preset", posthoc=(),
    )


@pytest.fixture
def tiny_corpora(tmp_path, monkeypatch):
    for corpus in ("emodb", "ravdess-speech"):
        (tmp_path / corpus).mkdir()
        monkeypatch.setitem(cross_speech.CORPORA, corpus, lambda c=corpus: _tiny_corpus(tmp_path / c, c))
    stub_encoders(monkeypatch)
    monkeypatch.setenv("OPENMER_CACHE", str(tmp_path / "cache"))


def test_cross_speech_command_end_to_end(tiny_corpora, tmp_path, monkeypatch):
    from openmer.cli.app import app

    monkeypatch.setattr(cross_speech, "cross_speech_config", tiny_config)
    standard = []  # the per-test-set ROC/OSCR/histogram figures are tested in tests/reporting (slow to draw)
    monkeypatch.setattr("openmer.reporting.figures.write_standard_figures",
                        lambda out, runs: standard.extend(runs) or [])
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["benchmark", "cross-speech", "--quick", "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "results.json").read_text())
    records = data["records"]
    # 2 methods x 1 level x 1 split x 2 directions x 2 test sets
    assert len(records) == 8
    seen = {(r["method"], r["level"], r["train_set"], r["test_set"]) for r in records}
    assert len(seen) == 8 and {r["level"] for r in records} == {"O(2:4)"}
    for r in records:
        k = int(r["level"][2])
        n_classes = len(LABEL_VOCABULARY[r["test_set"]])
        assert r["test_level"] == f"O({k}:{n_classes - k})"
        assert r["shift"] == ("in-corpus" if r["train_set"] == r["test_set"] else "cross-corpus")
    assert {row["test_set"] for row in data["summary"]} == {"emodb", "ravdess-speech"}
    meta = data["meta"]
    assert set(meta["directions"]) == {"emodb -> ravdess-speech", "ravdess-speech -> emodb"}
    assert meta["directions"]["emodb -> ravdess-speech"]["test_clips"] == {"emodb": 14, "ravdess-speech": 16}
    assert {r["shared"] for r in meta["label_vocabulary"]} >= {"boredom", "calm", "surprise"}
    md = (out / "results.md").read_text()
    assert "## Cost of the shift: in-corpus vs cross-corpus" in md and "## Label vocabulary" in md
    assert "| anger | anger | angry |" in md and "Trained on" in md
    figures = {p.name for p in (out / "figures").iterdir()}
    assert figures == {f"shift_confidence_{m}_text-audio_{s}.png" for m in ("msp", "hcep")
                       for s in ("emodb", "ravdess-speech")}
    assert len(standard) == 8 and len({r.file_stem for r in standard}) == 8
    assert len(list((out / "scores").glob("*.npz"))) == 8
