"""Diagnostic for docs/discover.md: do the standardised unprompted features (CSSR's features, with
which HCEP's F_M gives the same clusters) group RAVDESS speech's unknown test clips by the spoken
statement ("Kids are talking by the door" / "Dogs are sitting by the door") instead of the emotion?

Run: ``python scripts/discover_statement_check.py`` (reads ../shared/data/ravdess-speech and the
offline encoders; features come from openmer's feature cache). Prints, per level and split 0-2,
the discovery rule's k and the ARI of its clusters against the emotions and against the statements.
"""

from __future__ import annotations

import csv

import numpy as np
from sklearn.metrics import adjusted_rand_score

from openmer.benchmarks.media import benchmark_encoders, dataset_preset
from openmer.data.clips import ClipDataset, vision_preprocess
from openmer.data.feature_blocks import fill_absent_blocks
from openmer.data.feature_cache import encode_features
from openmer.datasets import resolve_data
from openmer.discovery.cluster import cluster_rejected
from openmer.paths import default_cache_dir, require_shared
from openmer.protocol import load_protocol, open_set_subsets


def main() -> None:
    man, _ = resolve_data("ravdess-speech")
    protocol = load_protocol("ravdess-speech")
    with require_shared("data/ravdess-speech/labels.csv", "the RAVDESS speech labels").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    statement = {r[key]: r["statement"] for r in rows for key in ("clip_id", "av_clip_id")}
    cfg = dataset_preset("ravdess-speech")
    encoders = benchmark_encoders(cfg)
    clips = ClipDataset(man, [-1] * len(man), cfg.modalities, vision_preprocess=vision_preprocess(encoders))
    feats, present = encode_features(clips, encoders, cache_dir=default_cache_dir())
    names, groups = list(man.labels), [s.group or s.id for s in man]
    for level, splits in protocol.levels.items():
        for split in splits[:3]:
            sub = open_set_subsets(names, groups, split, protocol.partition)
            x, _ = fill_absent_blocks(feats, present, list(cfg.modalities), train_rows=sub["train"])
            x = np.asarray(x, float)
            mean, std = x[sub["train"]].mean(0), x[sub["train"]].std(0) + 1e-6
            test = np.asarray(sub["test"])
            unknown = test[[names[i] not in split.known_classes for i in test]]
            found = cluster_rejected((x[unknown] - mean) / std, seed=0)
            emotion = [names[i] for i in unknown]
            said = [statement[man[i].id] for i in unknown]
            print(f"{level} split {split.index}: k {found.k}, ARI vs emotion "
                  f"{adjusted_rand_score(emotion, found.labels):.3f}, vs statement "
                  f"{adjusted_rand_score(said, found.labels):.3f}")


if __name__ == "__main__":
    main()
