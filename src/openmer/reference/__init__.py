"""Published result rows of the HCEP paper, for comparison with reproduced runs (labelled reference).

The rows live in ``hcep_paper_tables.json`` (package data, the paper's published numbers with their
source). Each row has ``table`` (e.g. ``"Table 5"``), ``setting`` (as printed, e.g. ``"MAFW"``),
``method`` (the row as printed), ``level`` (openness, e.g. ``"O(8:2)"``, or ``"Mean"``), ``auroc``,
``oscr`` (fractions in [0, 1]) and ``source`` (paper, DOI, table). Some tables add fields (Table 5
``components``, Table 6 ``section``, Table 8 ``modality``, ``learnable_params_m``, ``pretrained``,
``inference_s``); the file's ``fields`` describes them and its ``note`` says where the rows were read
and what the paper does not give (Fig. 4). These are reference numbers, never targets for tests.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from openmer.errors import DataError

TABLES_FILE = "hcep_paper_tables.json"
ROW_FIELDS = ("table", "setting", "method", "level", "auroc", "oscr", "source")

#: ``openmer benchmark`` names of the paper's settings -> (the setting as printed, its results table)
BENCHMARK_SETTINGS = {
    "mafw": ("MAFW", "Table 2"),
    "mosei": ("CMU-MOSEI", "Table 3"),
    "mafw-compound": ("MAFW compound", "Table 4"),
    "ov-merd": ("OV-MERD", "Table 4"),
    "cross": ("MAFW+CMU-MOSEI cross", "Table 4"),
}


@lru_cache(maxsize=1)
def _load() -> dict[str, Any]:
    path = resources.files(__package__) / TABLES_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(str(path), f"cannot read the paper tables ({exc})") from None
    fields = data.get("fields", {})
    for n, row in enumerate(data.get("rows", []), start=1):
        missing = [f for f in ROW_FIELDS if f not in row]
        if missing:
            raise DataError(str(path), f"row {n} lacks field(s) {missing}")
        undocumented = [f for f in row if f not in fields]
        if undocumented:
            raise DataError(str(path), f"row {n} has field(s) {undocumented} that 'fields' does not describe")
        for metric in ("auroc", "oscr"):
            v = row[metric]
            if v is not None and not 0.0 <= float(v) <= 1.0:
                raise DataError(str(path), f"row {n}: {metric} {v} is not a fraction in [0, 1]")
        if not str(row["source"]).strip():
            raise DataError(str(path), f"row {n} has no source")
    return data


def paper_rows(setting: str | None = None, table: str | None = None) -> list[dict[str, Any]]:
    """Published rows, optionally filtered by ``setting`` and/or ``table`` (exact match).

    Args:
        setting: the setting as printed (``"MAFW"``), or its ``openmer benchmark`` name
            (``"mafw"``, see :data:`BENCHMARK_SETTINGS`), which also selects that benchmark's
            results table (Table 2) unless ``table`` is given; a dataset the paper does not use
            (``"emodb"``) has none.
        table: e.g. ``"Table 5"``.

    Returns:
        Copies of the matching rows, in the paper's order (possibly empty).

    Raises:
        DataError: the JSON file is unreadable or a row is malformed.
    """
    rows = _load()["rows"]
    if setting in BENCHMARK_SETTINGS:
        setting, default_table = BENCHMARK_SETTINGS[setting]
        table = default_table if table is None else table
    return [
        dict(r) for r in rows
        if (setting is None or r["setting"] == setting) and (table is None or r["table"] == table)
    ]


def paper_row(table: str, method: str, level: str = "Mean") -> dict[str, Any]:
    """The one published row of ``table`` named ``method`` at ``level``.

    Raises:
        DataError: no such row, or more than one (the message lists the table's rows).
    """
    rows = [r for r in paper_rows(table=table) if r["method"] == method and r["level"] == level]
    if len(rows) != 1:
        have = sorted({f"{r['method']} @ {r['level']}" for r in paper_rows(table=table)})
        raise DataError(TABLES_FILE, f"{len(rows)} rows for {method!r} at {level!r} in {table}; it has {have}")
    return rows[0]


def paper_note() -> str:
    """The file's note on what the rows cover and what is missing."""
    return str(_load().get("note", ""))


__all__ = ["BENCHMARK_SETTINGS", "ROW_FIELDS", "paper_note", "paper_row", "paper_rows"]
