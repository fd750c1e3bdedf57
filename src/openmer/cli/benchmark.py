"""``openmer benchmark NAME``: the main jobs on real data; ``openmer openness``: the paper's levels."""

from __future__ import annotations

import shlex
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from openmer.cli.app import app
from openmer.cli.common import MODELS_DIR_OPTION, ProgressCallback, console, handle_errors, rich_progress
from openmer.config import OpenmerConfig
from openmer.errors import ConfigError


class BenchmarkName(str, Enum):
    """The names of :data:`openmer.benchmarks.registry.BENCHMARKS`, listed here so that ``--help``
    shows them without importing the benchmarks (a test keeps the two the same)."""

    ravdess = "ravdess"
    emodb = "emodb"
    ravdess_speech = "ravdess-speech"
    cross_speech = "cross-speech"
    meld = "meld"
    mafw = "mafw"
    mosei = "mosei"
    mafw_compound = "mafw-compound"
    ov_merd = "ov-merd"
    cross = "cross"
    timeline = "timeline"
    robustness = "robustness"


def _posthoc_update(cfg: OpenmerConfig, name: str, score: str) -> dict[str, tuple[str, ...]]:
    """The config fields that ``--score`` sets: the post-hoc scores of the feature heads and of
    the methods on clips that have a head.

    Raises:
        ConfigError: an unregistered score (the message lists the choices), or a benchmark
            without post-hoc scores.
    """
    from openmer.methods.posthoc import get_score

    names = () if score.strip() == "none" else tuple(n.strip() for n in score.split(",") if n.strip())
    for n in names:
        get_score(n)
    fields: dict[str, tuple[str, ...]] = {f: names for f in ("posthoc", "clip_posthoc") if f in type(cfg).model_fields}
    if not fields:
        raise ConfigError(f"--score applies to benchmarks with post-hoc scores, not {name}")
    return fields


def selection_update(methods: str | None, levels: str | None, splits: int | None) -> dict[str, Any]:
    """The config fields that ``--methods``, ``--levels`` and ``--splits`` set (comma-separated lists)."""
    update: dict[str, Any] = {}
    if methods is not None:
        update["methods"] = tuple(m.strip() for m in methods.split(",") if m.strip())
    if levels is not None:
        update["levels"] = tuple(lv.strip() for lv in levels.split(",") if lv.strip())
    if splits is not None:
        update["n_splits"] = splits
    return update


@app.command()
@handle_errors
def benchmark(
    name: BenchmarkName = typer.Argument(..., help="Which benchmark to run."),
    out: Path = typer.Option(
        Path("runs") / "benchmark", "--out",
        help="Output folder (results.json, results.md, figures; trials.jsonl: the finished trials, read back "
             "by a rerun with the same settings)."),
    root: list[str] = typer.Option(
        None, "--root",
        help="Dataset folder as distributed, for mafw, mosei, mafw-compound, ov-merd; "
             "cross: --root mafw=MAFW_DIR --root mosei=MOSEI_DIR; ravdess: the AU/MFCC feature folder."),
    profile: str = typer.Option(
        None, "--profile", help="Encoder profile: 'paper' (default for the paper settings) or 'offline' "
                                "(default for ravdess, emodb, meld, cross-speech); 'light' is 'offline' by name."),
    models_dir: Path | None = MODELS_DIR_OPTION,
    seed: int = typer.Option(0, help="Training seed (the known/unknown splits are fixed)."),
    quick: bool = typer.Option(False, "--quick", help="Smoke-run preset: fewer levels, splits and epochs."),
    audio_prompt_entry: str | None = typer.Option(
        None, "--audio-prompt-entry",
        help="HCEP's audio prompts: waveform (paper, 2 x 8000 samples) or features (2 tokens after the conv "
             "front end)."),
    methods: str | None = typer.Option(None, "--methods", help="Comma-separated subset of the methods, e.g. hcep."),
    schedule: str = typer.Option(
        "preset", "--schedule",
        help="emodb, meld, ravdess, cross-speech: 'preset' (shortened HCEP training that fits a 2-core CPU) or 'paper' "
             "(HCEP Sec. 4.1.4: 150 epochs SGD lr 5e-4, all training clips; meant for a GPU)."),
    budget: str = typer.Option(
        "preset", "--budget",
        help="emodb, meld, ravdess, cross-speech: 'preset' (HCEP and the feature heads each on the preset's own "
             "schedule) or 'matched' (every method on HCEP's optimiser, schedule, epochs, batch, clips and selection "
             "rule)."),
    levels: str | None = typer.Option(
        None, "--levels", help="Comma-separated subset of the openness levels, e.g. 'O(5:2)'."),
    splits: int | None = typer.Option(None, "--splits", min=1, help="Run only the first N splits of each level."),
    score: str | None = typer.Option(
        None, "--score",
        help="Post-hoc scores reported beside each method's own, on every trained classifier head (HCEP: its DPOL "
             "logits): comma-separated names (msp, max_logit, energy, entropy, mahalanobis, knn, vim) or 'none'. "
             "Default: all on the feature heads, max_logit and energy on HCEP."),
    data: str | None = typer.Option(
        None, "--data",
        help="timeline: the speech dataset (emodb, ravdess-speech); robustness: emodb, ravdess-speech, meld."),
    cue_offsets: str | None = typer.Option(
        None, "--cue-offsets",
        help="timeline: also score each session with its transcript cues shifted later by these seconds, "
             "e.g. 0.5,1,2 (a misaligned subtitle track; docs/robustness.md)."),
    corruptions: str | None = typer.Option(
        None, "--corruptions", help="robustness: corruptions or families, comma-separated (docs/robustness.md)."),
    severities: str | None = typer.Option(None, "--severities", help="robustness: severities, e.g. 1,3."),
    augment: str | None = typer.Option(
        None, "--augment", help="robustness: also train every method on training clips corrupted with these "
                                "corruptions or families (p 0.5, severity 1-3) and report augmented minus clean "
                                "training on the same splits (docs/robustness.md)."),
    discover: bool = typer.Option(
        False, "--discover", help="emodb, meld, ravdess-speech, ravdess: also cluster and name each trial's unknown "
                                  "test clips (ARI, NMI, purity, naming accuracy; docs/discover.md)."),
    enrol: str | None = typer.Option(
        None, "--enrol", help="emodb, meld, ravdess-speech, ravdess: also enrol each unknown class from N "
                              "training-speaker clips, e.g. 5,10,20 (recall, old-class accuracy, AUROC/OSCR "
                              "before and after)."),
) -> None:
    """Run a benchmark and write results.json, results.md (with the paper's rows when entered) and figures.

    ravdess, emodb, meld and cross-speech read ../shared; the paper settings read your copy of the dataset (--root).
    timeline: emotion diarization of sessions built from the test speakers' clips (docs/timeline.md).
    Each trial is recorded in OUT/trials.jsonl as it finishes: run the same command again after an
    interruption and the trials already recorded with the same settings are not trained again.
    """
    if name is BenchmarkName.timeline or (data is not None and name is not BenchmarkName.robustness):
        from openmer.cli.timeline import benchmark_timeline

        if name is not BenchmarkName.timeline:
            raise ConfigError(f"--data applies to benchmark timeline, not {name.value}")
        benchmark_timeline(data or "emodb", out, seed=seed, quick=quick, methods=methods, levels=levels,
                           splits=splits, cue_offsets=cue_offsets)
        return
    if cue_offsets is not None:
        raise ConfigError(f"--cue-offsets applies to benchmark timeline, not {name.value}")
    from openmer.benchmarks.journal import TrialJournal
    from openmer.benchmarks.registry import plan_benchmark
    from openmer.reference import paper_rows
    from openmer.reporting.figures import write_shift_figures, write_standard_figures
    from openmer.reporting.results import write_results
    from openmer.reporting.scores import save_runs

    start = time.perf_counter()
    plan = plan_benchmark(name.value, seed=seed, quick=quick, profile=profile, roots=root)
    cfg = plan.config
    if name is BenchmarkName.robustness or corruptions or severities or augment:
        from openmer.cli.robustness import robustness_cfg

        cfg = robustness_cfg(name.value, data, seed=seed, quick=quick, profile=profile, corruptions=corruptions,
                             severities=severities, augment=augment)
    update: dict = {}
    if audio_prompt_entry is not None:
        if not hasattr(cfg, "encoder_options"):
            raise ConfigError(f"--audio-prompt-entry applies to benchmarks with encoders, not {name.value}")
        update["encoder_options"] = {**cfg.encoder_options, "audio": {"prompt_entry": audio_prompt_entry}}
    update.update(selection_update(methods, levels, splits))
    if score is not None:
        update.update(_posthoc_update(cfg, name.value, score))
    if discover or enrol:
        if not hasattr(cfg, "enrol"):
            raise ConfigError(f"--discover and --enrol apply to emodb, meld, ravdess-speech and ravdess, "
                              f"not {name.value}")
        try:
            counts = tuple(int(n) for n in (enrol or "").split(",") if n.strip())
        except ValueError:
            raise ConfigError(f"--enrol takes example counts like 5,10,20, not {enrol!r}") from None
        if any(n < 1 for n in counts):
            raise ConfigError(f"--enrol counts must be at least 1, got {enrol!r}")
        update.update(discover=discover, enrol=counts)
    cfg = cfg.model_copy(update=update) if update else cfg
    if schedule == "paper":
        from openmer.benchmarks.media import with_paper_schedule

        if not plan.cpu_preset:
            raise ConfigError(f"--schedule paper applies to the benchmarks with a CPU preset of HCEP's training; "
                              f"{name.value} trains on the paper's schedule already")
        cfg = with_paper_schedule(cfg)
    elif schedule != "preset":
        raise ConfigError(f"--schedule must be 'preset' or 'paper', not {schedule!r}")
    if budget == "matched":
        from openmer.benchmarks.media import with_matched_budget

        if not plan.cpu_preset:
            raise ConfigError(f"--budget matched applies to the benchmarks with a CPU preset of HCEP's training, "
                              f"not {name.value}")
        cfg = with_matched_budget(cfg)
    elif budget != "preset":
        raise ConfigError(f"--budget must be 'preset' or 'matched', not {budget!r}")
    # --out is checked (and each trial recorded there as it finishes) before the first trial:
    # a bad folder is refused before any work, and an interrupted run resumes
    journal = TrialJournal(out)
    with rich_progress() as progress:
        result = plan.run(cfg, progress=ProgressCallback(progress, f"benchmark {name.value}"), journal=journal)
    if journal.reused:
        console.print(f"{journal.reused} trial(s) read back from {journal.path} (not trained again)")
    result.meta["command"] = shlex.join(["openmer", *sys.argv[1:]])
    result.meta["preset"] = cfg.preset_note
    paths = write_results(out, result.records, result.meta, reference_rows=paper_rows(setting=name.value),
                          sections=result.sections)
    save_runs(out, result.runs)
    figures = write_standard_figures(out, result.runs) + write_shift_figures(out, result.runs)
    if name is BenchmarkName.robustness:
        from openmer.benchmarks.robustness import plot_robustness

        figures += [plot_robustness(result.records, out / f"robustness_{m}.png", m)
                    for m in ("auroc", "fpr_at_threshold")]
    console.print(f"wrote {', '.join(str(p) for p in [*paths.values(), *figures])}")
    console.print(f"benchmark {name.value} took {time.perf_counter() - start:.1f} s")


@app.command()
@handle_errors
def openness() -> None:
    """Print the openness levels of the paper's five O-MER settings: 1 - sqrt(K / (K + U))."""
    from openmer.benchmarks.paper_settings import openness_table

    rows = openness_table()
    typer.echo(f"{'setting':<15}{'level':<10}{'openness':>8}  table")
    for r in rows:
        typer.echo(f"{r['setting']:<15}{r['level']:<10}{r['openness']:>8.2f}  {r['table']}")
