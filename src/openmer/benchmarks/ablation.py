"""HCEP ablations (Tables 5-7, Fig. 4) as one grid: one HCEP benchmark per named option set.

Each ablation is a set of :class:`~openmer.methods.hcep.HCEPConfig` fields (:data:`ABLATIONS`)
laid over a dataset's benchmark preset (:func:`~openmer.benchmarks.media.emodb_config`,
:func:`~openmer.benchmarks.media.meld_config`). Only HCEP is run; every record and saved run
is tagged ``method = "hcep[<name>]"``, so the results table has one row per ablation (and
openness level). Which paper table each name belongs to is in :data:`ABLATION_TABLES`; the
readings of the options are in ``docs/interpretation.md``, "Ablation options".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from openmer.backbones.factory import ProfileConfig
from openmer.benchmarks.media import MediaBenchmarkConfig, emodb_config, meld_config, run_media_benchmark
from openmer.benchmarks.runner import BenchmarkResult, Progress, benchmark_meta
from openmer.data.manifest import Manifest
from openmer.errors import ConfigError
from openmer.methods.hcep import HCEPConfig
from openmer.methods.hcep.model import check_ablation_options
from openmer.protocol import Protocol

logger = logging.getLogger(__name__)

#: name -> HCEPConfig fields. ``full`` is the paper's method (and Fig. 4's m = 2, text anchor).
ABLATIONS: dict[str, dict[str, Any]] = {
    # Table 5: components
    "full": {},
    "no_smep": {"use_smep": False},
    "no_cuep": {"use_cuep": False},  # also Table 6 top: random class features, both streams
    "no_loss_emo": {"use_loss_emo": False},
    "no_loss_osr": {"use_loss_osr": False},
    # Table 6 top: class features (prompted / random) x DPOL streams (both / negative only)
    "negative_only": {"dpol_streams": "negative_only"},
    "random_negative_only": {"use_cuep": False, "dpol_streams": "negative_only"},
    # Table 6 bottom: text prompts
    "fixed_text_prompts": {"text_prompts": "fixed"},
    "prompts_with_labels": {"text_prompts": "learnable_with_labels"},
    # Table 7: features of the DPOL streams
    "dpol_text_only": {"dpol_features": "text_only"},
    "dpol_multimodal_only": {"dpol_features": "multimodal_only"},
    # Fig. 4: number of prompt tokens m (m = 2 is "full") and the anchor modality
    "m1": {"n_prompt_tokens": 1},
    "m4": {"n_prompt_tokens": 4},
    "m8": {"n_prompt_tokens": 8},
    "anchor_video": {"anchor": "video"},
    "anchor_audio": {"anchor": "audio"},
    "anchor_none": {"anchor": "none"},
}

#: the paper's table or figure -> the ablation names that make its rows (``full`` in each).
ABLATION_TABLES: dict[str, tuple[str, ...]] = {
    "table5": ("full", "no_smep", "no_cuep", "no_loss_emo", "no_loss_osr"),
    "table6_streams": ("random_negative_only", "no_cuep", "negative_only", "full"),
    "table6_text_prompts": ("fixed_text_prompts", "full", "prompts_with_labels"),
    "table7": ("dpol_text_only", "dpol_multimodal_only", "full"),
    "fig4_tokens": ("m1", "full", "m4", "m8"),
    "fig4_anchor": ("full", "anchor_video", "anchor_audio", "anchor_none"),
}

def _emodb() -> tuple[Manifest, Protocol]:
    from openmer.data.builtin import load_emodb
    from openmer.protocol import load_protocol

    return load_emodb(), load_protocol("emodb")


def _meld() -> tuple[Manifest, Protocol]:
    from openmer.data.builtin import load_meld
    from openmer.protocol import load_protocol

    return load_meld(split="all"), load_protocol("meld")


#: dataset -> (preset, loader of (manifest, protocol))
DATASETS: dict[str, tuple[Callable[..., MediaBenchmarkConfig], Callable[[], tuple[Manifest, Protocol]]]] = {
    "emodb": (emodb_config, _emodb),
    "meld": (meld_config, _meld),
}


def ablation_tag(name: str) -> str:
    """The ``method`` value of an ablation's records: ``"hcep[<name>]"``."""
    return f"hcep[{name}]"


def select_ablations(names: Sequence[str] | None, base: MediaBenchmarkConfig) -> tuple[list[str], dict[str, str]]:
    """The ablations to run on ``base``'s dataset, and those left out with the reason.

    Args:
        names: ablation names (in the order to run), or ``None`` for every ablation that applies
            to the dataset's modalities (e.g. EmoDB has no video, so ``anchor_video`` is left out).
        base: the dataset's preset.

    Returns:
        ``(names to run, {left-out name: reason})``.

    Raises:
        ConfigError: an unknown name (the message lists the choices), a repeated name, or a
            name asked for explicitly that does not apply to the dataset.
    """
    explicit = names is not None
    names = list(ABLATIONS) if names is None else list(names)
    unknown = [n for n in names if n not in ABLATIONS]
    if unknown:
        raise ConfigError(f"unknown ablation(s) {unknown}; choose from {', '.join(ABLATIONS)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"repeated ablation names in {names}")
    if not names:
        raise ConfigError("no ablation selected")
    run, skipped = [], {}
    for name in names:
        try:
            cfg = HCEPConfig.from_dict({"profile": ProfileConfig(name=base.profile).to_dict(),
                                        "modalities": list(base.modalities), **base.hcep_options, **ABLATIONS[name]})
            check_ablation_options(cfg, cfg.modalities)
        except ConfigError as exc:
            if explicit:
                raise ConfigError(f"ablation {name!r} does not apply to {base.dataset}: {exc}") from exc
            skipped[name] = str(exc)
            logger.info("ablation %s left out on %s: %s", name, base.dataset, exc)
            continue
        run.append(name)
    return run, skipped


def run_ablations(base: MediaBenchmarkConfig, manifest: Manifest, protocol: Protocol, *,
                  names: Sequence[str] | None = None, progress: Progress | None = None) -> BenchmarkResult:
    """Run HCEP once per ablation on a dataset, with ``base``'s levels, splits and training.

    Args:
        base: the dataset's preset; its ``methods`` are ignored (HCEP only) and each ablation's
            options are laid over its ``hcep_options``.
        manifest, protocol: the dataset and its openness levels / splits.
        names: which ablations (default: every one that applies, see :func:`select_ablations`).
        progress: ``progress(done, total, message)`` over all trials of all ablations.

    Returns:
        :class:`BenchmarkResult`, records and runs tagged ``"hcep[<name>]"``; ``meta`` holds the
        options of each ablation, the left-out ones, and seconds per ablation.

    Raises:
        ConfigError: see :func:`select_ablations`.
    """
    t0 = time.perf_counter()
    base = base.model_copy(update={"methods": ("hcep",)})
    selected, skipped = select_ablations(names, base)
    records: list[dict[str, Any]] = []
    runs = []
    seconds: dict[str, float] = {}
    encoders: Any = None
    from openmer.benchmarks import media  # its load_profile/profile_config: one loading path (and one to stub in tests)

    loaded = media.load_profile(media.profile_config(base.profile), modalities=tuple(set(base.modalities) | {"text"}))
    for i, name in enumerate(selected):
        cfg = base.model_copy(update={"hcep_options": {**base.hcep_options, **ABLATIONS[name]}})
        tag = ablation_tag(name)
        sub = None
        if progress:
            def sub(done: int, total: int, message: str, i: int = i, tag: str = tag) -> None:
                progress(i * total + done, len(selected) * total, f"{tag} {message}")
        t = time.perf_counter()
        result = run_media_benchmark(cfg, manifest, protocol, progress=sub, encoders=loaded)
        seconds[name] = round(time.perf_counter() - t, 1)
        encoders = result.meta.get("encoders", encoders)
        for record in result.records:
            record["method"] = tag
        for run in result.runs:
            run.method = tag
        records += result.records
        runs += result.runs
        logger.info("ablation %s done in %.1f s", name, seconds[name])
    meta = benchmark_meta(base, protocol, t0, encoders=encoders,
                          ablations={name: ABLATIONS[name] for name in selected},
                          ablations_left_out=skipped, ablation_seconds=seconds,
                          ablation_tables={k: [n for n in v if n in selected] for k, v in ABLATION_TABLES.items()})
    return BenchmarkResult(records=records, runs=runs, meta=meta)


def run_ablation_grid(dataset: str = "emodb", names: Sequence[str] | None = None, quick: bool = True,
                      progress: Progress | None = None, *, seed: int = 0) -> BenchmarkResult:
    """The HCEP ablation grid on a dataset's benchmark preset (HCEP Tables 5-7, Fig. 4).

    Args:
        dataset: ``"emodb"`` or ``"meld"`` (the presets of :mod:`openmer.benchmarks.media`).
        names: ablation names from :data:`ABLATIONS` (default: every one that applies).
        quick: the preset's quick variant (fewer levels, splits, epochs).
        progress: ``progress(done, total, message)``.
        seed: training seed of the preset.

    Returns:
        :class:`BenchmarkResult` with one ``"hcep[<name>]"`` method per ablation.

    Raises:
        ConfigError: an unknown dataset or ablation name.
        SharedDataMissing: the dataset or encoders are not in ``../shared``.
    """
    if dataset not in DATASETS:
        raise ConfigError(f"no ablation preset for dataset {dataset!r}; choose from {', '.join(DATASETS)}")
    preset, load = DATASETS[dataset]
    base = preset(seed=seed, quick=quick)
    select_ablations(names, base)  # fail on a bad name before loading data
    manifest, protocol = load()
    return run_ablations(base, manifest, protocol, names=names, progress=progress)
