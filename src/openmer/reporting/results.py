"""Benchmark results: per-trial records, their summary over splits, ``results.json`` and ``results.md``.

A *record* is one trial (method x modalities x openness level x split) as a flat dict::

    {"method": "arpl", "modalities": "face_au+audio", "level": "O(6:2)", "openness": 0.134,
     "split": 0, "auroc": 0.81, "oscr": 0.62, "aupr_in": 0.85, "aupr_out": 0.55,
     "closed_acc": 0.70, "macro_f1": 0.68, "fpr95": 0.71, "score": "max_logit"}

Metrics are fractions in [0, 1] (as everywhere in openmer); ``results.md`` is the only place
they become percentages, and it labels them "(%)". Extra keys are allowed; numeric extras are
summarised like the metrics. A benchmark that trains on one dataset and tests on several
(cross-corpus) adds ``train_set`` and ``test_set`` to its records: they then identify a group
too, and the tables get "Trained on" / "Tested on" columns.
The tags in :data:`TAG_KEYS` are copied into the summary: ``budget`` (how the method
was trained, shown in its own column of the main table), ``score``
(which confidence the record's metrics use) and ``posthoc_of`` (the record is a post-hoc score,
method ``"<head>[<score>]"``, on the trained head of method ``<head>``). Post-hoc records get
their own table in ``results.md``.

``results.json`` is deterministic: keys sorted, floats rounded to 6 decimals, records in the
order given, so the same records and meta give the same bytes.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from openmer import __version__

__all__ = [
    "DATASET_KEYS", "ID_KEYS", "METRICS", "REQUIRED_KEYS", "TAG_KEYS", "markdown_table", "summarise", "write_results",
]

#: keys that identify a summary group
ID_KEYS = ("method", "modalities", "level")
#: optional keys that also identify a group when records have them (cross-dataset benchmarks)
DATASET_KEYS = ("train_set", "test_set")
#: headline metrics, fractions in [0, 1] (see :func:`openmer.metrics.open_set_metrics`)
METRICS = ("auroc", "oscr", "aupr_in", "aupr_out", "closed_acc", "macro_f1", "fpr95")
#: string tags copied from the records into their summary row (when all of a group's records agree)
TAG_KEYS = ("score", "posthoc_of", "budget")
#: keys every record must have
REQUIRED_KEYS = (*ID_KEYS, "openness", "split", *METRICS)
#: decimals kept for floats in results.json
DECIMALS = 6

_METRIC_TITLES = {
    "auroc": "AUROC",
    "oscr": "OSCR",
    "aupr_in": "AUPR-in",
    "aupr_out": "AUPR-out",
    "closed_acc": "Closed-set acc.",
    "macro_f1": "Macro-F1",
    "fpr95": "FPR@95%TPR",
}
# keys that are numbers but not quantities to average
_NOT_SUMMARISED = {"openness", "split"}


# ----------------------------------------------------------------------------- records


def _is_number(v: Any) -> TypeGuard[int | float | np.integer | np.floating]:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _check_records(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, given in enumerate(records):
        if not isinstance(given, Mapping):
            raise ValueError(f"record {i} must be a dict, got {type(given).__name__}")
        missing = [k for k in REQUIRED_KEYS if k not in given]
        if missing:
            raise ValueError(f"record {i} lacks key(s) {missing}; every record needs {list(REQUIRED_KEYS)}")
        rec = dict(given)
        if not isinstance(rec["modalities"], str):
            rec["modalities"] = "+".join(str(m) for m in rec["modalities"])
        for key in METRICS:
            v = rec[key]
            if not _is_number(v) or not 0.0 <= float(v) <= 1.0:
                raise ValueError(
                    f"record {i} ({rec['method']} {rec['modalities']} {rec['level']} split {rec['split']}): "
                    f"{key}={v!r} is not a fraction in [0, 1] (metrics are fractions, not percentages)"
                )
        out.append(rec)
    return out


def _dataset_ids(rec: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(rec[k]) if rec.get(k) is not None else "" for k in DATASET_KEYS)


def summarise(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard deviation over splits, per (method, modalities, level[, train_set, test_set]).

    Args:
        records: one dict per trial with at least :data:`REQUIRED_KEYS` (metrics as fractions).

    Returns:
        One dict per group, in order of the group's first record, with ``method``,
        ``modalities``, ``level``, ``openness``, ``n_splits``, ``splits`` (sorted indices) and
        ``<metric>_mean`` / ``<metric>_std`` for every metric in :data:`METRICS` and every other
        numeric key present in all of the group's records. The standard deviation is the
        *population* one (``ddof=0``), 0 for a single split. Records with ``train_set`` /
        ``test_set`` are grouped by those too, and their rows carry them, plus the :data:`TAG_KEYS`
        on which all of the group's records agree.

    Raises:
        ValueError: if a record lacks a required key or a metric is not in [0, 1].
    """
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for rec in _check_records(records):
        groups.setdefault(tuple(str(rec[k]) for k in ID_KEYS) + _dataset_ids(rec), []).append(rec)
    summary = []
    for key, recs in groups.items():
        method, modalities, level = key[:3]
        extras = sorted(
            k for k in recs[0]
            if k not in REQUIRED_KEYS and k not in _NOT_SUMMARISED and all(k in r and _is_number(r[k]) for r in recs)
        )
        row: dict[str, Any] = {
            "method": method,
            "modalities": modalities,
            "level": level,
            **{k: v for k, v in zip(DATASET_KEYS, key[3:], strict=True) if v},
            "openness": float(np.mean([float(r["openness"]) for r in recs])),
            "n_splits": len(recs),
            "splits": sorted(int(r["split"]) for r in recs),
        }
        for tag in TAG_KEYS:
            if tag in recs[0] and all(r.get(tag) == recs[0][tag] for r in recs):
                row[tag] = recs[0][tag]
        for metric in (*METRICS, *extras):
            values = np.array([float(r[metric]) for r in recs], dtype=np.float64)
            row[f"{metric}_mean"] = float(values.mean())
            row[f"{metric}_std"] = float(values.std(ddof=0))
        summary.append(row)
    return summary


# ----------------------------------------------------------------------------- results.json


def _jsonable(obj: Any) -> Any:
    """Plain JSON types, floats rounded to :data:`DECIMALS`, non-finite floats as ``None``."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=str) if isinstance(obj, (set, frozenset)) else obj
        return [_jsonable(v) for v in items]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        if not math.isfinite(x):
            return None
        x = round(x, DECIMALS)
        return 0.0 if x == 0 else x  # no "-0.0"
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return str(obj)


def _write_text(path: Path, text: str) -> None:
    from openmer.files import atomic_write_text

    atomic_write_text(path, text)


# ----------------------------------------------------------------------------- results.md


def _pct(x: float) -> str:
    return f"{100.0 * x:.1f}"


def _md_escape(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> list[str]:
    """A Markdown table (one string per line), cells escaped (``|`` and newlines)."""
    lines = ["| " + " | ".join(_md_escape(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in rows]
    return lines


def _row_key(row: Mapping[str, Any]) -> tuple[str, ...]:
    """What a table row stands for: (method, modalities[, train_set, test_set])."""
    return (str(row["method"]), str(row["modalities"])) + (_dataset_ids(row) if _has_datasets([row]) else ())


def _has_datasets(rows: Iterable[Mapping[str, Any]]) -> bool:
    return any(row.get(k) is not None for row in rows for k in DATASET_KEYS)


def _key_headers(summary: Sequence[Mapping[str, Any]]) -> list[str]:
    return ["Method", "Modalities", *(["Trained on", "Tested on"] if _has_datasets(summary) else [])]


def _key_cells(summary: Sequence[Mapping[str, Any]], row: Mapping[str, Any]) -> list[str]:
    key = _row_key(row)
    width = len(_key_headers(summary))
    return [_md_escape(v) for v in key] + [""] * (width - len(key))


def _md_value(v: Any) -> str:
    if isinstance(v, (Mapping, list, tuple)):
        return "`" + json.dumps(_jsonable(v), sort_keys=True, separators=(", ", ": ")) + "`"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _levels(summary: Sequence[Mapping[str, Any]]) -> list[str]:
    openness: dict[str, float] = {}
    for row in summary:
        openness.setdefault(row["level"], row["openness"])
    return sorted(openness, key=lambda lv: (openness[lv], lv))


def _level_mean(rows: Sequence[Mapping[str, Any]], metric: str) -> float:
    return float(np.mean([r[f"{metric}_mean"] for r in rows]))


def _main_table(summary: Sequence[Mapping[str, Any]]) -> list[str]:
    levels = _levels(summary)
    cells: dict[tuple[str, ...], dict[str, Mapping[str, Any]]] = {}
    for row in summary:
        cells.setdefault(_row_key(row), {})[row["level"]] = row
    n_values = {row["n_splits"] for row in summary}
    same_n = len(n_values) == 1
    header = [*_key_headers(summary), *[f"{lv} AUROC / OSCR (%)" for lv in levels],
              "Mean over levels AUROC / OSCR (%)", "Mean over levels AUPR-in / AUPR-out / FPR@95%TPR (%)"]
    budgets = any("budget" in row for row in summary)
    if budgets:
        header.append("Training budget")
    lines = ["| " + " | ".join(_md_escape(h) for h in header) + " |", "|" + "---|" * len(header)]
    for by_level in cells.values():
        row_cells = _key_cells(summary, next(iter(by_level.values())))
        for lv in levels:
            r = by_level.get(lv)
            if r is None:
                row_cells.append("—")
                continue
            text = (f"{_pct(r['auroc_mean'])} ± {_pct(r['auroc_std'])} / "
                    f"{_pct(r['oscr_mean'])} ± {_pct(r['oscr_std'])}")
            if not same_n:
                text += f" (n={r['n_splits']})"
            row_cells.append(text)
        present = list(by_level.values())
        row_cells.append(" / ".join(_pct(_level_mean(present, m)) for m in ("auroc", "oscr")))
        row_cells.append(" / ".join(_pct(_level_mean(present, m)) for m in ("aupr_in", "aupr_out", "fpr95")))
        if budgets:
            row_cells.append(_md_escape("; ".join(dict.fromkeys(str(r.get("budget", "")) for r in present))))
        lines.append("| " + " | ".join(row_cells) + " |")
    n_text = f"{next(iter(n_values))} split(s) per level" if same_n else "n = splits per cell"
    caption = (
        f"AUROC / OSCR in percent (%), mean ± standard deviation over {n_text}; the standard deviation is the "
        "population one (ddof=0). Higher is better, except FPR@95%TPR. \"Mean over levels\" is the unweighted "
        "mean of the per-level means of its row."
    )
    return [caption, "", *lines]


def _detail_table(summary: Sequence[Mapping[str, Any]]) -> list[str]:
    levels = _levels(summary)
    order = {lv: i for i, lv in enumerate(levels)}
    keyed: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for row in summary:  # rows in order of first appearance, levels by openness within a row
        keyed.setdefault(_row_key(row), []).append(row)
    header = [*_key_headers(summary), "Level", "Openness", "Splits",
              *[f"{_METRIC_TITLES[m]} (%)" for m in METRICS]]
    lines = ["| " + " | ".join(_md_escape(h) for h in header) + " |", "|" + "---|" * len(header)]
    for group in keyed.values():
        for r in sorted(group, key=lambda r: order[r["level"]]):
            values = [f"{_pct(r[f'{m}_mean'])} ± {_pct(r[f'{m}_std'])}" for m in METRICS]
            lines.append("| " + " | ".join([
                *_key_cells(summary, r), _md_escape(r["level"]), f"{r['openness']:.3f}",
                ", ".join(str(s) for s in r["splits"]), *values]) + " |")
    caption = (
        "All headline metrics in percent (%), mean ± population standard deviation (ddof=0) over the splits "
        "listed. FPR@95%TPR is lower-is-better; the others higher-is-better. Openness is a fraction, "
        "1 - sqrt(K / (K + U))."
    )
    return [caption, "", *lines]


def _posthoc_table(summary: Sequence[Mapping[str, Any]]) -> list[str]:
    scores: list[str] = []
    cells: dict[tuple[str, str], dict[str, list[Mapping[str, Any]]]] = {}
    for row in summary:
        score = str(row.get("score", row["method"]))
        if score not in scores:
            scores.append(score)
        cells.setdefault((row["posthoc_of"], row["modalities"]), {}).setdefault(score, []).append(row)
    header = ["Head", "Modalities", *[f"{_md_escape(sc)} AUROC / OSCR (%)" for sc in scores]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (head, modalities), by_score in cells.items():
        means = {sc: _level_mean(rows, "auroc") for sc, rows in by_score.items()}
        best = max(means.values())
        row_cells = [_md_escape(head), _md_escape(modalities)]
        for sc in scores:
            if sc not in by_score:
                row_cells.append("—")
                continue
            text = f"{_pct(means[sc])} / {_pct(_level_mean(by_score[sc], 'oscr'))}"
            row_cells.append(f"**{text}**" if means[sc] == best else text)
        lines.append("| " + " | ".join(row_cells) + " |")
    caption = (
        "Post-hoc scores computed on the same trained head and features as the method of the row (no retraining), "
        "on the same test sets: AUROC / OSCR in percent (%), unweighted mean over the levels of the per-level means "
        "over splits. Bold: the highest AUROC of the row. Per-level values are in results.json (methods named "
        "\"<head>[<score>]\")."
    )
    return [caption, "", *lines]


def _reference_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    keys: list[str] = []
    for row in rows:
        for k in row:
            if k not in keys:
                keys.append(k)
    ids = [k for k in ID_KEYS if k in keys]
    metrics = [k for k in METRICS if k in keys]
    rest = [k for k in keys if k not in ids and k not in metrics]
    for i, row in enumerate(rows):
        for m in metrics:
            v = row.get(m)
            if v is not None and (not _is_number(v) or not 0.0 <= float(v) <= 1.0):
                raise ValueError(
                    f"reference row {i}: {m}={v!r} is not a fraction in [0, 1]; give published percentages "
                    "divided by 100 (they are shown as percentages)"
                )
    header = ([k.capitalize() for k in ids] + [f"{_METRIC_TITLES[m]} (%)" for m in metrics]
              + [k.capitalize() for k in rest])
    lines = ["| " + " | ".join(_md_escape(h) for h in header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [_md_escape(row.get(k, "")) for k in ids]
        cells += ["—" if row.get(m) is None else _pct(float(row[m])) for m in metrics]
        cells += [_md_escape(_md_value(row[k])) if k in row else "" for k in rest]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _splits_line(records: Sequence[Mapping[str, Any]], summary: Sequence[Mapping[str, Any]]) -> str:
    per_level: dict[str, set[int]] = {}
    for rec in records:
        per_level.setdefault(str(rec["level"]), set()).add(int(rec["split"]))
    parts = [f"{lv}: {', '.join(str(s) for s in sorted(per_level[lv]))}" for lv in _levels(summary)]
    return "; ".join(parts)


def _meta_lines(meta: Mapping[str, Any]) -> list[str]:
    lines = []
    for key, value in meta.items():
        if isinstance(value, Mapping) and value:
            lines.append(f"- **{_md_escape(key)}**:")
            for sub, v in value.items():
                lines.append(f"  - {_md_escape(sub)}: {_md_escape(_md_value(v))}")
        else:
            lines.append(f"- **{_md_escape(key)}**: {_md_escape(_md_value(value))}")
    return lines


def _time_text(meta: Mapping[str, Any]) -> str | None:
    for key in ("seconds", "time_s", "elapsed_s", "wall_s"):
        v = meta.get(key)
        if _is_number(v):
            return f"{float(v):.1f} s ({float(v) / 60:.1f} min)"
    for key in ("time", "timing"):
        if key in meta:
            return _md_value(meta[key])
    return None


def _render_markdown(
    records: Sequence[Mapping[str, Any]],
    summary: Sequence[Mapping[str, Any]],
    meta: Mapping[str, Any],
    reference_rows: Sequence[Mapping[str, Any]] | None,
    title: str,
    sections: Sequence[tuple[str, Sequence[str]]] = (),
) -> str:
    out = [f"# {title}", ""]
    own = [r for r in summary if "posthoc_of" not in r]
    posthoc = [r for r in summary if "posthoc_of" in r]
    if own:
        out += ["## Open-set results (measured here)", "", *_main_table(own), ""]
    for heading, lines in sections:
        out += [f"## {heading}", "", *lines, ""]
    if own:
        out += ["## All metrics per level", "", *_detail_table(own), ""]
    if posthoc:
        out += ["## Post-hoc scores on the trained heads", "", *_posthoc_table(posthoc), ""]
    if not summary:
        out += ["No records.", ""]
    out += ["## How these numbers were made", ""]
    machine = meta.get("machine")
    if machine is not None:
        if isinstance(machine, Mapping):
            machine_text = ", ".join(f"{k}={_md_value(v)}" for k, v in machine.items())
        else:
            machine_text = _md_value(machine)
        out.append(f"- Machine: {_md_escape(machine_text)}")
    if records:
        out.append(f"- Splits (level: split indices): {_splits_line(records, summary)}; {len(records)} trial(s)")
    time_text = _time_text(meta)
    if time_text:
        out.append(f"- Time: {time_text}")
    for key, label in (("seed", "Seed"), ("seeds", "Seeds"), ("command", "Command"),
                       ("openmer_version", "openmer version")):
        if key in meta:
            out.append(f"- {label}: {_md_escape(_md_value(meta[key]))}")
    out += ["", "### All metadata (as in results.json)", "", *_meta_lines(meta), ""]
    if reference_rows:
        out += [
            "## Published numbers (reference, not measured here)",
            "",
            ("Copied from the publications named in each row, for comparison only; they were *not* produced by "
             "this run and may use other protocols, splits, encoders and training schedules. Percent (%)."),
            "",
            *_reference_table(reference_rows),
            "",
        ]
    return "\n".join(out)


# ----------------------------------------------------------------------------- entry point


def write_results(
    out_dir: str | Path,
    records: Iterable[Mapping[str, Any]],
    meta: Mapping[str, Any],
    *,
    reference_rows: Sequence[Mapping[str, Any]] | None = None,
    title: str | None = None,
    sections: Sequence[tuple[str, Sequence[str]]] = (),
) -> dict[str, Path]:
    """Write ``results.json`` and ``results.md`` into ``out_dir``.

    Args:
        out_dir: folder, created if needed.
        records: one dict per trial (see the module docstring); metrics as fractions.
        meta: how the run was made (machine, seeds, splits, timing, command, ...). The openmer
            version is added as ``openmer_version`` unless given.
        reference_rows: optional published numbers (dicts with e.g. ``method``, ``modalities``,
            ``level``, metric keys as *fractions*, ``source``); shown in results.md in a separate
            section marked as not measured here, and stored under ``"reference"`` in results.json.
        title: heading of results.md (default: "openmer results", plus ``meta["dataset"]`` if set).
        sections: extra ``(heading, markdown lines)`` a benchmark adds to results.md after the
            tables (e.g. the label vocabulary of a cross-corpus run); what they show must also
            be in ``records`` or ``meta``, which are what results.json keeps.

    Returns:
        ``{"json": <out_dir>/results.json, "markdown": <out_dir>/results.md}``.

    Raises:
        ValueError: if a record lacks a required key, a metric is not a fraction in [0, 1], or a
            reference metric is not a fraction.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    recs = _check_records(records)
    summary = summarise(recs)
    meta = {"openmer_version": __version__, **dict(meta)}
    payload: dict[str, Any] = {"meta": meta, "records": recs, "summary": summary}
    if reference_rows:
        payload["reference"] = [dict(r) for r in reference_rows]
    payload = _jsonable(payload)
    json_path = out / "results.json"
    md_path = out / "results.md"
    if title is None:
        title = "openmer results" + (f": {meta['dataset']}" if meta.get("dataset") else "")
    # render from the rounded values so results.md and results.json agree
    markdown = _render_markdown(payload["records"], payload["summary"], payload["meta"],
                                payload.get("reference"), title, sections)
    _write_text(json_path, json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n")
    _write_text(md_path, markdown)
    return {"json": json_path, "markdown": md_path}
