"""``openmer benchmark cross-speech``: train on one speech corpus, meet unknown emotions in another.

HCEP's cross-dataset setting (Sec. 4.1.2, MAFW + CMU-MOSEI) is the case every deployed model
meets: the data it is used on come from elsewhere, and hold emotions it never saw. Here it runs
on real data: EmoDB (German, 10 speakers, 7 emotions) and RAVDESS speech (English, 24 actors,
8 emotions), which share six emotions once their labels are mapped to shared names
(:mod:`openmer.datasets.vocabulary`).

Protocol (``src/openmer/splits/cross-speech.json``, written by ``scripts/make_splits.py``): K of
the 6 shared emotions known, K = 5, 4, 3, 2, 4 known sets each, drawn once; each corpus keeps
its own speaker partition (the ``emodb`` and ``ravdess-speech`` protocols). In direction
A -> B, for every known set:

* train on A's train speakers, known classes only; select on A's val speakers (known classes
  only). Nothing of B is seen before the test.
* score the trained model once on A's test speakers (**in-corpus**) and once on B's test
  speakers (**cross-corpus**). In each test set, every class of that corpus outside the known
  set is unknown: the shared emotions left out, and the classes A or B alone has (EmoDB's
  boredom, RAVDESS's calm and surprise).

The in-corpus result is the within-corpus benchmark for the same known set, with the same
model, so the difference between the two rows is what the shift costs.

Records (one per method x known set x direction x test set): ``level`` is the known set's level
in the cross-speech file (``O(K:6-K)`` over the shared emotions, the same for every test set);
``test_level`` and ``openness`` are those of the test set (``O(K:U)`` with the U unknown
classes it holds); ``train_set`` and ``test_set`` name the corpora.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import model_validator

from openmer.benchmarks.journal import TrialJournal
from openmer.benchmarks.media import MediaBenchmarkConfig, benchmark_encoders, benchmark_profile, run_media_benchmark
from openmer.benchmarks.ravdess import speech_preset
from openmer.benchmarks.registry import BenchmarkPlan, on_profile, refuse_roots, register_benchmark
from openmer.benchmarks.runner import BenchmarkResult
from openmer.benchmarks.trials import Progress, benchmark_meta, trial_result
from openmer.datasets.cross_speech import CORPORA, PROTOCOL, corpus_classes, load_cross_speech
from openmer.datasets.vocabulary import shared_classes, vocabulary_rows
from openmer.methods.threshold import DEFAULT_ACCEPTANCE, Threshold
from openmer.protocol import OpenSetSplit, Protocol, corpus_of, load_protocol, partition_indices, select_levels
from openmer.protocol import corpus_test_split as test_split_of
from openmer.protocol import direction_protocol as protocol_of_direction
from openmer.reporting.results import markdown_table, summarise
from openmer.reporting.scores import RunScores

#: (train corpus, other corpus)
DIRECTIONS = (("emodb", "ravdess-speech"), ("ravdess-speech", "emodb"))


class CrossSpeechConfig(MediaBenchmarkConfig):
    """What ``openmer benchmark cross-speech`` runs.

    Attributes:
        directions: (train corpus, other corpus) pairs, corpora of :data:`CORPORA`.
        levels / n_splits: the cross-speech protocol's levels (``"O(5:1)"`` ... ``"O(2:4)"``)
            and splits per level.
        (the other fields as :class:`~openmer.benchmarks.media.MediaBenchmarkConfig`.)
    """

    directions: tuple[tuple[str, str], ...] = DIRECTIONS

    @model_validator(mode="after")
    def _check_directions(self) -> CrossSpeechConfig:
        if not self.directions:
            raise ValueError("give at least one direction")
        for a, b in self.directions:
            if a == b or a not in CORPORA or b not in CORPORA:
                raise ValueError(f"direction {a!r} -> {b!r}: need two different corpora of {list(CORPORA)}")
        return self


def cross_speech_config(*, seed: int = 0, quick: bool = False) -> CrossSpeechConfig:
    """The default preset (or ``quick``): every registered method, speech + transcript, built by
    :func:`openmer.benchmarks.ravdess.speech_preset` (HCEP's training options from the EmoDB preset).

    Default: both directions, 4 levels x 4 splits, HCEP on at most
    :data:`~openmer.benchmarks.ravdess.HCEP_TRAIN_CLIPS` training clips per trial in either
    direction. ``quick`` (a smoke run, under 5 minutes on a 2-core CPU once the features are
    cached): both directions, O(2:4), 1 split, HCEP as the EmoDB quick preset (1 epoch on at
    most 96 clips), heads 15 epochs.
    """
    scope = "both directions, O(2:4), 1 split" if quick else "both directions, 4 levels x 4 splits"
    return speech_preset(CrossSpeechConfig, seed=seed, quick=quick, scope=scope, dataset=PROTOCOL,
                         levels=("O(2:4)",) if quick else None, n_splits=1 if quick else 4)


def direction_protocol(protocol: Protocol, source: str, target: str, levels: Sequence[str] | None,
                       n_splits: int) -> Protocol:
    """:func:`openmer.protocol.direction_protocol` with the corpora's classes in shared names."""
    return protocol_of_direction(protocol, source, target, levels, n_splits, classes=corpus_classes((source, target)))


def corpus_test_split(known: Sequence[str], corpus: str, index: int, seed: int = 0) -> OpenSetSplit:
    """:func:`openmer.protocol.corpus_test_split` with ``corpus``'s classes in shared names."""
    return test_split_of(known, shared_classes(corpus), index, seed)


def split_by_test_set(run: RunScores, test_groups: Sequence[str], level: str, train_set: str,
                      seed: int = 0) -> list[tuple[dict[str, Any], RunScores]]:
    """One trial scored on a direction's joint test set, as one (record, run) per corpus.

    Args:
        run: the trial's scores, samples in the order of ``test_groups``.
        test_groups: (N,) group (``"<corpus>/<speaker>"``) of each scored sample.
        level: the known set's level in the cross-speech protocol (``"O(5:1)"``).
        train_set: the corpus trained on; its test set comes first.
        seed: the known/unknown split's seed (recorded).

    Returns:
        Metrics and scores per test corpus, with unknown = that corpus's classes outside the
        known set (:func:`corpus_test_split`).

    Raises:
        ValueError: ``test_groups`` does not have one entry per scored sample.
    """
    corpus = np.array([corpus_of(g) for g in test_groups])
    if len(corpus) != len(run.confidence):
        raise ValueError(f"{len(corpus)} test groups for {len(run.confidence)} scored samples")
    names = np.asarray(run.class_names) if run.class_names is not None else None
    threshold = (None if run.threshold is None or run.threshold_confidence is None else  # the trials' rule's acceptance
                 Threshold(value=run.threshold, acceptance=DEFAULT_ACCEPTANCE,
                           source="train" if run.threshold_source == "train" else "val"))
    out = []
    for test_set in sorted(set(corpus), key=lambda c: (c != train_set, c)):
        m = corpus == test_set
        split = corpus_test_split(run.known_classes, test_set, run.split, seed)
        record, part = trial_result(run.method, run.modalities, split, run.confidence[m], run.prediction[m],
                                    run.labels[m], None if names is None else list(names[m]),
                                    features=None if run.features is None else run.features[m],
                                    threshold=threshold, threshold_confidence=run.threshold_confidence)
        record.update(level=level, test_level=split.label, train_set=train_set, test_set=test_set,
                      shift="in-corpus" if test_set == train_set else "cross-corpus")
        part.level, part.train_set, part.test_set = level, train_set, test_set
        out.append((record, part))
    return out


@register_benchmark("cross-speech")
def plan_cross_speech(*, seed: int = 0, quick: bool = False, profile: str | None = None,
                      roots: Sequence[str] = ()) -> BenchmarkPlan:
    """``openmer benchmark cross-speech``: :func:`cross_speech_config` and :func:`run_cross_speech`."""
    refuse_roots("cross-speech", roots)
    return BenchmarkPlan(on_profile(cross_speech_config(seed=seed, quick=quick), profile), run_cross_speech,
                         cpu_preset=True)


def run_cross_speech(cfg: CrossSpeechConfig | None = None, *, progress: Progress | None = None,
                     journal: TrialJournal | None = None) -> BenchmarkResult:
    """Run the cross-corpus benchmark (module docstring) in every direction of ``cfg``.

    Raises:
        SharedDataMissing: ``../shared`` lacks EmoDB or RAVDESS speech, or the encoders.
        ConfigError: a level the cross-speech protocol does not have.
    """
    t0 = time.perf_counter()
    cfg = cfg or cross_speech_config()
    protocol = load_protocol(PROTOCOL)
    levels = select_levels(cfg.levels, protocol)
    level_of_k = {protocol.levels[lv][0].n_known: lv for lv in levels}
    corpora = tuple(dict.fromkeys(c for d in cfg.directions for c in d))
    manifest = load_cross_speech(corpora)
    prof = benchmark_profile(cfg)
    encoders = benchmark_encoders(cfg)
    records: list[dict[str, Any]] = []
    runs: list[RunScores] = []
    directions: dict[str, Any] = {}
    for source, target in cfg.directions:
        t = time.perf_counter()
        proto = direction_protocol(protocol, source, target, levels, cfg.n_splits)
        keep = set(proto.partition.groups)
        sub = manifest.subset([i for i, s in enumerate(manifest) if s.group in keep])
        where = f"{source} -> {target}"
        tell = (lambda d, n, msg, where=where: progress(d, n, f"{where}: {msg}")) if progress else None
        res = run_media_benchmark(cfg.model_copy(update={"levels": None}), sub, proto, progress=tell, encoders=encoders,
                                  journal=journal)
        test_idx = partition_indices(sub.groups, proto.partition)["test"]
        test_groups = [sub[i].group or sub[i].id for i in test_idx]
        for run in res.runs:
            if run.class_names != [sub[i].label for i in test_idx]:
                raise RuntimeError(f"{run.name}: scored samples are not the direction's test samples in order")
            for record, part in split_by_test_set(run, test_groups, level_of_k[run.n_known], source, protocol.seed):
                records.append(record)
                runs.append(part)
        counts = {c: int(sum(corpus_of(g) == c for g in test_groups)) for c in (source, target)}
        directions[f"{source} -> {target}"] = {
            "seconds": round(time.perf_counter() - t, 1), "timings_s": res.meta.get("timings_s"),
            "train_groups": list(proto.partition.train_groups), "val_groups": list(proto.partition.val_groups),
            "test_clips": counts,
        }
    meta = benchmark_meta(cfg, protocol, t0, encoders=prof.to_dict(), directions=directions,
                          label_vocabulary=vocabulary_rows(corpora))
    return BenchmarkResult(records=records, runs=runs, meta=meta, sections=report_sections(records, corpora))


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _change(before: float, after: float) -> str:
    """``after - before`` in percentage points, signed."""
    return f"{100 * (after - before):+.1f}"


def shift_rows(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """In-corpus vs cross-corpus, side by side: one row per (method, modalities, direction, level).

    Returns:
        Rows with ``method``, ``modalities``, ``train_set``, ``test_set`` (the other corpus),
        ``level``, ``in_level`` / ``cross_level`` (the test sets' own O(K:U)), and
        ``in_auroc``, ``in_oscr``, ``cross_auroc``, ``cross_oscr`` (means over splits,
        fractions); ordered by direction, method and level, each in order of first appearance.
    """
    summary = summarise(records)
    cell = {(r["method"], r["modalities"], r["train_set"], r["test_set"], r["level"]): r for r in summary}
    test_level = {(r["train_set"], r["test_set"], r["level"]): r["test_level"] for r in records}
    rows = []
    for (method, mods, train, test, level), within in cell.items():
        for other in dict.fromkeys(k[3] for k in cell if k[:3] == (method, mods, train) and k[3] != train):
            if test != train or (method, mods, train, other, level) not in cell:
                continue
            cross = cell[(method, mods, train, other, level)]
            rows.append({"method": method, "modalities": mods, "train_set": train, "test_set": other, "level": level,
                         "in_level": test_level[(train, train, level)],
                         "cross_level": test_level[(train, other, level)],
                         "in_auroc": within["auroc_mean"], "in_oscr": within["oscr_mean"],
                         "cross_auroc": cross["auroc_mean"], "cross_oscr": cross["oscr_mean"]})
    def order(values: Sequence[Any]) -> dict[Any, int]:  # position of first appearance
        return {v: i for i, v in reversed(list(enumerate(values)))}

    direction, method, level = (order([r["train_set"] for r in rows]),
                                order([(r["train_set"], r["method"]) for r in rows]),
                                order([r["level"] for r in records]))
    return sorted(rows, key=lambda r: (direction[r["train_set"]], method[(r["train_set"], r["method"])],
                                       r["modalities"], level[r["level"]]))


def report_sections(records: Sequence[dict[str, Any]], corpora: Sequence[str]) -> list[tuple[str, list[str]]]:
    """results.md sections: what the shift costs (in-corpus vs cross-corpus) and the label vocabulary."""
    rows = shift_rows(records)
    detail = [[r["method"], r["modalities"], f"{r['train_set']} -> {r['test_set']}", r["level"],
               f"{r['in_level']}: {_pct(r['in_auroc'])} / {_pct(r['in_oscr'])}",
               f"{r['cross_level']}: {_pct(r['cross_auroc'])} / {_pct(r['cross_oscr'])}",
               _change(r["in_auroc"], r["cross_auroc"]), _change(r["in_oscr"], r["cross_oscr"])] for r in rows]
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["modalities"], r["train_set"], r["test_set"]), []).append(r)
    means = []
    for (method, mods, train, other), members in groups.items():
        m = {k: float(np.mean([r[k] for r in members])) for k in ("in_auroc", "in_oscr", "cross_auroc", "cross_oscr")}
        means.append([method, mods, f"{train} -> {other}", ", ".join(r["level"] for r in members),
                      f"{_pct(m['in_auroc'])} / {_pct(m['in_oscr'])}",
                      f"{_pct(m['cross_auroc'])} / {_pct(m['cross_oscr'])}",
                      _change(m["in_auroc"], m["cross_auroc"]), _change(m["in_oscr"], m["cross_oscr"])])
    header = ["Method", "Modalities", "Trained on -> other corpus", "Known set", "In-corpus AUROC / OSCR",
              "Cross-corpus AUROC / OSCR", "Change AUROC", "Change OSCR"]
    shift = [
        ("The same trained models, scored on the training corpus's own test speakers (in-corpus) and on the other "
        "corpus's test speakers (cross-corpus). AUROC / OSCR in percent (%), mean over the splits of each level; "
        "the test set's own openness level O(K:U) counts the unknown classes it holds. Change = cross-corpus "
        "minus in-corpus, in percentage points (negative = the shift costs). First the unweighted mean over the "
        "known-set levels, then each level."),
        "", *markdown_table(header, means), "", *markdown_table(header, detail),
    ]
    vocab = vocabulary_rows(corpora)
    table = markdown_table(["shared name", *corpora], [[r["shared"], *(r[c] or "—" for c in corpora)] for r in vocab])
    vocabulary = [("Labels are compared by their shared name (`openmer.datasets.vocabulary.LABEL_VOCABULARY`); "
                   "— = the corpus has no such class."), "", *table]
    return [("Cost of the shift: in-corpus vs cross-corpus", shift), ("Label vocabulary", vocabulary)]


__all__ = [
    "CORPORA",
    "DIRECTIONS",
    "CrossSpeechConfig",
    "corpus_test_split",
    "cross_speech_config",
    "direction_protocol",
    "load_cross_speech",
    "report_sections",
    "run_cross_speech",
    "shift_rows",
    "split_by_test_set",
]
