"""The model card of a run folder: Hugging Face metadata, sections, measured numbers with seeded intervals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from openmer.metrics import auroc, oscr
from openmer.model_card import CARD_FILE, CARD_ROWS_FILE, bootstrap, card_row, read_card_notes, write_model_card
from tests.helpers.run_folders import copy_run

SECTIONS = ("## What it knows", "## Training data", "## Method, encoders, budget", "## Results on held-out speakers",
            "## Cross-corpus results", "## Threshold", "## Intended use", "## Limitations")


def _scores(n: int = 60, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.where(rng.random(n) < 0.6, rng.integers(0, 2, n), -1)
    conf = rng.random(n) + 0.3 * (labels >= 0)
    pred = np.where(rng.random(n) < 0.7, np.maximum(labels, 0), 1 - np.maximum(labels, 0))
    return conf, pred, labels


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_bootstrap_is_seeded_and_brackets_the_measured_value():
    conf, pred, labels = _scores()
    a = bootstrap(conf, pred, labels, 0.5, num_classes=2, n_boot=200, seed=0)
    assert a == bootstrap(conf, pred, labels, 0.5, num_classes=2, n_boot=200, seed=0)
    assert a != bootstrap(conf, pred, labels, 0.5, num_classes=2, n_boot=200, seed=1)
    assert a["auroc"].value == auroc(conf, labels) and a["oscr"].value == oscr(conf, pred, labels, num_classes=2)
    for est in a.values():
        assert est.low <= est.value <= est.high and est.low < est.high


def test_a_trained_run_has_a_card_without_invented_numbers(trained_run):
    text = (trained_run / CARD_FILE).read_text()
    meta = _front_matter(text)
    assert meta["library_name"] == "openmer" and "open-set-recognition" in meta["tags"]
    assert "model-index" not in meta  # nothing measured on held-out speakers yet
    for section in SECTIONS:
        assert section in text
    assert "Not measured yet: `openmer evaluate" in text and "happy, sad" in text
    assert "never a diagnosis" in text.lower()


def test_card_rows_are_the_measured_values(tmp_path, trained_run):
    run = copy_run(trained_run, tmp_path / "run")
    conf, pred, labels = _scores()
    row = card_row("emodb, held-out speakers", conf, pred, labels, 0.5, num_classes=2,
                   trained_on="emodb + ravdess-speech", tested_on="emodb", unknown_classes=["boredom"], n_boot=100)
    cross = card_row("ravdess-speech, held-out speakers", conf[::-1], pred, labels, 0.5, num_classes=2,
                     trained_on="emodb", tested_on="ravdess-speech", model="the same recipe trained on emodb only",
                     n_boot=100)
    assert (row.shift, cross.shift) == ("in-corpus", "cross-corpus")
    write_model_card(run, rows=[row, cross], datasets=["emodb", "ravdess-speech"], method_choice="Chosen by OSCR.")
    text = (run / CARD_FILE).read_text()
    meta = _front_matter(text)
    assert meta["license"] == "cc-by-nc-sa-4.0"  # RAVDESS's; EmoDB's terms name no licence
    assert meta["datasets"] == ["emodb", "ravdess-speech"]
    results = meta["model-index"][0]["results"]
    values = {(r["dataset"]["type"], m["type"]): m["value"] for r in results for m in r["metrics"]}
    assert values[("emodb", "roc_auc")] == round(row.auroc.value, 4)
    assert values[("ravdess-speech", "oscr")] == round(cross.oscr.value, 4)
    assert values[("emodb", "fpr")] == round(row.fpr_at_threshold.value, 4)
    assert row.auroc.text() in text and cross.oscr.text() in text
    assert "Livingstone" in text and "Burkhardt" in text and "Chosen by OSCR." in text
    # the rows are kept: a later write (e.g. another evaluation) keeps them and replaces a row of the same name
    stored = json.loads((run / CARD_ROWS_FILE).read_text())
    assert len(stored["rows"]) == 2 and read_card_notes(run).rows[0] == row
    write_model_card(run, rows=[row.model_copy(update={"n_known": 7})])
    assert [r.n_known for r in read_card_notes(run).rows] == [cross.n_known, 7]


def test_card_row_needs_known_and_unknown_clips():
    with pytest.raises(ValueError, match="unknown"):
        card_row("x", [0.1, 0.2], [0, 1], [0, 1], 0.5, num_classes=2, trained_on="a", tested_on="a")


def test_evaluate_into_the_run_folder_adds_its_row_to_the_card(tmp_path, trained_run, tiny_paper_profile):
    from openmer.inference import evaluate
    from tests.helpers.run_folders import clip_rows, write_manifest

    run = copy_run(trained_run, tmp_path / "run")
    root = tmp_path / "data"
    data = write_manifest(root / "m.csv", [dict(r, id=r["id"] + "-new", group="s9") for r in clip_rows(root, groups=2)])
    metrics = evaluate(run, data, out=run / "eval", profile=tiny_paper_profile)
    (row,) = read_card_notes(run).rows
    assert row.auroc.value == metrics["auroc"] and row.oscr.value == metrics["oscr"]
    assert row.closed_acc.value == metrics["closed_acc"]
    assert row.fpr_at_threshold.value == metrics["at_threshold"]["fpr"]
    assert row.auroc.text() in (run / CARD_FILE).read_text()
    evaluate(run, data, out=tmp_path / "elsewhere", profile=tiny_paper_profile)  # outside the folder: card unchanged
    assert read_card_notes(run).rows == [row]
