"""The HCEP paper's published rows shipped with openmer (labelled reference, never test targets)."""

from __future__ import annotations

import json

import pytest

import openmer.reference as ref
from openmer.errors import DataError
from openmer.reference import BENCHMARK_SETTINGS, ROW_FIELDS, paper_note, paper_row, paper_rows
from tests.conftest import SHARED, requires_shared_path


def test_every_table_is_there_with_a_source_and_fractions():
    rows = paper_rows()
    counts = {t: len(paper_rows(table=t)) for t in ("Table 2", "Table 3", "Table 4", "Table 5", "Table 6", "Table 7",
                                                    "Table 8")}
    assert counts == {"Table 2": 40, "Table 3": 40, "Table 4": 24, "Table 5": 6, "Table 6": 7, "Table 7": 3,
                      "Table 8": 24}
    assert len(rows) == sum(counts.values())
    for r in rows:
        assert set(ROW_FIELDS) <= set(r)
        assert r["source"].endswith(r["table"]) and "doi:10.1016/j.inffus.2026.104530" in r["source"]
        assert 0.0 <= r["auroc"] <= 1.0 and 0.0 <= r["oscr"] <= 1.0
    full = paper_row("Table 5", "Baseline+SMEP+CUEP+L_emo+L_osr")  # 77.72 / 62.87 as printed
    assert (full["auroc"], full["oscr"]) == (0.7772, 0.6287)
    assert paper_row("Table 5", "Baseline")["components"] == ["Baseline"]
    assert paper_row("Table 8", "HCEP(Ours)", "O(8:2)")["inference_s"] == 38.8
    assert "Fig. 4" in paper_note()


def test_benchmark_names_select_the_settings_results_table():
    mafw = paper_rows(setting="mafw")
    assert len(mafw) == 40 and {r["table"] for r in mafw} == {"Table 2"}
    assert len(paper_rows(setting="MAFW")) == 40 + 6 + 7 + 3 + 24  # the printed name: every MAFW table
    assert {r["setting"] for r in paper_rows(setting="cross")} == {"MAFW+CMU-MOSEI cross"}
    assert set(BENCHMARK_SETTINGS) == {"mafw", "mosei", "mafw-compound", "ov-merd", "cross"}
    assert paper_rows(setting="emodb") == []
    with pytest.raises(DataError, match="0 rows for 'nope'"):
        paper_row("Table 5", "nope")


@requires_shared_path("reference/paper_tables.json")
def test_rows_equal_the_checked_tables_in_shared():
    flat = json.loads((SHARED / "reference" / "hcep_tables_2_4_rows.json").read_text())["rows"]
    assert [r for r in paper_rows() if r["table"] in ("Table 2", "Table 3", "Table 4")] == flat
    tables = json.loads((SHARED / "reference" / "paper_tables.json").read_text())
    for number, (a, o) in {5: (5, 7), 6: (0, 2), 7: (0, 2), 8: (0, 1)}.items():
        ours = paper_rows(table=f"Table {number}")
        theirs = tables[f"hcep_table{number}"]["rows"]
        assert [r["method"] for r in ours] == [r["method"] for r in theirs]
        assert [(r["auroc"], r["oscr"]) for r in ours] == [
            (round(r["values"][a] / 100, 4), round(r["values"][o] / 100, 4)) for r in theirs]


def test_a_malformed_file_is_a_clear_error(tmp_path, monkeypatch):
    good = json.loads((ref.resources.files("openmer.reference") / ref.TABLES_FILE).read_text())
    monkeypatch.setattr(ref.resources, "files", lambda package: tmp_path)
    cases = [({**good, "rows": [{**good["rows"][0], "auroc": 54.9}]}, "not a fraction"),
             ({**good, "rows": [{k: v for k, v in good["rows"][0].items() if k != "source"}]}, "lacks field"),
             ({**good, "rows": [{**good["rows"][0], "extra": 1}]}, "does not describe")]
    try:
        for data, match in cases:
            (tmp_path / ref.TABLES_FILE).write_text(json.dumps(data))
            ref._load.cache_clear()
            with pytest.raises(DataError, match=match):
                paper_rows()
    finally:
        ref._load.cache_clear()
