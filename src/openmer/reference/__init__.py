"""Published result rows of the HCEP paper, for comparison with reproduced runs.

The rows live in ``hcep_paper_tables.json`` (package data). Each row has ``table``, ``setting``,
``method``, ``level`` (openness, e.g. ``"O(8:2)"``), ``auroc``, ``oscr`` (fractions in [0, 1]) and
``source`` (where the number was read). Only numbers read from a named source are entered; the
file's ``note`` says what is still missing.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from openmer.errors import DataError

TABLES_FILE = "hcep_paper_tables.json"
ROW_FIELDS = ("table", "setting", "method", "level", "auroc", "oscr", "source")


@lru_cache(maxsize=1)
def _load() -> dict[str, Any]:
    path = resources.files(__package__) / TABLES_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(str(path), f"cannot read the paper tables ({exc})") from None
    for n, row in enumerate(data.get("rows", []), start=1):
        missing = [f for f in ROW_FIELDS if f not in row]
        if missing:
            raise DataError(str(path), f"row {n} lacks field(s) {missing}")
        for metric in ("auroc", "oscr"):
            v = row[metric]
            if v is not None and not 0.0 <= float(v) <= 1.0:
                raise DataError(str(path), f"row {n}: {metric} {v} is not a fraction in [0, 1]")
        if not str(row["source"]).strip():
            raise DataError(str(path), f"row {n} has no source")
    return data


def paper_rows(setting: str | None = None, table: str | None = None) -> list[dict[str, Any]]:
    """Published rows, optionally filtered by ``setting`` and/or ``table`` (exact match).

    Returns:
        Copies of the matching rows (possibly empty: see :func:`paper_note`).

    Raises:
        DataError: the JSON file is unreadable or a row is malformed.
    """
    rows = _load()["rows"]
    return [
        dict(r) for r in rows
        if (setting is None or r["setting"] == setting) and (table is None or r["table"] == table)
    ]


def paper_note() -> str:
    """The file's note on what the rows cover and what is missing."""
    return str(_load().get("note", ""))


__all__ = ["ROW_FIELDS", "paper_note", "paper_rows"]
