"""Join the records of several ``openmer benchmark timeline`` runs on the same data and settings
(e.g. ``--methods msp,arpl`` and a later ``--methods hcep``: the sessions are seeded, so they are
the same) into one ``results.json`` and a ``results.md`` written by the benchmark's own
:func:`~openmer.timeline.benchmark.results_markdown`.

``python scripts/timeline_join_results.py OUT RESULTS_JSON [RESULTS_JSON ...]``: the meta is the
last run's, with ``seconds`` summed and ``runs`` (each run's methods, seconds and machine); a line
after the table says how long each run took.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from openmer.errors import ConfigError
from openmer.files import atomic_write_json, atomic_write_text
from openmer.timeline.benchmark import TimelineBenchmarkConfig, results_markdown


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("results", type=Path, nargs="+")
    a = ap.parse_args()
    runs = [json.loads(p.read_text(encoding="utf-8")) for p in a.results]
    # each run's settings through the config model (a key added later takes its default), methods aside
    settings = [{k: v for k, v in TimelineBenchmarkConfig(**r["meta"]["config"]).model_dump(mode="json").items()
                 if k != "methods"} for r in runs]
    if any(s != settings[0] for s in settings):
        raise ConfigError("the runs differ in more than their methods: " + "; ".join(map(str, settings)))
    methods = list(dict.fromkeys(m for r in runs for m in r["meta"]["config"]["methods"]))
    meta = {**runs[-1]["meta"], "config": {**settings[0], "methods": methods},
            "seconds": round(sum(r["meta"]["seconds"] for r in runs), 1),
            "runs": [{"methods": r["meta"]["config"]["methods"], "seconds": r["meta"]["seconds"],
                      "machine": r["meta"]["machine"]} for r in runs]}
    records = [rec for r in runs for rec in r["records"]]
    cfg = TimelineBenchmarkConfig(**meta["config"])
    joined = ", ".join(f"{'/'.join(r['methods'])} {r['seconds'] / 60:.1f} min" for r in meta["runs"])
    a.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(a.out / "results.json", {"records": records, "meta": meta}, allow_nan=False)
    atomic_write_text(a.out / "results.md", results_markdown(records, cfg, meta)
                      + f"\nJoined from {len(runs)} runs (wall time each): {joined}.\n")
    print(f"{len(records)} records of {', '.join(methods)} -> {a.out}")


if __name__ == "__main__":
    main()
