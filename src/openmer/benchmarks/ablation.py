"""HCEP's ablations (Tables 5-7, Fig. 4) as one grid, with the paper's rows beside ours.

Each ablation (:data:`ABLATIONS`) is one benchmark on a dataset's preset (the preset of the
benchmark of that name, when it trains HCEP on clips: :func:`ablation_preset`):
:class:`~openmer.methods.hcep.HCEPConfig` fields laid over the preset, and, for the rows that no
HCEPConfig option gives, the model to train (:mod:`openmer.benchmarks.ablation_models`) or the
ARPL baseline on unprompted features. Every record and saved run is tagged ``"<head>[<name>]"``
(``hcep[full]``, ``arpl[baseline]``), one results row per ablation and openness level.

:data:`TABLES` lists the paper's rows of each table with the ablation that reproduces each one;
``openmer ablate --table 5|6|7|fig4`` runs exactly those, and :func:`beside_paper` puts our mean
over levels next to the paper's published numbers (HCEP, 10-emotion MAFW, means over four
opennesses: labelled reference, from :mod:`openmer.reference`). The readings are in
``docs/interpretation.md``, "Ablation options".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from openmer.backbones.base import Modality
from openmer.backbones.factory import ProfileConfig
from openmer.benchmarks.ablation_models import smep_prompted_arpl
from openmer.benchmarks.media import MediaBenchmarkConfig, PromptedBuilder, run_media_benchmark
from openmer.benchmarks.registry import BENCHMARKS, plan_benchmark
from openmer.benchmarks.runner import BenchmarkResult, Progress
from openmer.benchmarks.trials import benchmark_meta
from openmer.data.manifest import Manifest
from openmer.datasets import DATASETS, load_with_protocol
from openmer.errors import ConfigError
from openmer.methods.hcep import HCEPConfig
from openmer.methods.hcep.model import check_ablation_options
from openmer.protocol import Protocol
from openmer.reference import paper_row, paper_rows

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ablation:
    """One ablation: what is trained, on a preset's data, levels and splits.

    Attributes:
        options: :class:`HCEPConfig` fields laid over the preset's ``hcep_options``.
        build: the model to train instead of :class:`HCEP` (``build(config, known, encoders)``),
            for rows that no option gives; ``None`` = HCEP.
        baseline: a registered feature method trained on the cached *unprompted* features
            instead (Table 5 "Baseline": ``"arpl"``); then ``options`` and ``build`` are unused.
        head: what scores the clips, the tag's prefix: ``"hcep"`` (DPOL) or ``"arpl"``.
    """

    options: Mapping[str, Any] = field(default_factory=dict)
    build: PromptedBuilder | None = None
    baseline: str | None = None
    head: str = "hcep"

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (for ``results.json``)."""
        out: dict[str, Any] = {"options": dict(self.options)}
        if self.build is not None:
            out["model"] = getattr(self.build, "__qualname__", repr(self.build))
        if self.baseline is not None:
            out["model"] = f"{self.baseline} on the cached unprompted features"
        return out


_NO_CUEP_NO_LOSSES = {"use_cuep": False, "use_loss_emo": False, "use_loss_osr": False}

#: name -> ablation. ``full`` is the paper's method (and Fig. 4's m = 2, text anchor).
ABLATIONS: dict[str, Ablation] = {
    "full": Ablation(),
    # Table 5, adding components one at a time
    "baseline": Ablation(baseline="arpl", head="arpl"),
    "baseline_smep": Ablation(_NO_CUEP_NO_LOSSES, build=smep_prompted_arpl, head="arpl"),
    "smep_loss_emo": Ablation({"use_cuep": False, "use_loss_osr": False}),
    "cuep_loss_osr": Ablation({"use_smep": False, "use_loss_emo": False}),
    "no_loss_emo": Ablation({"use_loss_emo": False}),  # Baseline+SMEP+CUEP+L_osr
    # leave-one-out (not rows of the paper's Table 5, which adds components)
    "no_smep": Ablation({"use_smep": False}),
    "no_cuep": Ablation({"use_cuep": False}),  # Table 6 top: random class features, both streams
    "no_loss_osr": Ablation({"use_loss_osr": False}),
    # Table 6 top: class features (prompted / random) x DPOL streams (both / negative only)
    "negative_only": Ablation({"dpol_streams": "negative_only"}),
    "random_negative_only": Ablation({"use_cuep": False, "dpol_streams": "negative_only"}),
    # Table 6 bottom: CUEP's text prompts (fixed templates w/ labels = full)
    "cuep_text_tokens": Ablation(options={"cuep_text": "learnable_tokens"}),
    "cuep_text_tokens_labels": Ablation(options={"cuep_text": "learnable_tokens_with_labels"}),
    # SMEP's text tokens (not rows of the paper's tables)
    "fixed_text_prompts": Ablation({"text_prompts": "fixed"}),
    "prompts_with_labels": Ablation({"text_prompts": "learnable_with_labels"}),
    # Table 7: features of the DPOL streams
    "dpol_text_only": Ablation({"dpol_features": "text_only"}),
    "dpol_multimodal_only": Ablation({"dpol_features": "multimodal_only"}),
    # Fig. 4: number of prompt tokens m (m = 2 is "full") and the anchor modality
    "m1": Ablation({"n_prompt_tokens": 1}),
    "m4": Ablation({"n_prompt_tokens": 4}),
    "m8": Ablation({"n_prompt_tokens": 8}),
    "anchor_video": Ablation({"anchor": "video"}),
    "anchor_audio": Ablation({"anchor": "audio"}),
    "anchor_none": Ablation({"anchor": "none"}),
}


@dataclass(frozen=True)
class AblationTable:
    """A table (or figure) of the paper: its rows, each ``(ablation name, the paper's row label)``.

    ``paper`` is the table's name in :mod:`openmer.reference` (``None``: the paper gives no numbers,
    as for Fig. 4); a row label is the row as printed there.
    """

    title: str
    rows: tuple[tuple[str, str], ...]
    paper: str | None = None

    @property
    def ablations(self) -> list[str]:
        """The distinct ablations to run, in row order (``full`` may make several rows)."""
        return list(dict.fromkeys(name for name, _ in self.rows))


#: ``openmer ablate --table KEY`` -> the table's rows, in the paper's order
TABLES: dict[str, AblationTable] = {
    "5": AblationTable("HCEP Table 5: modules, added one at a time", (
        ("baseline", "Baseline"),
        ("baseline_smep", "Baseline+SMEP"),
        ("smep_loss_emo", "Baseline+SMEP+L_emo"),
        ("cuep_loss_osr", "Baseline+CUEP+L_osr"),
        ("no_loss_emo", "Baseline+SMEP+CUEP+L_osr"),
        ("full", "Baseline+SMEP+CUEP+L_emo+L_osr"),
    ), paper="Table 5"),
    "6": AblationTable("HCEP Table 6: CUEP's class features (top) and text prompts (bottom)", (
        ("random_negative_only", "Random neg only"),
        ("no_cuep", "Random pos & neg"),
        ("negative_only", "Prompted neg only"),
        ("full", "Prompted neg & pos"),
        ("cuep_text_tokens", "Learnable tokens w/o labels"),
        ("cuep_text_tokens_labels", "Learnable tokens w/ labels"),
        ("full", "Fixed templates w/ labels"),
    ), paper="Table 6"),
    "7": AblationTable("HCEP Table 7: features of the DPOL streams", (
        ("dpol_text_only", "Textual-only Features"),
        ("dpol_multimodal_only", "Multimodal-only Features"),
        ("full", "Hybrid Features Setting"),
    ), paper="Table 7"),
    "fig4": AblationTable("HCEP Fig. 4: prompt tokens m and the anchor modality (no published table)", (
        ("m1", "m = 1"), ("full", "m = 2, text anchor"), ("m4", "m = 4"), ("m8", "m = 8"),
        ("anchor_video", "video anchor"), ("anchor_audio", "audio anchor"), ("anchor_none", "no anchor"),
    )),
}


def ablation_preset(dataset: str, *, seed: int = 0, quick: bool = True) -> MediaBenchmarkConfig:
    """The preset the ablations of ``dataset`` are laid over: benchmark ``dataset``'s, when its plan
    trains HCEP on the clips of one built-in dataset that holds media (a :class:`MediaBenchmarkConfig`
    whose ``dataset`` is declared ``holds="media"`` in :data:`openmer.datasets.DATASETS`).

    Raises:
        ConfigError: no such benchmark, or one whose preset is not HCEP on clips (the message lists
            the benchmarks that are).
    """
    try:
        config = plan_benchmark(dataset, seed=seed, quick=quick).config
    except ConfigError:
        config = None
    if not _on_media(config, dataset):
        raise ConfigError(f"no ablation preset for dataset {dataset!r}; choose from {', '.join(ablation_datasets())}")
    return config


def _on_media(config: object, benchmark: str) -> bool:
    """Whether ``config`` is benchmark ``benchmark``'s own dataset benchmark: HCEP on the clips of the
    built-in media dataset the benchmark is named after (a benchmark that reuses a dataset's preset
    for another purpose, e.g. ``robustness`` on EmoDB, is not that dataset's ablation preset)."""
    return (isinstance(config, MediaBenchmarkConfig) and config.dataset == benchmark
            and config.dataset in DATASETS and DATASETS.get(config.dataset).holds == "media")


def ablation_datasets() -> list[str]:
    """The benchmarks whose plan (on ``../shared``, no ``--root``) trains HCEP on the clips of one
    built-in dataset that holds media: the datasets ``openmer ablate --data`` takes."""
    names = []
    for name in BENCHMARKS:
        try:
            plan = plan_benchmark(name, quick=True)
        except ConfigError:  # e.g. a paper setting, which needs --root
            continue
        if _on_media(plan.config, name):
            names.append(name)
    return names


def ablation_tag(name: str) -> str:
    """The ``method`` value of an ablation's records: ``"<head>[<name>]"``, e.g. ``"hcep[full]"``."""
    return f"{ABLATIONS[name].head}[{name}]"


def table_ablations(table: str) -> list[str]:
    """The ablations of one of :data:`TABLES` (``"5"``, ``"6"``, ``"7"``, ``"fig4"``).

    Raises:
        ConfigError: an unknown table (the message lists the choices).
    """
    if table not in TABLES:
        raise ConfigError(f"no ablation table {table!r}; choose from {', '.join(TABLES)}")
    return TABLES[table].ablations


def select_ablations(names: Sequence[str] | None, base: MediaBenchmarkConfig, *,
                     strict: bool | None = None) -> tuple[list[str], dict[str, str]]:
    """The ablations to run on ``base``'s dataset, and those left out with the reason.

    Args:
        names: ablation names (in the order to run), or ``None`` for every ablation that applies
            to the dataset's modalities (e.g. EmoDB has no video, so ``anchor_video`` is left out).
        base: the dataset's preset.
        strict: a name that does not apply is an error (default: when ``names`` are given);
            otherwise it is left out with its reason.

    Returns:
        ``(names to run, {left-out name: reason})``.

    Raises:
        ConfigError: an unknown name (the message lists the choices), a repeated name, or a
            name asked for explicitly that does not apply to the dataset.
    """
    explicit = names is not None if strict is None else strict
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
                                        "modalities": list(base.modalities), **base.hcep_options,
                                        **ABLATIONS[name].options})
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
                  names: Sequence[str] | None = None, strict: bool | None = None,
                  progress: Progress | None = None) -> BenchmarkResult:
    """Run each ablation once on a dataset, with ``base``'s levels, splits and training.

    Args:
        base: the dataset's preset; its ``methods`` are ignored. HCEP rows are laid over its
            ``hcep_options`` and trained with its ``hcep_train``; the ``baseline`` row is its ARPL
            baseline (``baseline_train``).
        manifest, protocol: the dataset and its openness levels / splits.
        names: which ablations (default: every one that applies, see :func:`select_ablations`).
        strict: see :func:`select_ablations`.
        progress: ``progress(done, total, message)`` over all trials of all ablations.

    Returns:
        :class:`BenchmarkResult`, records and runs tagged with :func:`ablation_tag`; ``meta`` holds
        each ablation's description, the left-out ones, seconds per ablation, and, for every
        table whose rows were all asked for, its rows beside the paper's (:func:`beside_paper`).

    Raises:
        ConfigError: see :func:`select_ablations`.
    """
    t0 = time.perf_counter()
    base = base.model_copy(update={"methods": ("hcep",)})
    selected, skipped = select_ablations(names, base, strict=strict)
    records: list[dict[str, Any]] = []
    runs = []
    seconds: dict[str, float] = {}
    encoders: Any = None
    from openmer.benchmarks import trials  # its load_encoders/profile_config: one loading path (one to stub)

    order: tuple[Modality, ...] = ("video", "audio", "text")
    mods = tuple(m for m in order if m in base.modalities or m == "text")  # the preset's, and text for CUEP
    loaded = {str(m): e for m, e in trials.load_encoders(trials.profile_config(base.profile).specs(mods)).items()}
    for i, name in enumerate(selected):
        ablation = ABLATIONS[name]
        cfg = base.model_copy(update={"hcep_options": {**base.hcep_options, **ablation.options},
                                      "methods": (ablation.baseline or "hcep",), "posthoc": (), "clip_posthoc": ()})
        tag = ablation_tag(name)
        sub = None
        if progress:
            def sub(done: int, total: int, message: str, i: int = i, tag: str = tag) -> None:
                progress(i * total + done, len(selected) * total, f"{tag} {message}")
        t = time.perf_counter()
        result = run_media_benchmark(cfg, manifest, protocol, progress=sub, encoders=loaded, build=ablation.build)
        seconds[name] = round(time.perf_counter() - t, 1)
        encoders = result.meta.get("encoders", encoders)
        for record in result.records:
            record["method"] = tag
        for run in result.runs:
            run.method = tag
        records += result.records
        runs += result.runs
        logger.info("ablation %s done in %.1f s", name, seconds[name])
    whole = [key for key, table in TABLES.items() if set(table.ablations) <= set(selected) | set(skipped)]
    meta = benchmark_meta(base, protocol, t0, encoders=encoders,
                          ablations={name: ABLATIONS[name].describe() for name in selected},
                          ablations_left_out=skipped, ablation_seconds=seconds,
                          ablation_tables={key: [n for n in TABLES[key].ablations if n in selected] for key in TABLES},
                          beside_paper={key: beside_paper(records, key) for key in whole})
    return BenchmarkResult(records=records, runs=runs, meta=meta)


def beside_paper(records: Sequence[Mapping[str, Any]], table: str) -> list[dict[str, Any]]:
    """One row per row of the paper's ``table``: our measured numbers beside the published ones.

    Ours: for the row's ablation, the mean over openness levels of the mean over splits (as the
    "Mean over levels" column of ``results.md``), fractions. The paper's (HCEP, 10-emotion MAFW,
    means over O(8:2), O(6:4), O(4:6), O(2:8)): reference numbers, not measured here, ``None``
    where the paper has no table (Fig. 4).

    Returns:
        ``[{"row", "ablation", "method", "levels", "auroc", "oscr", "paper_auroc", "paper_oscr",
        "paper_source"}, ...]``; ``auroc``/``oscr`` are ``None`` for an ablation without records.

    Raises:
        ConfigError: an unknown table.
    """
    table_ablations(table)
    spec = TABLES[table]
    out = []
    for name, label in spec.rows:
        tag = ablation_tag(name)
        mine = [r for r in records if r["method"] == tag]
        levels = list(dict.fromkeys(r["level"] for r in mine))
        per_level = {m: [float(np.mean([r[m] for r in mine if r["level"] == lv])) for lv in levels]
                     for m in ("auroc", "oscr")}
        ref = paper_row(spec.paper, label) if spec.paper is not None else None
        out.append({
            "row": label, "ablation": name, "method": tag, "levels": levels,
            "auroc": float(np.mean(per_level["auroc"])) if mine else None,
            "oscr": float(np.mean(per_level["oscr"])) if mine else None,
            "paper_auroc": None if ref is None else ref["auroc"],
            "paper_oscr": None if ref is None else ref["oscr"],
            "paper_source": None if ref is None else ref["source"],
        })
    return out


def beside_paper_markdown(rows: Sequence[Mapping[str, Any]], table: str) -> list[str]:
    """:func:`beside_paper` rows as a markdown table (percent; the paper's columns labelled reference)."""
    def pct(v: Any, digits: int) -> str:
        return "—" if v is None else f"{100 * float(v):.{digits}f}"

    spec = TABLES[table]
    ref = (f"{spec.paper}, MAFW, mean of 4 levels (reference, not measured here)" if spec.paper
           else "no published numbers")
    levels = ", ".join(dict.fromkeys(lv for r in rows for lv in r["levels"]))
    lines = [(f"{spec.title}. Ours: mean over the levels run ({levels}) "
              f"of the mean over splits, on this dataset and these encoders. Paper: {ref}. Percent (%)."), "",
             "| Paper's row | Ablation | AUROC ours (%) | OSCR ours (%) | AUROC paper (%) | OSCR paper (%) |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['row']} | {r['method']} | {pct(r['auroc'], 1)} | {pct(r['oscr'], 1)} | "
              f"{pct(r['paper_auroc'], 2)} | {pct(r['paper_oscr'], 2)} |" for r in rows]
    return lines


def reference_rows(tables: Sequence[str]) -> list[dict[str, Any]]:
    """The paper's published rows of the given :data:`TABLES` keys (for ``results.md``, labelled reference)."""
    return [row for key in tables if TABLES[key].paper for row in paper_rows(table=TABLES[key].paper)]


def run_ablation_grid(dataset: str = "emodb", names: Sequence[str] | None = None, quick: bool = True,
                      progress: Progress | None = None, *, seed: int = 0, table: str | None = None) -> BenchmarkResult:
    """HCEP's ablations on a dataset's benchmark preset (HCEP Tables 5-7, Fig. 4).

    Args:
        dataset: a benchmark whose preset trains HCEP on clips (:func:`ablation_datasets`: ``"emodb"``,
            ``"meld"``); its preset and its built-in dataset are used.
        names: ablation names from :data:`ABLATIONS` (default: every one that applies).
        quick: the preset's quick variant (fewer levels, splits, epochs).
        progress: ``progress(done, total, message)``.
        seed: training seed of the preset.
        table: run exactly the rows of this one of :data:`TABLES` (``"5"``, ``"6"``, ``"7"``,
            ``"fig4"``); not together with ``names``.

    Returns:
        :class:`BenchmarkResult`, one tagged method per ablation.

    Raises:
        ConfigError: an unknown dataset, table or ablation name, ``table`` with ``names``, or a
            name that does not apply to the dataset (a *table's* row that does not apply, e.g.
            Fig. 4's video anchor on EmoDB, is left out and recorded in ``meta.ablations_left_out``).
        SharedDataMissing: the dataset or encoders are not in ``../shared``.
    """
    base = ablation_preset(dataset, seed=seed, quick=quick)
    if table is not None:
        if names is not None:
            raise ConfigError("choose the ablations by table or by name, not both")
        names = table_ablations(table)
    strict = None if table is None else False
    select_ablations(names, base, strict=strict)  # fail on a bad name before loading data
    data, protocol = load_with_protocol(base.dataset)
    manifest = cast(Manifest, data)  # the preset's dataset is declared holds="media": its loader gives a Manifest
    return run_ablations(base, manifest, protocol, names=names, strict=strict, progress=progress)
