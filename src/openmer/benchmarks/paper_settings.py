"""The five O-MER settings of the HCEP paper as runnable benchmarks: plans over the one trial loop.

The settings themselves (datasets, classes, openness levels, split rule, how the data is read) are
declarations on :data:`openmer.datasets.settings.SETTINGS`; their protocols are built on their
data by :func:`openmer.protocol.setting_protocol`. This module says what each benchmark runs on
them (:func:`paper_setting_config`) and registers ``openmer benchmark NAME`` for each.

Known/unknown splits: ``mafw`` and ``mosei`` draw 4 known sets per level
(:func:`openmer.protocol.known_unknown_splits`, seed 0). ``mafw-compound``, ``ov-merd`` and
``cross`` have a *fixed* known set, hence one split per level; :func:`run_paper_setting` then
repeats training ``n_splits`` times with seeds ``seed + r`` and reports repeat ``r`` as split ``r``.
Unknown classes never reach training or validation (:func:`openmer.protocol.open_set_subsets`).

Caveats: the class lists, the MAFW fold, the OV-MERD split and the ``cross`` design are openmer's
reading, not confirmed from the paper text. The ``table`` numbers are inferred from the reference
file's note ("Tables 2-4"), not confirmed either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path

from openmer.benchmarks.journal import TrialJournal
from openmer.benchmarks.media import BASELINE_TRAIN, MediaBenchmarkConfig, run_media_benchmark
from openmer.benchmarks.registry import BenchmarkPlan, register_benchmark
from openmer.benchmarks.runner import BenchmarkResult
from openmer.benchmarks.trials import Progress
from openmer.datasets.settings import (
    PROTOCOL_SEED,
    SETTINGS,
    PaperSetting,
    SettingData,
    get_setting,
    load_setting,
    openness_table,
    parse_roots,
)
from openmer.training import TrainConfig


# ------------------------------------------------------------------------------------- running
def paper_setting_config(name: str, *, profile: str = "paper", quick: bool = False, seed: int = 0
                         ) -> MediaBenchmarkConfig:
    """The benchmark configuration of a setting: HCEP, ARPL and MSP on text + video + audio.

    The full preset is the paper's schedule (HCEP Sec. 4.1.4: 150 epochs, SGD lr 5e-4, momentum
    0.9, batch 32; :class:`openmer.training.TrainConfig` defaults), 4 splits (or seed repeats) per
    level; meant for a GPU. ``quick``: the first level only, 1 split, HCEP 1 epoch (Adam lr 1e-3)
    on at most 64 clips with 1 s CUEP waveforms, baselines 15 epochs: a smoke run.
    """
    st = get_setting(name)
    hcep = (TrainConfig(epochs=1, optimizer="adam", lr=1e-3, batch_size=16, seed=seed) if quick
            else TrainConfig(seed=seed))
    levels = (st.levels[0],) if quick and not st.fixed_known else None
    return MediaBenchmarkConfig(
        dataset=name, profile=profile, modalities=("text", "video", "audio"), hcep_train=hcep, seed=seed,
        levels=levels, n_splits=1 if quick else 4, max_train_per_trial=64 if quick else None,
        hcep_options={"cuep_audio_samples": 16000} if quick else {},
        baseline_train=BASELINE_TRAIN.model_copy(update={"epochs": 15 if quick else 60}),
        preset_note=(
            f"quick preset ({name}): first level, 1 split, HCEP 1 epoch Adam on <= 64 clips, CUEP waveforms 1 s"
            if quick else
            f"paper preset ({name}): HCEP 150 epochs SGD lr 5e-4 batch 32, "
            + ("4 seed repeats of the fixed known set" if st.fixed_known else "4 known/unknown splits per level")
            + "; baselines: heads on cached unprompted features, Adam lr 1e-3, 60 epochs"),
    )


def run_paper_setting(name: str, root: str | Path | Mapping[str, str | Path] | Sequence[str], *,
                      profile: str = "paper", quick: bool = False, seed: int = 0,
                      config: MediaBenchmarkConfig | None = None,
                      progress: Progress | None = None, journal: TrialJournal | None = None) -> BenchmarkResult:
    """Run a paper setting on the user's copy of its dataset(s).

    Args:
        name: a key of :data:`SETTINGS`.
        root: the dataset folder as distributed; for ``cross`` ``{"mafw": DIR, "mosei": DIR}`` or
            ``["mafw=DIR", "mosei=DIR"]``.
        profile, quick, seed: as :func:`paper_setting_config` (ignored when ``config`` is given).
        config: a configuration to use instead of the preset.
        progress: ``progress(done, total, message)``.

    Returns:
        The records (one per method x level x split / repeat) and scores. For a fixed-known
        setting, repeat ``r`` (training seed ``seed + r``) is reported as split ``r``.

    Raises:
        ConfigError: unknown name or a bad ``root``.
        DataError: as :func:`load_setting` / :func:`openmer.protocol.setting_protocol`.
    """
    st = get_setting(name)
    cfg = config or paper_setting_config(name, profile=profile, quick=quick, seed=seed)
    data = load_setting(name, root)
    protocol = data.protocol(n_splits=cfg.n_splits)
    repeats = cfg.n_splits if st.fixed_known else None
    result = run_media_benchmark(cfg.model_copy(update={"n_splits": 1}) if repeats else cfg, data.manifest, protocol,
                                 progress=progress, repeats=repeats, journal=journal)
    if repeats:
        result.meta.update(config=cfg.to_dict(), repeats=repeats)
    result.meta["setting"] = {"name": st.name, "table": st.table, "description": st.description,
                              "paper_levels": st.levels, "levels": list(protocol.levels),
                              "n_clips": len(data.manifest)}
    return result


def plan_paper_setting(name: str, *, seed: int = 0, quick: bool = False, profile: str | None = None,
                       roots: Sequence[str] = ()) -> BenchmarkPlan:
    """``openmer benchmark <setting>``: :func:`paper_setting_config` (profile ``paper`` unless
    given) and :func:`run_paper_setting` on the dataset folders ``roots`` (:func:`parse_roots`).

    Raises:
        ConfigError: missing or malformed roots.
    """
    root = parse_roots(name, list(roots) or None)
    cfg = paper_setting_config(name, profile=profile or "paper", quick=quick, seed=seed)

    def run(cfg: MediaBenchmarkConfig, *, progress: Progress | None = None,
            journal: TrialJournal | None = None) -> BenchmarkResult:
        return run_paper_setting(name, root, config=cfg, progress=progress, journal=journal)

    return BenchmarkPlan(cfg, run)


for _name in SETTINGS:  # one benchmark per paper setting
    register_benchmark(_name)(partial(plan_paper_setting, _name))


__all__ = [
    "PROTOCOL_SEED", "SETTINGS", "PaperSetting", "SettingData", "get_setting", "load_setting", "openness_table",
    "paper_setting_config", "parse_roots", "plan_paper_setting", "run_paper_setting",
]
