"""The complexity report (HCEP Table 8): fields, parameter counts, and CUEP computed once per loaded model.

Small on purpose (4 EmoDB clips, 1 timed round, 1 thread): checks the bookkeeping, not the speed.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import openmer.cli.complexity  # noqa: F401  (registers the command on the app)
from openmer.cli.app import app

_REPORT: dict = {}


@pytest.fixture
def report(shared):  # ``shared`` skips without ../shared; the report is computed once per module
    from openmer.benchmarks.cost import complexity_report

    if "report" not in _REPORT:
        _REPORT["report"] = complexity_report("offline", "emodb", n_clips=4, repeats=1, threads=1)
    return _REPORT["report"]


def test_records_have_the_table8_fields(report):
    assert [r["method"] for r in report["records"]] == ["hcep", "arpl", "msp"]
    for r in report["records"]:
        for key in ("learnable_params", "frozen_params", "ms_per_clip", "first_call_ms_per_clip"):
            assert r[key] > 0, (r["method"], key)
        assert r["learnable_params"] < r["frozen_params"]
    frozen = {r["frozen_params"] for r in report["records"]}
    assert len(frozen) == 1  # the same encoders for every method
    hcep = report["records"][0]
    assert sum(hcep["learnable_breakdown"].values()) == hcep["learnable_params"]
    ratio = report["ratio"]
    assert ratio["length_ratio"]["audio"] == pytest.approx(1.5)  # (32000 + 2 * 8000) / 32000 for 2 s clips
    assert 1.0 < ratio["length_ratio"]["text"] < 1.5
    assert 1.0 < ratio["length_ratio_floor"] <= 1.5
    assert ratio["measured_floor"] > 1.0  # the prompted lengths cost more than the unprompted ones
    assert ratio["target"] == pytest.approx(1.10 * ratio["measured_floor"])
    assert ratio["target_ok"] == (ratio["time_ratio_hcep_over_arpl"] <= ratio["target"])
    assert ratio["paper_table8_time_ratio"] == 1.45
    assert report["machine"]["torch_threads"] == 1 and report["machine"]["cpu_count"] >= 1


def test_hcep_second_call_does_not_reencode_cuep(report):
    cc = report["cuep_check"]
    assert cc["encoder_calls_first"] == {"audio": 2, "text": 3}  # clips + CUEP waveforms / + class sentences
    assert cc["encoder_calls_later"] == [{"audio": 1, "text": 1}]  # the clips only
    assert cc["cuep_inputs_encoded_first"] == 1 and cc["cuep_inputs_encoded_later"] == [0]
    assert cc["cuep_encoded_once"]
    assert cc["first_call_ms_per_clip"] > cc["later_call_ms_per_clip"]  # the first call also encodes 2K waveforms


def test_cli_rejects_unknown_class_before_loading(shared):
    res = CliRunner().invoke(app, ["complexity", "--clips", "2", "--repeats", "1", "--known", "anger,joy"])
    assert res.exit_code == 1
    assert "joy" in res.output and "Traceback" not in res.output


def test_report_and_cli_show_table8_as_reference(report):
    from rich.console import Console

    from openmer.cli.complexity import reference_table8
    from openmer.reference import paper_rows

    assert report["reference"]["rows"] == paper_rows(table="Table 8")
    assert "not measured here" in report["reference"]["note"]
    console = Console(width=200, record=True)
    console.print(reference_table8(report["reference"]))
    text = console.export_text()
    assert "HCEP Table 8 (reference)" in text and "not measured here" in text
    assert "HCEP(Ours)" in text and "80.12" in text and "38.8" in text


def test_paper_time_ratio_is_the_one_table8_prints():
    from openmer.benchmarks.cost import PAPER_TABLE8_TIME_RATIO
    from openmer.reference import paper_row

    hcep, arpl = (paper_row("Table 8", m, "O(8:2)")["inference_s"] for m in ("HCEP(Ours)", "APRL [25]"))
    assert round(hcep / arpl, 2) == PAPER_TABLE8_TIME_RATIO
