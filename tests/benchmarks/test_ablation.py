"""The HCEP ablation grid and ``openmer ablate`` on a tiny generated dataset with toy encoders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from openmer.benchmarks import ablation
from openmer.benchmarks.ablation import ABLATION_TABLES, ABLATIONS, run_ablations, select_ablations
from openmer.errors import ConfigError
from tests.helpers.tiny_media import tiny_config

def test_ablation_names_cover_the_paper_tables():
    assert set(ABLATION_TABLES) == {"table5", "table6_streams", "table6_text_prompts", "table7", "fig4_tokens",
                                    "fig4_anchor"}
    assert all(n in ABLATIONS for rows in ABLATION_TABLES.values() for n in rows)
    assert {ABLATIONS[n].get("n_prompt_tokens", 2) for n in ABLATION_TABLES["fig4_tokens"]} == {1, 2, 4, 8}
    assert ABLATIONS["full"] == {}


def test_selection_leaves_out_what_does_not_apply_and_rejects_bad_names():
    names, skipped = select_ablations(None, tiny_config())  # text + audio: no video anchor
    assert "anchor_video" not in names and "video" in skipped["anchor_video"]
    assert names[0] == "full" and len(names) == len(ABLATIONS) - 1
    with pytest.raises(ConfigError, match="unknown ablation.*choose from full"):
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
    assert result.meta["ablations"]["negative_only"] == {"dpol_streams": "negative_only"}
    assert result.meta["config"]["methods"] == ["hcep"] and result.meta["ablations_left_out"] == {}
    assert calls[-1][0] == calls[-1][1] == 6 and "hcep[anchor_none]" in calls[-1][2]
    # the ablation really changes the model: different scores with the same data and seed
    assert not np.allclose(result.runs[0].confidence, result.runs[2].confidence)


def test_ablate_command_writes_results(tiny_data, tmp_path, monkeypatch):
    import openmer.cli.ablate  # noqa: F401  (registers the command on the app)
    from openmer.cli.app import app

    manifest, protocol = tiny_data
    monkeypatch.setitem(ablation.DATASETS, "emodb", (tiny_config, lambda: (manifest, protocol)))
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
