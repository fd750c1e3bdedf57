"""``openmer benchmark ravdess``: MSP and ARPL on RAVDESS face-AU and audio features.

Data: the 1440 RAVDESS speech clips as per-clip OpenFace action-unit vectors (35-d) and an
MFCC-derived audio contour (259-d) from ``../shared/data/ravdess-au-mfcc`` (see its FORMAT.md).
Protocol: ``src/openmer/splits/ravdess.json``: actor-independent partition (train actors 01-16,
val 17-20, test 21-24), 8 classes, openness O(6:2), O(4:4), O(2:6), 4 known/unknown splits each.
"""

from __future__ import annotations

from pathlib import Path

from openmer.benchmarks.runner import BenchmarkResult, FeatureBenchmarkConfig, Progress, run_feature_benchmark
from openmer.data.builtin import load_ravdess_features
from openmer.protocol import load_protocol

MODALITY_SETS = (("face_au",), ("audio",), ("face_au", "audio"))


def ravdess_config(*, seed: int = 0, quick: bool = False) -> FeatureBenchmarkConfig:
    """The default preset (or ``quick``: 1 split per level, 15 epochs).

    The preset trains small heads on frozen features with Adam (lr 1e-3, 60 epochs, batch 64,
    validation every 5 epochs), not the paper's 150-epoch SGD prompt schedule, which is for
    prompt learning on encoders (HCEP Sec. 4.1.4).
    """
    base = FeatureBenchmarkConfig(dataset="ravdess", modality_sets=MODALITY_SETS)
    train = base.train.model_copy(update={"seed": seed, **({"epochs": 15} if quick else {})})
    return base.model_copy(update={
        "train": train, "n_splits": 1 if quick else 4,
        "preset_note": ("quick preset: 1 split per level, 15 epochs" if quick else
                        "default preset: Adam lr 1e-3, 60 epochs, batch 64, selection on val accuracy every 5 epochs"),
    })


def run_ravdess(cfg: FeatureBenchmarkConfig | None = None, *, root: str | Path | None = None,
                progress: Progress | None = None) -> BenchmarkResult:
    """Run the RAVDESS benchmark.

    Raises:
        SharedDataMissing: ``../shared/data/ravdess-au-mfcc`` is absent.
    """
    cfg = cfg or ravdess_config()
    table = load_ravdess_features(root)
    protocol = load_protocol("ravdess")
    return run_feature_benchmark(cfg, table.features, table.labels, table.groups, protocol, progress=progress)
