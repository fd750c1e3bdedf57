"""The HCEP ablation grid and ``openmer ablate`` on a tiny generated dataset with toy encoders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from openmer.benchmarks import ablation
from openmer.benchmarks.ablation import (
    ABLATIONS,
    TABLES,
    ablation_tag,
    run_ablations,
    select_ablations,
    table_ablations,
)
from openmer.errors import ConfigError
from openmer.reference import paper_rows
from tests.helpers.tiny_media import tiny_config


def _tiny_preset(monkeypatch, manifest, protocol):
    """``--data emodb`` runs on the tiny preset and data: the benchmark plan and the dataset stubbed."""
    from openmer.benchmarks.registry import BenchmarkPlan

    def plan(name, **kw):
        return BenchmarkPlan(tiny_config(**kw).model_copy(update={"dataset": name}), None)

    monkeypatch.setattr(ablation, "plan_benchmark", plan)
    monkeypatch.setattr(ablation, "load_with_protocol", lambda name: (manifest, protocol))


def test_the_ablation_datasets_are_the_benchmarks_whose_preset_trains_hcep_on_clips():
    assert ablation.ablation_datasets() == ["emodb", "meld", "ravdess-speech"]
    assert ablation.ablation_preset("meld").dataset == "meld"
    with pytest.raises(ConfigError,
                       match="no ablation preset for dataset 'cross-speech'; choose from emodb, meld, ravdess-speech"):
        ablation.ablation_preset("cross-speech")


def test_tables_are_the_papers_rows_in_order():
    assert set(TABLES) == {"5", "6", "7", "fig4"}
    for table in TABLES.values():
        assert all(name in ABLATIONS for name, _ in table.rows)
        if table.paper is not None:  # every row label is a published row of that table, in the paper's order
            assert [label for _, label in table.rows] == [r["method"] for r in paper_rows(table=table.paper)]
    assert [n for n, _ in TABLES["5"].rows] == ["baseline", "baseline_smep", "smep_loss_emo", "cuep_loss_osr",
                                               "no_loss_emo", "full"]
    assert ABLATIONS["baseline"].baseline == "arpl" and ablation_tag("baseline") == "arpl[baseline]"
    assert ablation_tag("baseline_smep") == "arpl[baseline_smep]" and ablation_tag("full") == "hcep[full]"
    assert TABLES["6"].ablations == ["random_negative_only", "no_cuep", "negative_only", "full", "cuep_text_tokens",
                                     "cuep_text_tokens_labels"]  # "full" makes two rows, runs once
    assert {ABLATIONS[n].options.get("n_prompt_tokens", 2) for n in ("m1", "full", "m4", "m8")} == {1, 2, 4, 8}
    assert ABLATIONS["full"].options == {} and ABLATIONS["full"].build is None
    with pytest.raises(ConfigError, match="no ablation table '8'; choose from 5, 6, 7, fig4"):
        table_ablations("8")


def test_selection_leaves_out_what_does_not_apply_and_rejects_bad_names():
    names, skipped = select_ablations(None, tiny_config())  # text + audio: no video anchor
    assert "anchor_video" not in names and "video" in skipped["anchor_video"]
    assert names[0] == "full" and len(names) == len(ABLATIONS) - 1
    with pytest.raises(ConfigError, match=r"unknown ablation.*choose from full"):
        select_ablations(["full", "nope"], tiny_config())
    with pytest.raises(ConfigError, match="'anchor_video' does not apply to toy"):
        select_ablations(["anchor_video"], tiny_config())
    with pytest.raises(ConfigError, match="no ablation preset"):
        ablation.run_ablation_grid("ravdess")


def test_grid_runs_one_tagged_hcep_per_ablation(tiny_data):
    manifest, protocol = tiny_data
    calls = []
    result = run_ablations(tiny_config(), manifest, protocol, names=["full", "negative_only", "anchor_none"],
                           progress=lambda d, n, msg: calls.append((d, n, msg)))
    methods = [r["method"] for r in result.records]
    assert methods == ["hcep[full]"] * 2 + ["hcep[negative_only]"] * 2 + ["hcep[anchor_none]"] * 2
    assert [r.method for r in result.runs] == methods
    assert {r["level"] for r in result.records} == {"O(3:1)", "O(2:2)"}
    assert all(0.0 <= r["auroc"] <= 1.0 and 0.0 <= r["oscr"] <= 1.0 for r in result.records)
    assert result.meta["ablations"]["negative_only"] == {"options": {"dpol_streams": "negative_only"}}
    assert result.meta["config"]["methods"] == ["hcep"] and result.meta["ablations_left_out"] == {}
    assert calls[-1][0] == calls[-1][1] == 6 and "hcep[anchor_none]" in calls[-1][2]
    # the ablation really changes the model: different scores with the same data and seed
    assert not np.allclose(result.runs[0].confidence, result.runs[2].confidence)


def test_ablate_command_writes_results(tiny_data, tmp_path, monkeypatch):
    import openmer.cli.ablate  # noqa: F401  (registers the command on the app)
    from openmer.cli.app import app

    manifest, protocol = tiny_data
    _tiny_preset(monkeypatch, manifest, protocol)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["ablate", "--data", "emodb", "--quick", "--only", "full,no_loss_osr",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "results.json").read_text())
    assert {row["method"] for row in data["summary"]} == {"hcep[full]", "hcep[no_loss_osr]"}
    assert "hcep[no_loss_osr]" in (out / "results.md").read_text()
    assert len(list((out / "scores").glob("*.npz"))) == 4
    bad = CliRunner().invoke(app, ["ablate", "--data", "emodb", "--only", "full,typo", "--out", str(out)])
    assert bad.exit_code == 1 and "unknown ablation" in bad.output and "Traceback" not in bad.output


def test_table5_runs_its_six_rows_beside_the_paper(tiny_data):
    manifest, protocol = tiny_data
    result = run_ablations(tiny_config(), manifest, protocol, names=table_ablations("5"))
    tags = list(dict.fromkeys(r["method"] for r in result.records))
    assert tags == ["arpl[baseline]", "arpl[baseline_smep]", "hcep[smep_loss_emo]", "hcep[cuep_loss_osr]",
                    "hcep[no_loss_emo]", "hcep[full]"]
    assert all(0.0 <= r["auroc"] <= 1.0 and "threshold" in r for r in result.records)
    assert result.meta["ablations"]["baseline"] == {"options": {}, "model": "arpl on the cached unprompted features"}
    assert result.meta["ablations"]["baseline_smep"]["model"] == "smep_prompted_arpl"
    rows = result.meta["beside_paper"]["5"]
    assert set(result.meta["beside_paper"]) == {"5"}  # only the table that ran whole
    assert [r["row"] for r in rows] == [label for _, label in TABLES["5"].rows]
    base = rows[0]
    mine = [r for r in result.records if r["method"] == "arpl[baseline]"]
    assert base["auroc"] == pytest.approx(np.mean([r["auroc"] for r in mine]))  # 1 split per level
    assert (base["paper_auroc"], base["paper_oscr"]) == (0.6532, 0.5019)  # published, labelled reference
    assert base["paper_source"].endswith("Table 5")
    # the SMEP rows really use prompts: the prompted baseline differs from the unprompted one
    confidences = {r.method: r.confidence for r in result.runs if r.level == "O(3:1)"}
    assert not np.allclose(confidences["arpl[baseline]"], confidences["arpl[baseline_smep]"])


def test_ablate_table_command_prints_beside_the_paper(tiny_data, tmp_path, monkeypatch):
    import openmer.cli.ablate  # noqa: F401  (registers the command on the app)
    from openmer.cli.app import app

    manifest, protocol = tiny_data
    _tiny_preset(monkeypatch, manifest, protocol)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["ablate", "--data", "emodb", "--quick", "--table", "7", "--out", str(out)],
                             terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "Multimodal-only Features" in res.output and "76.49" in res.output and "61.81" in res.output
    assert "hcep[dpol_multimodal_only]" in res.output and "reference, not measured here" in res.output
    data = json.loads((out / "results.json").read_text())
    assert {row["method"] for row in data["summary"]} == {"hcep[dpol_text_only]", "hcep[dpol_multimodal_only]",
                                                         "hcep[full]"}
    assert [r["table"] for r in data["reference"]] == ["Table 7"] * 3
    md = (out / "results.md").read_text()
    assert "ours beside the paper's" in md and "| Hybrid Features Setting | hcep[full] |" in md
    assert "## Published numbers (reference, not measured here)" in md
    bad = CliRunner().invoke(app, ["ablate", "--data", "emodb", "--table", "5", "--only", "full", "--out", str(out)])
    assert bad.exit_code == 1 and "not both" in bad.output
