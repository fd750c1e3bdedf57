"""``openmer benchmark robustness --data emodb|ravdess-speech|meld``: what noise, codecs, reverberation,
misaligned and degraded transcripts and missing modalities do to "unknown".

Each method trains once per openness split on *clean* clips (the dataset's preset, through the
one trial loop :func:`openmer.benchmarks.trials.run_trials`), chooses its deployable threshold from
clean known-class validation data, as a deployed model would have it; then a trial hook
(:class:`RobustnessHook`) scores the *same* test clips again under each corruption and severity
(:mod:`openmer.media.corruptions`) with that threshold fixed. Records gain ``corruption`` and
``severity`` (``"none"``, 0: clean) and, beside AUROC / OSCR / closed-set accuracy,
``fpr_at_threshold`` (known test clips flagged unknown) and ``tpr_at_threshold`` (unknown test
clips caught).

Corrupted clips are re-encoded: the methods on cached features get the corrupted clips' features
through the same frozen encoders, kept in memory only (never under the clean clips' cache keys);
the methods on clips read the corrupted clips directly. Babble is made of up to ``babble_clips``
clips of the trial's *training* speakers (never a test speaker). A clip's corruption is seeded by
(seed, corruption, severity, clip row), so every method sees the same corrupted clip.

``--augment`` (``cfg.augment``): every method also trains on the same splits with its training clips
augmented (:mod:`openmer.data.augment`; records ``method`` ``"<name>+aug"``, ``training``
``"augmented"``), scored on the same corrupted test clips; :func:`augmentation_deltas` gives the
change, augmented minus clean, per method and test family, paired by split.

Summary per method (:func:`corruption_errors`): ImageNet-C's corruption error (Hendrycks &
Dietterich 2019, Sec. 3): for corruption c, CE_c = sum_s E_{s,c} / sum_s E^ARPL_{s,c} with
E = 1 - AUROC, and the relative CE, sum_s (E_{s,c} - E_clean) / sum_s (E^ARPL_{s,c} - E^ARPL_clean);
mCE and relative mCE are their means over the corruptions.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import Field

from openmer.backbones.prefix import PrefixCache, tensor_key
from openmer.benchmarks.journal import TrialJournal
from openmer.benchmarks.media import MediaBenchmarkConfig, _media_with_protocol, dataset_preset, media_plan
from openmer.benchmarks.registry import BenchmarkPlan, on_profile, refuse_roots, register_benchmark
from openmer.benchmarks.runner import BenchmarkResult
from openmer.benchmarks.trials import (
    ClipSource,
    Progress,
    TrialContext,
    TrialData,
    TrialPlan,
    benchmark_meta,
    clip_data,
    run_trials,
)
from openmer.data.augment import (
    BABBLE_CLIPS,
    AugmentedClips,
    augmented_training,
    babble_pool,
    corrupt_item,
    neighbour_texts,
)
from openmer.data.clips import ClipDataset
from openmer.data.feature_cache import encode_items
from openmer.data.manifest import Manifest
from openmer.errors import ConfigError
from openmer.media.corruptions import CORRUPTIONS, Augmentation, CorruptionPool, corrupt, parse_corruptions
from openmer.methods.inputs import FeatureInputs, MethodInputs
from openmer.methods.threshold import DEFAULT_ACCEPTANCE, choose_threshold
from openmer.metrics import open_set_metrics
from openmer.protocol import Protocol

#: the datasets ``--data`` takes, with their preset
DATASETS = ("emodb", "ravdess-speech", "meld")

#: ``--quick``: a few corruptions and severities
QUICK_CORRUPTIONS = ("white_noise", "babble", "mp3")
QUICK_SEVERITIES = (1, 3)


@dataclass(frozen=True)
class TrainingAugmentation:
    """``--augment`` on a plan's ``data`` (:mod:`openmer.data.augment`): the training part of each trial
    augmented (the plan's :class:`~openmer.benchmarks.trials.TrainingTransform`).

    The methods on clips read :class:`~openmer.data.augment.AugmentedClips` (a new draw per clip
    and epoch, seeded by the trial's seed); the methods on features train on ``features`` /
    ``present``, where each clip of a training speaker (the protocol's training groups) was
    replaced, with probability ``p``, by its augmented copy, encoded once (seeded by the plan's
    seed). Babble comes from the training speakers' clips. Validation and test rows stay clean.
    """

    augmentation: Augmentation
    #: the training speakers' clips augmented (its ``pool`` and ``neighbours`` serve every trial)
    clips: AugmentedClips = field(repr=False)
    features: dict[str, np.ndarray] | None = field(repr=False)
    present: dict[str, np.ndarray] | None = field(repr=False)

    def __repr__(self) -> str:  # a trial's identity in the journal: the augmentation, not the arrays
        return repr(self.augmentation)

    @classmethod
    def build(cls, augmentation: Augmentation, plan: TrialPlan, data: TrialData) -> TrainingAugmentation:
        """Raises: ConfigError: ``data`` without clips (precomputed features cannot be augmented)."""
        if data.clips is None:
            raise ConfigError("--augment corrupts clips; this benchmark's data has precomputed features only")
        groups = set(plan.protocol.partition.train_groups)
        rows = [i for i, g in enumerate(data.groups) if g in groups]
        on_features = data.features is not None and any(mp.cls.consumes == "features" for g in plan.groups
                                                        for mp in g.methods)
        clips, features, present = augmented_training(
            data.clips, data.groups, rows, augmentation, seed=plan.seed,
            features=data.features if on_features else None, present=data.present, encoders=data.encoders)
        return cls(augmentation, clips, features, present)

    def training_set(self, inputs: MethodInputs, rows: Mapping[str, Any], y: np.ndarray, clean: Any,
                     seed: int) -> Any:
        """The trial's training set, augmented (``clean``: the clean one ``inputs.parts`` built)."""
        if isinstance(inputs, FeatureInputs):
            assert self.features is not None
            return FeatureInputs(self.features, self.present, inputs.modalities, y).parts(rows, labels=y)["train"]
        return AugmentedClips(clean, self.augmentation, seed=seed, pool=self.clips.pool,
                              neighbours=self.clips.neighbours)


class RobustnessConfig(MediaBenchmarkConfig):
    """A media benchmark preset plus what to corrupt.

    Attributes:
        corruptions: corruption names (:data:`openmer.media.corruptions.CORRUPTIONS`); those whose
            modality the data lacks are left out (listed in ``meta["left_out_corruptions"]``).
        severities: severities to run (``None``: every severity of each corruption; those a
            corruption does not have are skipped).
        babble_clips: training-speaker clips babble is drawn from, per trial.
    """

    corruptions: tuple[str, ...] = tuple(CORRUPTIONS)
    severities: tuple[int, ...] | None = None
    babble_clips: int = Field(default=BABBLE_CLIPS, gt=0)
    #: ``--augment``: corruptions (or families) applied to the training clips of every method
    #: (:mod:`openmer.data.augment`), each method also trained clean on the same splits and the
    #: difference reported (:func:`augmentation_sections`); ``()``: clean training only
    augment: tuple[str, ...] = ()
    augment_p: float = Field(default=0.5, ge=0, le=1)
    augment_max_severity: int = Field(default=3, ge=1)


def conditions(cfg: RobustnessConfig) -> tuple[tuple[str, int], ...]:
    """The (corruption, severity) pairs ``cfg`` scores, on the data's modalities."""
    out = []
    for name in cfg.corruptions:
        c = CORRUPTIONS[name]
        if c.modality not in cfg.modalities:
            continue
        out += [(name, s) for s in c.severities if cfg.severities is None or s in cfg.severities]
    return tuple(out)


def _clip_rng(seed: int, name: str, severity: int, row: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode()), severity, row])


def corrupted_items(clips: ClipDataset, rows: Sequence[int], name: str, severity: int, pool: CorruptionPool,
                    neighbours: dict[int, str], seed: int) -> list[dict[str, Any]]:
    """The clips at ``rows`` as :meth:`ClipDataset.collate_fn` items, under ``name`` at ``severity``."""
    items = []
    for i in rows:
        item = clips[int(i)]
        rng = _clip_rng(seed, name, severity, int(i))
        out = corrupt_item(item, partial(corrupt, name=name, severity=severity, rng=rng, pool=pool),
                           neighbours.get(int(i)))
        items.append(dict(item) if out is None else out)
    return items


def at_threshold(confidence: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    """``fpr_at_threshold``: share of known test clips (label >= 0) with ``confidence < threshold``
    (flagged unknown); ``tpr_at_threshold``: share of unknown ones (label < 0) flagged."""
    flagged = confidence < threshold
    known = labels >= 0
    return {"fpr_at_threshold": float(flagged[known].mean()) if known.any() else float("nan"),
            "tpr_at_threshold": float(flagged[~known].mean()) if (~known).any() else float("nan")}


_METRICS = ("auroc", "oscr", "closed_acc", "aupr_in", "aupr_out", "macro_f1", "fpr95")


#: memory (MiB) the robustness hook keeps corrupted clips and encoder states of corrupted clips in
RUN_CACHE_MB = 4096


def _content(value: Any) -> str | None:
    """What an encoder reads of one item's modality, as a key: the text, or a hash of the tensor; ``None``: absent."""
    if value is None or (isinstance(value, str) and not value):
        return None
    return f"text:{value}" if isinstance(value, str) else tensor_key(torch.as_tensor(value))


@dataclass
class CorruptedClipCache:
    """What :class:`RobustnessHook` computes once per run and reuses in every trial (every method and split).

    Every value is a deterministic function of its key, and each is reused only where the same
    computation would run again on the same inputs in the same batches, so the records are those
    of computing everything again (``tests/robustness/test_benchmark.py``):

    - corrupted clips, by (corruption, severity, row, training speakers): a clip's corruption is
      seeded by (seed, corruption, severity, row) only, and babble and substitutes come from the
      training speakers' clips (never a test speaker), so those key it;
    - unprompted features (methods on features), by (modality, what each clip of a batch of 16
      reads of it): a batch that reads the same is encoded once: the test clips in every split,
      the clean audio under a transcript corruption, the clean transcript under an audio one;
    - late-prompt-entry states (:class:`~openmer.backbones.prefix.PrefixCache` entries) a method on
      clips computed while scoring a condition's clips, by (method, batch size, modalities,
      corruption, severity, rows): a trial moves the method, which empties the encoders' caches, so
      they are put back (:meth:`PrefixCache.add`, keys held already keep theirs) before the same
      method scores the same clips in a later split; only the layers above the prompt entry run again.

    Clips and states stop being kept once they hold ``max_bytes`` (beyond it they are recomputed).
    ``counts``: hits and misses per kind (the run's log).
    """

    max_bytes: int = RUN_CACHE_MB << 20
    nbytes: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    _items: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)
    _features: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    _prefixes: dict[tuple[Any, ...], dict[str, dict[str, torch.Tensor]]] = field(default_factory=dict)

    def _count(self, kind: str, hits: int | bool, misses: int | bool) -> None:
        self.counts[f"{kind}_hits"] = self.counts.get(f"{kind}_hits", 0) + hits
        self.counts[f"{kind}_misses"] = self.counts.get(f"{kind}_misses", 0) + misses

    def _keep(self, size: int) -> bool:
        if self.max_bytes <= 0 or self.nbytes + size > self.max_bytes:
            return False
        self.nbytes += size
        return True

    def corrupted(self, clips: ClipDataset, rows: Sequence[int], name: str, sev: int, pool: CorruptionPool,
                  neighbours: dict[int, str], seed: int, speakers: set[str]) -> list[dict[str, Any]]:
        """:func:`corrupted_items` of ``rows``, each clip corrupted once per run (shallow copies)."""
        who = tuple(sorted(speakers))
        keys = [(name, sev, int(i), who) for i in rows]
        todo = [i for i, k in zip(rows, keys, strict=True) if k not in self._items]
        self._count("clips", len(rows) - len(todo), len(todo))
        fresh = dict(zip(todo, corrupted_items(clips, todo, name, sev, pool, neighbours, seed), strict=True))
        out = []
        for i, k in zip(rows, keys, strict=True):
            item = self._items.get(k) or fresh[i]
            if i in fresh:
                clean = clips[int(i)]  # what a corruption left as it was shares the clean clip's memory
                size = sum(v.numel() * v.element_size() for m, v in item.items() if isinstance(v, torch.Tensor)
                           and not (isinstance(clean.get(m), torch.Tensor) and v.data_ptr() == clean[m].data_ptr()))
                if self._keep(size):
                    self._items[k] = item
            out.append(dict(item))
        return out

    def encode(self, items: list[dict[str, Any]], encoders: dict[str, Any], modalities: Sequence[str],
               batch_size: int = 16) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """:func:`encode_items` of ``items``, batch by batch, each batch's modality encoded once per run."""
        feats = {m: np.zeros((len(items), int(encoders[m].embed_dim)), np.float32) for m in modalities}
        present = {m: np.zeros(len(items), bool) for m in modalities}
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            for m in modalities:
                key = (m, tuple(_content(it.get(m)) for it in chunk))
                got = self._features.get(key)
                self._count("feature_batches", got is not None, got is None)
                if got is None:
                    f, p = encode_items(chunk, encoders, [m], batch_size)
                    got = (f[m], p[m])
                    if self._keep(got[0].nbytes):
                        self._features[key] = got
                feats[m][start:start + len(chunk)], present[m][start:start + len(chunk)] = got
        return feats, present

    @contextmanager
    def prefixes(self, key: tuple[Any, ...], encoders: Mapping[str, Any], *, keep: bool = True) -> Iterator[None]:
        """Around a method on clips scoring: the encoders' late-entry states kept under ``key`` put
        back first; with ``keep``, the states the scoring adds kept under ``key`` after (within the budget)."""
        if not keep:
            yield
            return
        caches = {m: c for m, e in encoders.items() if isinstance(c := getattr(e, "prefix_cache", None), PrefixCache)}
        kept = self._prefixes.get(key, {})
        for m, c in caches.items():
            c.add(kept.get(m, {}))
        before = {m: set(c.held()) for m, c in caches.items()}
        yield
        if key in self._prefixes:
            self._count("prefix_sets", 1, 0)
            return
        self._count("prefix_sets", 0, 1)
        new = {m: c.entries(k for k in c.held() if k not in before[m]) for m, c in caches.items()}
        size = sum(t.numel() * t.element_size() for e in new.values() for t in e.values())
        if self._keep(size):
            self._prefixes[key] = new


@dataclass(frozen=True)
class RobustnessHook:
    """The trial hook: the trial's test clips under each of ``conditions`` (module docstring).

    Returns ``{"robustness": [{corruption, severity, auroc, oscr, closed_acc, ..., fpr_at_threshold,
    tpr_at_threshold}, ...]}``, the clean test set first; :func:`expand_records` makes them records.
    """

    conditions: tuple[tuple[str, int], ...]
    seed: int = 0
    babble_clips: int = 24
    recalibration_clips: int = 32
    acceptance: float = DEFAULT_ACCEPTANCE
    #: the training augmentation, so that a journal never reads an augmented run's trials back as clean ones
    augment: tuple[Any, ...] = ()
    #: the run's corrupted clips and encodings, shared by every trial of the run (and by a second hook
    #: over the same test clips: ``replace(hook, augment=...)`` keeps it); not part of a trial's
    #: identity (the journal reads the repr). ``CorruptedClipCache(0)`` keeps nothing.
    cache: CorruptedClipCache = field(default_factory=CorruptedClipCache, compare=False, repr=False)

    def cache_counts(self) -> dict[str, int]:
        """Hits and misses of the run's cache so far (:attr:`CorruptedClipCache.counts`) and its MiB."""
        return {**self.cache.counts, "mib": self.cache.nbytes >> 20}

    def sections(self, records: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[str]]]:
        """None here: :func:`robustness_sections` reads the records after :func:`expand_records`."""
        return []

    def __call__(self, ctx: TrialContext) -> dict[str, Any]:
        clips: ClipDataset = ctx.data.clips
        test = [int(i) for i in ctx.rows["test"]]
        labels = np.asarray(ctx.y)[test]
        thr = float(ctx.outcome.threshold.value)
        k = ctx.split.n_known
        scores = ctx.outcome.scores
        clean_conf = scores.confidence.numpy().astype(np.float64)
        clean = at_threshold(clean_conf, labels, thr)
        rows = [{"corruption": "none", "severity": 0, "level_value": None,
                 **_pick(open_set_metrics(clean_conf, scores.prediction.numpy(), labels, num_classes=k)),
                 **clean, **{f"{m}_recalibrated": v for m, v in clean.items()}}]
        if not self.conditions:
            return {"robustness": rows}
        speakers = {ctx.data.groups[int(i)] for i in ctx.rows["train"]}  # every clip of the training speakers
        train_speaker_rows = [i for i, g in enumerate(ctx.data.groups) if g in speakers]
        pool = babble_pool(clips, ctx.data.groups, train_speaker_rows, test, self.babble_clips, self.seed)
        neighbours = neighbour_texts(clips, ctx.data.groups)
        rng = np.random.default_rng(self.seed)
        val = [int(i) for i in ctx.rows["val"]]
        recal = sorted(rng.choice(val, size=min(self.recalibration_clips, len(val)), replace=False).tolist()) \
            if val and self.recalibration_clips else []
        for name, sev in self.conditions:
            out = self._scores(ctx, test, name, sev, pool, neighbours, speakers)
            extra = {}
            if recal:  # the threshold re-chosen on a few corrupted known-class validation clips (recalibrate.py)
                new_conf = self._scores(ctx, recal, name, sev, pool, neighbours, speakers,
                                        keep_states=False).confidence.numpy()
                new_thr = choose_threshold(new_conf.astype(np.float64), self.acceptance)
                extra = {f"{m}_recalibrated": v for m, v in at_threshold(
                    out.confidence.numpy().astype(np.float64), labels, new_thr).items()}
            conf = out.confidence.numpy().astype(np.float64)
            rows.append({"corruption": name, "severity": sev, "level_value": CORRUPTIONS[name].levels[sev - 1],
                         **_pick(open_set_metrics(conf, out.prediction.numpy(), labels, num_classes=k)),
                         **at_threshold(conf, labels, thr), **extra})
        return {"robustness": rows}

    def _scores(self, ctx: TrialContext, rows: list[int], name: str, sev: int, pool: CorruptionPool,
                neighbours: dict[int, str], speakers: set[str], *, keep_states: bool = True) -> Any:
        """The fitted method's scores of ``rows`` under ``name`` at ``sev``, through the run's cache
        (``keep_states``: keep a method on clips' encoder states of these clips for the next split;
        the test clips are the same in every split, the recalibration clips are not)."""
        cache = self.cache
        items = cache.corrupted(ctx.data.clips, rows, name, sev, pool, neighbours, self.seed, speakers)
        if ctx.method.consumes == "features":
            encoded = cache.encode(items, ctx.data.encoders, ctx.modalities)
            assert ctx.data.features is not None  # a method on features ran on them
            feats = {m: np.array(ctx.data.features[m], copy=True) for m in ctx.modalities}
            present = {m: (np.ones(len(feats[m]), bool) if ctx.data.present is None
                           else np.array(ctx.data.present[m], copy=True)) for m in ctx.modalities}
            for m in ctx.modalities:
                feats[m][rows] = encoded[0][m]
                present[m][rows] = encoded[1][m]
            ds = FeatureInputs(feats, present, ctx.modalities, ctx.y).parts(
                {"train": ctx.rows["train"], "rows": rows})["rows"]
            return ctx.method.score_all(ds.batches())
        bs = ctx.batch_size or 16
        # the late-prompt-entry states of these corrupted clips, as this method computed them in an earlier split
        key = (type(ctx.method).name, bs, tuple(ctx.modalities), name, sev, tuple(rows))
        with cache.prefixes(key, ctx.data.encoders, keep=keep_states), torch.no_grad():
            return ctx.method.score_all([ClipDataset.collate_fn(items[j:j + bs]) for j in range(0, len(items), bs)])


def condition_label(dataset: str, name: str, severity: int) -> str:
    """``"emodb + babble 3 (5 dB SNR)"``: a corrupted test set's name in results.md."""
    c = CORRUPTIONS[name]
    return f"{dataset} + {name} {severity} ({c.levels[severity - 1]:g} {c.unit})"


def _pick(metrics: dict[str, float]) -> dict[str, float]:
    return {m: float(metrics[m]) for m in _METRICS if m in metrics}


def expand_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per (trial, corruption, severity) from the hook's ``robustness`` lists (records
    without one, e.g. post-hoc rows, are dropped)."""
    out: list[dict[str, Any]] = []
    for rec in records:
        rows = rec.get("robustness")
        if not rows:
            continue
        base = {k: v for k, v in rec.items() if k != "robustness"}
        out.extend({**base, **r} for r in rows)
    return out


def _mean_by(records: list[dict[str, Any]], metric: str) -> dict[tuple[str, str, int], float]:
    acc: dict[tuple[str, str, int], list[float]] = {}
    for r in records:
        acc.setdefault((r["method"], r["corruption"], int(r["severity"])), []).append(float(r[metric]))
    return {k: float(np.mean(v)) for k, v in acc.items()}


def corruption_errors(records: list[dict[str, Any]], *, baseline: str = "arpl",
                      metric: str = "auroc") -> dict[str, dict[str, float]]:
    """Per method: ``mce`` and ``relative_mce`` (module docstring; error = 1 - ``metric``, means
    over splits first), relative to ``baseline``'s; ``{}`` when the baseline did not run.
    A corruption where the baseline's summed error (or error increase) is 0 is skipped."""
    mean = _mean_by(records, metric)
    methods = sorted({m for m, _, _ in mean})
    if baseline not in methods:
        return {}
    names = sorted({c for _, c, s in mean if c != "none"})
    out: dict[str, dict[str, float]] = {}
    for m in methods:
        ce, rce = [], []
        for c in names:
            sevs = sorted(s for mm, cc, s in mean if mm == baseline and cc == c)
            if not all((m, c, s) in mean for s in sevs):
                continue
            e = sum(1 - mean[(m, c, s)] for s in sevs)
            eb = sum(1 - mean[(baseline, c, s)] for s in sevs)
            d = e - len(sevs) * (1 - mean.get((m, "none", 0), 1.0))
            db = eb - len(sevs) * (1 - mean.get((baseline, "none", 0), 1.0))
            if eb > 0:
                ce.append(e / eb)
            if db > 1e-9:
                rce.append(d / db)
        out[m] = {"mce": float(np.mean(ce)) if ce else float("nan"),
                  "relative_mce": float(np.mean(rce)) if rce else float("nan")}
    return out


def robustness_sections(records: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """results.md: mean over splits per method, corruption and severity, and the corruption errors."""
    keys = sorted({(r["method"], r["corruption"], int(r["severity"])) for r in records},
                  key=lambda k: (k[0], k[1] != "none", k[1], k[2]))
    note = ("FPR@thr: known test clips flagged unknown at the clean deployable threshold; TPR@thr: unknown test "
            "clips caught; recal.: at the threshold re-chosen (same acceptance) on 32 known-class validation clips "
            "under the same corruption (docs/robustness.md).")
    header = ("| method | corruption | severity | level | AUROC | OSCR | closed acc | FPR@thr | TPR@thr "
              "| FPR@thr recal. | TPR@thr recal. | splits |")
    lines = [note, "", header, "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for m, c, s in keys:
        rs = [r for r in records if (r["method"], r["corruption"], int(r["severity"])) == (m, c, s)]
        lv = rs[0].get("level_value")
        unit = "" if c == "none" else CORRUPTIONS[c].unit

        def f(metric: str, rs: list[dict[str, Any]] = rs) -> str:
            v = np.array([float(r.get(metric, np.nan)) for r in rs])
            return f"{100 * v.mean():.1f} ± {100 * v.std():.1f}"
        lines.append(f"| {m} | {c} | {s} | {'' if lv is None else f'{lv:g} {unit}'} | {f('auroc')} | {f('oscr')} | "
                     f"{f('closed_acc')} | {f('fpr_at_threshold')} | {f('tpr_at_threshold')} | "
                     f"{f('fpr_at_threshold_recalibrated')} | {f('tpr_at_threshold_recalibrated')} | {len(rs)} |")
    sections = [("Robustness: test clips under each corruption (mean ± std over splits, %)", lines)]
    ce = corruption_errors(records)
    if ce:
        rows = ["| method | mCE (1 - AUROC, ARPL = 1) | relative mCE (ARPL = 1) |", "|---|---|---|"]
        rows += [f"| {m} | {v['mce']:.3f} | {v['relative_mce']:.3f} |" for m, v in ce.items()]
        sections.append(("Corruption error (Hendrycks & Dietterich 2019), relative to ARPL", rows))
    return sections


def plot_robustness(records: list[dict[str, Any]], path: str | Path, metric: str = "auroc") -> Path:
    """``metric`` (mean over splits) vs severity, one line per method, one panel per corruption
    (severity 0: clean)."""
    import math

    from openmer.reporting.figures import _new_figure, _save

    mean = _mean_by(records, metric)
    names = sorted({c for _, c, _ in mean if c != "none"})
    methods = sorted({m for m, _, _ in mean})
    cols = min(4, max(1, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    fig = _new_figure((3.2 * cols, 2.6 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, c in zip(axes.flat, names, strict=False):
        for m in methods:
            sevs = [0, *sorted(s for mm, cc, s in mean if mm == m and cc == c)]
            ys = [100 * mean.get((m, "none" if s == 0 else c, s), float("nan")) for s in sevs]
            ax.plot(sevs, ys, marker="o", label=m)
        ax.set_title(c, fontsize=9)
        ax.set_xlabel("severity")
        ax.set_ylabel(f"{metric} (%)")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    if names:
        axes.flat[0].legend(fontsize=7)
    return _save(fig, path)


def robustness_config(data: str = "emodb", *, seed: int = 0, quick: bool = False) -> RobustnessConfig:
    """The preset on ``data``: that dataset's media preset (EmoDB's for ravdess-speech, on its own
    levels), the middle openness level, 4 splits; post-hoc scores off. ``quick``: the feature
    methods, one split, :data:`QUICK_CORRUPTIONS` at :data:`QUICK_SEVERITIES`.

    Raises:
        ConfigError: ``data`` not in :data:`DATASETS`.
    """
    from openmer.methods.registry import list_methods
    from openmer.protocol import load_protocol

    if data not in DATASETS:
        raise ConfigError(f"benchmark robustness runs on {', '.join(DATASETS)}, not {data!r}")
    base = dataset_preset(data, seed=seed)  # the preset of the dataset's declared modalities
    levels = tuple(load_protocol(data).levels)
    update: dict[str, Any] = {"dataset": data, "levels": (levels[len(levels) // 2],), "n_splits": 4,
                              "posthoc": (), "clip_posthoc": ()}
    if quick:
        update.update(n_splits=1, methods=tuple(m for m in ("msp", "arpl") if m in list_methods(consumes="features")),
                      corruptions=tuple(c for c in QUICK_CORRUPTIONS if CORRUPTIONS[c].modality in base.modalities)
                      or ("drop_text",), severities=QUICK_SEVERITIES)
    return RobustnessConfig(**{**base.model_dump(), **update})


def run_robustness(cfg: RobustnessConfig, *, progress: Progress | None = None, journal: TrialJournal | None = None,
                   data: tuple[Manifest, Protocol] | None = None) -> BenchmarkResult:
    """Run the robustness benchmark (module docstring); the records are :func:`expand_records`'s.

    ``data``: the manifest and protocol (default: the built-in ``cfg.dataset``'s).

    Raises:
        ConfigError: an unknown corruption; SharedDataMissing without ../shared.
    """
    t0 = time.perf_counter()
    names = parse_corruptions(cfg.corruptions)
    cfg = cfg.model_copy(update={"corruptions": names})
    manifest, protocol = data or _media_with_protocol(cfg.dataset)
    plan = media_plan(cfg, protocol)
    hook = RobustnessHook(conditions(cfg), seed=cfg.seed, babble_clips=cfg.babble_clips)
    source = ClipSource(manifest, cfg.modalities, cfg.profile, cfg.encoder_options)
    trial_data = clip_data(plan, source, progress=progress)  # once, for the clean and the augmented trials
    out = run_trials(replace(plan, hooks=(*plan.hooks, hook)), trial_data, progress=progress, journal=journal)
    records = expand_records(out.records)
    train_set = {"clean": cfg.dataset}
    if cfg.augment:  # the same methods and splits trained on augmented clips; the hook's corrupted test features shared
        aug = Augmentation(parse_corruptions(cfg.augment), p=cfg.augment_p, max_severity=cfg.augment_max_severity)
        # the same corrupted test clips and their encodings
        aug_hook = replace(hook, augment=(aug.names, aug.p, aug.max_severity))
        aug_out = run_trials(replace(plan, hooks=(*plan.hooks, aug_hook),
                                     augment=TrainingAugmentation.build(aug, plan, trial_data)), trial_data,
                             progress=progress, journal=journal)
        train_set["augmented"] = f"{cfg.dataset} + augment {','.join(aug.names)}"
        for r in (aug_records := expand_records(aug_out.records)):
            r.update(method=r["method"] + AUGMENTED, training="augmented", augment=",".join(aug.names))
        for run in aug_out.runs:
            run.method += AUGMENTED
        records += aug_records
        out.runs += aug_out.runs
        out.left_out.update({k + " " + AUGMENTED: v for k, v in aug_out.left_out.items()})
        out.seconds.update({k + AUGMENTED: v for k, v in aug_out.seconds.items()})
    for r in records:  # results.md's tables: one row per test condition (the cross-dataset keys)
        r.setdefault("training", "clean")
        r["train_set"] = train_set[r["training"]]
        r["test_set"] = cfg.dataset if r["corruption"] == "none" else condition_label(
            cfg.dataset, r["corruption"], int(r["severity"]))
    skipped = [n for n in names if CORRUPTIONS[n].modality not in cfg.modalities]
    meta = benchmark_meta(cfg, protocol, t0, encoders=None if out.profile is None else out.profile.to_dict(),
                          left_out=out.left_out, left_out_corruptions=skipped,
                          corruption_error=corruption_errors(records),
                          corrupted_clip_cache=hook.cache_counts(),
                          timings_s={f"{k}_s": round(v, 1) for k, v in out.seconds.items()})
    sections = robustness_sections(records)
    if cfg.augment:
        sections += augmentation_sections(records, parse_corruptions(cfg.augment))
    return BenchmarkResult(records=records, runs=out.runs, meta=meta, sections=sections)


#: what an augmented method's records and runs are named after (``"arpl+aug"``)
AUGMENTED = "+aug"

#: the columns of the comparison: metric, header
_DELTAS = (("auroc", "ΔAUROC"), ("oscr", "ΔOSCR"), ("fpr_at_threshold", "ΔFPR@thr"),
           ("tpr_at_threshold", "ΔTPR@thr"), ("fpr_at_threshold_recalibrated", "ΔFPR@thr recal."))


def augmentation_deltas(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Augmented minus clean training, per method and test family, paired by split.

    For each method ``m`` with records of ``m`` and ``m+aug``, each family of the tested
    corruptions (``"clean"``: the uncorrupted test set) and each (level, split, modalities) both
    ran: the mean of each metric over the family's (corruption, severity) conditions, augmented
    minus clean. Returns one dict per (method, family): ``method``, ``family``, ``splits``,
    ``clean_<metric>`` / ``augmented_<metric>`` (means over splits) and ``delta_<metric>_mean`` /
    ``delta_<metric>_std`` (over splits, ddof=0), metrics as fractions.
    """
    def family(r: Mapping[str, Any]) -> str:
        return "clean" if r["corruption"] == "none" else CORRUPTIONS[str(r["corruption"])].family

    cells: dict[tuple[str, str, bool, tuple[Any, ...]], list[Mapping[str, Any]]] = {}
    for r in records:
        m = str(r["method"])
        aug = m.endswith(AUGMENTED)
        key = (m.removesuffix(AUGMENTED), family(r), aug, (r.get("level"), r.get("split"), r.get("modalities")))
        cells.setdefault(key, []).append(r)
    out = []
    methods = sorted({k[0] for k in cells if k[2]})
    families = sorted({k[1] for k in cells}, key=lambda f: (f != "clean", f))
    for m in methods:
        for fam in families:
            trials = sorted({k[3] for k in cells if k[:3] == (m, fam, True) and (m, fam, False, k[3]) in cells},
                            key=str)
            if not trials:
                continue
            row: dict[str, Any] = {"method": m, "family": fam, "splits": len(trials)}
            for metric, _ in _DELTAS:
                a, c = (np.array([np.mean([float(r.get(metric, np.nan)) for r in cells[(m, fam, aug, t)]])
                                  for t in trials]) for aug in (True, False))
                row.update({f"clean_{metric}": float(c.mean()), f"augmented_{metric}": float(a.mean()),
                            f"delta_{metric}_mean": float((a - c).mean()), f"delta_{metric}_std": float((a - c).std())})
            out.append(row)
    return out


def augmentation_sections(records: Sequence[Mapping[str, Any]],
                          augment: Sequence[str]) -> list[tuple[str, list[str]]]:
    """results.md: :func:`augmentation_deltas` as a table, the families trained on (``augment``'s) marked."""
    trained = {CORRUPTIONS[n].family for n in augment}
    rows = augmentation_deltas(records)
    if not rows:
        return []
    note = (f"Each method trained on training clips augmented with {', '.join(augment)} (families "
            f"{', '.join(sorted(trained))}; docs/robustness.md) minus the same method trained clean, on the same "
            "splits and test clips: per split, the mean over the family's corruptions and severities, then "
            "mean ± std over splits, in points (%). Held out: a family the augmentation did not use. "
            "FPR@thr: known test clips flagged unknown at the deployable threshold (chosen on clean validation "
            "clips); recal.: at the threshold re-chosen on 32 known-class validation clips under the same corruption.")
    header = ("| method | tested on | held out | AUROC clean-trained | " + " | ".join(h for _, h in _DELTAS)
              + " | FPR@thr clean-trained: fixed / recal. | FPR@thr augmented: fixed / recal. | splits |")
    lines = [note, "", header, "|" + "---|" * (len(_DELTAS) + 7)]
    for r in rows:
        held = "" if r["family"] == "clean" else ("no" if r["family"] in trained else "yes")
        deltas = " | ".join(f"{100 * r[f'delta_{m}_mean']:+.1f} ± {100 * r[f'delta_{m}_std']:.1f}" for m, _ in _DELTAS)
        fpr = {w: f"{100 * r[f'{w}_fpr_at_threshold']:.1f} / {100 * r[f'{w}_fpr_at_threshold_recalibrated']:.1f}"
               for w in ("clean", "augmented")}
        lines.append(f"| {r['method']} | {r['family']} | {held} | {100 * r['clean_auroc']:.1f} | {deltas} | "
                     f"{fpr['clean']} | {fpr['augmented']} | {r['splits']} |")
    return [("Training with --augment: augmented minus clean training (mean ± std over splits, points)", lines)]


@register_benchmark("robustness")
def plan_robustness(*, seed: int = 0, quick: bool = False, profile: str | None = None,
                    roots: Sequence[str] = ()) -> BenchmarkPlan:
    """``openmer benchmark robustness`` on EmoDB (``--data`` picks another: :func:`robustness_config`)."""
    refuse_roots("robustness", roots)
    return BenchmarkPlan(on_profile(robustness_config(seed=seed, quick=quick), profile), run_robustness,
                         cpu_preset=True)
