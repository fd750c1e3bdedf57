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
    benchmark_meta,
    clip_data,
    run_trials,
)
from openmer.data.clips import ClipDataset, modality_present
from openmer.data.manifest import Manifest
from openmer.errors import ConfigError, DataError
from openmer.media.corruptions import CORRUPTIONS, Augmentation, CorruptionPool, Sample, corrupt, parse_corruptions
from openmer.methods.inputs import FeatureInputs
from openmer.methods.threshold import DEFAULT_ACCEPTANCE, choose_threshold
from openmer.metrics import open_set_metrics
from openmer.protocol import Protocol

#: the datasets ``--data`` takes, with their preset
DATASETS = ("emodb", "ravdess-speech", "meld")

#: ``--quick``: a few corruptions and severities
QUICK_CORRUPTIONS = ("white_noise", "babble", "mp3")
QUICK_SEVERITIES = (1, 3)


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
    babble_clips: int = Field(default=24, gt=0)
    #: ``--augment``: corruptions (or families) applied to the training speakers' clips of the
    #: methods on features (:func:`augment_training_features`); ``()``: clean training
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


def neighbour_texts(clips: ClipDataset, groups: Sequence[str]) -> dict[int, str]:
    """Row -> the transcript of the next clip of the same speaker (manifest order, wrapping) whose
    transcript differs; rows without one are absent."""
    man = clips.manifest
    by_group: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    out: dict[int, str] = {}
    for rows in by_group.values():
        texts = [man.text_of(man[i]) or "" for i in rows]
        for k, i in enumerate(rows):
            for step in range(1, len(rows)):
                other = texts[(k + step) % len(rows)]
                if other and other != texts[k]:
                    out[i] = other
                    break
    return out


def babble_pool(clips: ClipDataset, groups: Sequence[str], train_rows: Sequence[int], test_rows: Sequence[int],
                n: int, seed: int) -> CorruptionPool:
    """Babble from up to ``n`` seeded clips of the training rows, and the training transcripts'
    words (substitutes).

    Raises:
        DataError: a training clip's speaker is also a test speaker (the protocol's groups overlap).
    """
    test_groups = {groups[i] for i in test_rows}
    train = [int(i) for i in train_rows]
    rng = np.random.default_rng(seed)
    pick: list[int] = rng.choice(len(train), size=min(n, len(train)), replace=False).tolist() if train else []
    waves, owners = [], []
    for j in pick:
        i = train[int(j)]
        if groups[i] in test_groups:
            raise DataError(clips.manifest.root, f"babble clip {i} is from test speaker {groups[i]!r}")
        item = clips[i]
        if item.get("audio") is not None:
            waves.append(np.asarray(item["audio"], dtype=np.float32))
            owners.append(groups[i])
    man = clips.manifest
    vocab = sorted({w for i in train for w in (man.text_of(man[i]) or "").split()})
    return CorruptionPool(babble=tuple(waves), babble_groups=tuple(owners), vocabulary=tuple(vocab))


def corrupted_items(clips: ClipDataset, rows: Sequence[int], name: str, severity: int, pool: CorruptionPool,
                    neighbours: dict[int, str], seed: int) -> list[dict[str, Any]]:
    """The clips at ``rows`` as :meth:`ClipDataset.collate_fn` items, under ``name`` at ``severity``."""
    items = []
    for i in rows:
        item = dict(clips[int(i)])
        audio = item.get("audio")
        s = Sample(audio=None if audio is None else np.asarray(audio, dtype=np.float32), text=item.get("text"),
                   neighbour_text=neighbours.get(int(i)))
        out = corrupt(s, name, severity, _clip_rng(seed, name, severity, int(i)), pool)
        if "audio" in item:
            item["audio"] = None if out.audio is None else torch.from_numpy(np.ascontiguousarray(out.audio))
        if "text" in item:
            item["text"] = out.text or None
        items.append(item)
    return items


def encode_items(items: list[dict[str, Any]], encoders: dict[str, Any], modalities: Sequence[str],
                 batch_size: int = 16) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Unprompted features (modality -> (n, D)) and presence (modality -> (n,) bool) of ``items``,
    as :func:`openmer.data.feature_cache.encode_features` computes them, without any cache."""
    feats = {m: np.zeros((len(items), int(encoders[m].embed_dim)), np.float32) for m in modalities}
    present = {m: np.zeros(len(items), bool) for m in modalities}
    with torch.no_grad():
        for start in range(0, len(items), batch_size):
            batch = ClipDataset.collate_fn(items[start:start + batch_size])
            for m in modalities:
                sel = modality_present(batch, m, len(items[start:start + batch_size])).nonzero().squeeze(1)
                if len(sel) == 0:
                    continue
                out = encoders[m].encode_batch(batch, sel).float().cpu().numpy()
                feats[m][start + sel.numpy()] = out
                present[m][start + sel.numpy()] = True
    return feats, present


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
        before = {m: c.keys() for m, c in caches.items()}
        yield
        if key in self._prefixes:
            self._count("prefix_sets", 1, 0)
            return
        self._count("prefix_sets", 0, 1)
        new = {m: c.entries(c.keys() - before[m]) for m, c in caches.items()}
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
    #: memory for the run's corrupted clips and encodings (:class:`CorruptedClipCache`; 0: none kept)
    cache_mb: int = field(default=RUN_CACHE_MB, compare=False, repr=False)
    _cache: CorruptedClipCache = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # shared by every trial of the run; not part of a trial's identity (the journal reads the repr)
        object.__setattr__(self, "_cache", CorruptedClipCache(self.cache_mb << 20))

    def cache_counts(self) -> dict[str, int]:
        """Hits and misses of the run's cache so far (:attr:`CorruptedClipCache.counts`) and its MiB."""
        return {**self._cache.counts, "mib": self._cache.nbytes >> 20}

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
        cache = self._cache
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


def augment_training_features(data: TrialData, train_groups: Sequence[str], augmentation: Augmentation, *,
                              seed: int, babble_clips: int = 24) -> TrialData:
    """``data`` with the features of the training speakers' clips replaced, each with probability
    ``augmentation.p``, by those of one augmented copy (a corruption of ``augmentation.names`` at a
    severity uniform in ``1..max_severity``), encoded once per seed and kept in memory.

    One augmented copy per clip (K = 1), drawn per clip from ``default_rng([seed, row])``: the
    methods on features train on a fixed, seeded mix of clean and corrupted clips (their features
    are cached, so a new corruption each epoch would mean encoding each epoch). Validation and test
    speakers' rows are never touched (their groups are not ``train_groups``). Babble draws on the
    training speakers' clips.
    """
    assert data.features is not None and data.clips is not None
    groups = set(train_groups)
    rows = [i for i, g in enumerate(data.groups) if g in groups]
    pool = babble_pool(data.clips, data.groups, rows, [], babble_clips, seed)
    neighbours = neighbour_texts(data.clips, data.groups)
    chosen, items = [], []
    for i in rows:
        item = dict(data.clips[i])
        audio = item.get("audio")
        s = Sample(audio=None if audio is None else np.asarray(audio, dtype=np.float32), text=item.get("text"),
                   neighbour_text=neighbours.get(i))
        out = augmentation(s, np.random.default_rng([seed, i]), pool)
        if out is s:
            continue
        if "audio" in item:
            item["audio"] = None if out.audio is None else torch.from_numpy(np.ascontiguousarray(out.audio))
        if "text" in item:
            item["text"] = out.text or None
        chosen.append(i)
        items.append(item)
    feats = {m: np.array(v, copy=True) for m, v in data.features.items()}
    present = {m: (np.ones(len(v), bool) if data.present is None else np.array(data.present[m], copy=True))
               for m, v in feats.items()}
    if items:
        enc, pres = encode_items(items, data.encoders, list(feats))
        for m in feats:
            feats[m][chosen] = enc[m]
            present[m][chosen] = pres[m]
    return replace(data, features=feats, present=present)


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
    conds = conditions(cfg)
    plan = media_plan(cfg, protocol)
    hook = RobustnessHook(conds, seed=cfg.seed, babble_clips=cfg.babble_clips,
                          augment=(cfg.augment, cfg.augment_p, cfg.augment_max_severity))
    plan = replace(plan, hooks=(*plan.hooks, hook))
    source = ClipSource(manifest, cfg.modalities, cfg.profile, cfg.encoder_options)
    if cfg.augment:  # the clean features of the hook's test and validation rows stay as they are
        clean = clip_data(plan, source, progress=progress)
        if clean.features is None:
            raise ConfigError("--augment applies to the methods on features; none is among the methods")
        aug = Augmentation(parse_corruptions(cfg.augment), p=cfg.augment_p, max_severity=cfg.augment_max_severity)
        trial_data: TrialData | ClipSource = augment_training_features(
            clean, protocol.partition.train_groups, aug, seed=cfg.seed, babble_clips=cfg.babble_clips)
    else:
        trial_data = source
    out = run_trials(plan, trial_data, progress=progress, journal=journal)
    records = expand_records(out.records)
    for r in records:  # results.md's tables: one row per test condition (the cross-dataset keys)
        r["train_set"] = cfg.dataset
        r["test_set"] = cfg.dataset if r["corruption"] == "none" else condition_label(
            cfg.dataset, r["corruption"], int(r["severity"]))
    skipped = [n for n in names if CORRUPTIONS[n].modality not in cfg.modalities]
    meta = benchmark_meta(cfg, protocol, t0, encoders=None if out.profile is None else out.profile.to_dict(),
                          left_out=out.left_out, left_out_corruptions=skipped,
                          corruption_error=corruption_errors(records),
                          corrupted_clip_cache=hook.cache_counts(),
                          timings_s={f"{k}_s": round(v, 1) for k, v in out.seconds.items()})
    return BenchmarkResult(records=records, runs=out.runs, meta=meta, sections=robustness_sections(records))


@register_benchmark("robustness")
def plan_robustness(*, seed: int = 0, quick: bool = False, profile: str | None = None,
                    roots: Sequence[str] = ()) -> BenchmarkPlan:
    """``openmer benchmark robustness`` on EmoDB (``--data`` picks another: :func:`robustness_config`)."""
    refuse_roots("robustness", roots)
    return BenchmarkPlan(on_profile(robustness_config(seed=seed, quick=quick), profile), run_robustness,
                         cpu_preset=True)
