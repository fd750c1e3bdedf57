"""The timeline benchmark's smoothing default, re-checked on the full preset (docs/timeline.md).

``python scripts/timeline_smoothing_check.py FULL_OUT VARIANT_OUT [--smooth 3]``: FULL_OUT is the
folder of a finished ``openmer benchmark timeline --data emodb --out FULL_OUT`` (its trained runs,
sessions and window-feature cache are copied, so only the timelines differ); the benchmark runs
again with ``--smooth`` into VARIANT_OUT, then both are printed as mean ± std over every
(level, split) record without cue offsets.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from openmer.timeline.benchmark import run_timeline_benchmark, summarise, timeline_config


def rows(results: Path, name: str) -> list[str]:
    """The benchmark's own "all" rows (:func:`summarise`: mean ± std over every split of every level),
    without cue offsets."""
    records = json.loads(results.read_text())["records"]
    return [f"| {name} | {r['method']} | {r['n']} | "
            + " | ".join(f"{r[k][0]:.3f} ± {r[k][1]:.3f}" for k in ("eder", "frame_auroc", "frame_oscr", "unknown_f1"))
            + " |" for r in summarise(records) if r["level"] == "all" and r["cue_offset_s"] == 0.0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("full", type=Path)
    ap.add_argument("variant", type=Path)
    ap.add_argument("--smooth", type=int, default=3)
    a = ap.parse_args()
    if not (a.variant / "runs").exists():
        shutil.copytree(a.full / "runs", a.variant / "runs")
        shutil.copytree(a.full / "cache", a.variant / "cache")
    data = json.loads((a.full / "results.json").read_text())["meta"]["config"]["data"]
    run_timeline_benchmark(timeline_config(data=data).model_copy(update={"smooth": a.smooth}), a.variant)
    print("| window / hop / smoothing | method | records | EDER | frame AUROC | frame OSCR | unknown F1 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for line in rows(a.full / "results.json", "4 s / 2 s / 1 (default)") + rows(a.variant / "results.json",
                                                                                 f"4 s / 2 s / {a.smooth}"):
        print(line)


if __name__ == "__main__":
    main()
