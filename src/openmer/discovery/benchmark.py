"""``openmer benchmark NAME --discover --enrol 5,10,20``: discovery and enrolment measured per trial.

A plan's trial hook (:class:`DiscoveryHook`, run after each trial by
:func:`openmer.benchmarks.trials.run_trials`) adds to the trial's records:

``discovery`` (on the trial's unknown-class test clips, against their true classes):

- ``trained``: the clips clustered on the trained method's features (:meth:`OpenSetMethod.features`:
  HCEP's F_M, a feature method's learned embedding, its head's penultimate features) with the rule
  of :mod:`openmer.discovery.cluster`, named through the run's text alignment (its own, else a
  ridge map fitted on its training clips' features);
- ``baseline``: the same rule on the clips' unprompted encoder features (the trial's modalities,
  concatenated, blocks absent for a clip filled with the training mean), named through a ridge
  map from the unprompted training features to the raw text encoder's class sentences;
- each with ``ari``, ``nmi`` (scikit-learn; clips in no cluster form one extra group), ``purity``
  (over the clustered clips), ``coverage`` (share clustered), ``naming_accuracy`` (share of the clips
  whose true class, through the shared vocabulary, is among their cluster's top-3 names; clips in
  no cluster count as misses), ``k``, ``dim`` (the features' width).

``enrolment`` (``--enrol N,...``): for each unknown class of the split and each N, N clips of
that class from the training speakers (the groups outside the test partition; seeded draw) are
enrolled (:func:`openmer.discovery.enrol.enrol_method`); on the test speakers: the enrolled
class's ``recall`` (predicted as it and accepted at the new threshold), the old classes'
closed-set accuracy ``acc_before`` / ``acc_after``, and AUROC / OSCR of the remaining unknowns
(the other unknown classes) ``auroc_before`` / ``auroc_after`` / ``oscr_before`` / ``oscr_after``;
means over the unknown classes per N.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from openmer.discovery.cluster import UNCLUSTERED, Clustering, cluster_rejected
from openmer.discovery.core import cluster_names, has_text_alignment, method_alignment
from openmer.discovery.naming import RidgeAlignment, TextAlignment, encode_sentences
from openmer.discovery.words import Vocabulary, default_vocabulary, shared_word
from openmer.errors import NotSupportedError
from openmer.methods.base import OpenSetMethod

__all__ = ["DiscoveryHook", "answer_rows", "clustering_scores", "naming_accuracy", "summary_rows",
           "summary_sections"]


def clustering_scores(labels: np.ndarray, truth: Sequence[str]) -> dict[str, float]:
    """ARI, NMI, purity and coverage of cluster ``labels`` (-1: none) against true class names.

    Purity: over the clustered clips, the share in their cluster's most common true class;
    clips in no cluster form one extra group for ARI and NMI.
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    labels = np.asarray(labels)
    truth_arr = np.asarray(list(truth))
    if len(labels) == 0:
        return {"ari": float("nan"), "nmi": float("nan"), "purity": float("nan"), "coverage": float("nan")}
    clustered = labels >= 0
    purity = float("nan")
    if clustered.any():
        hits = 0
        for c in np.unique(labels[clustered]):
            _, counts = np.unique(truth_arr[labels == c], return_counts=True)
            hits += int(counts.max())
        purity = hits / int(clustered.sum())
    return {"ari": float(adjusted_rand_score(truth_arr, labels)),
            "nmi": float(normalized_mutual_info_score(truth_arr, labels)),
            "purity": purity, "coverage": float(clustered.mean())}


def naming_accuracy(labels: np.ndarray, truth: Sequence[str], names: Sequence[Sequence[tuple[str, float]]]) -> float:
    """Share of clips whose true class (shared name) is among their cluster's names (shared names);
    a clip in no cluster is a miss."""
    if len(labels) == 0:
        return float("nan")
    hits = 0
    for c, t in zip(labels, truth, strict=True):
        if c >= 0 and shared_word(t) in {shared_word(w) for w, _ in names[int(c)]}:
            hits += 1
    return hits / len(labels)


def _measure(features: np.ndarray, truth: list[str], align: TextAlignment | None, text_encoder: Any,
             vocab: Vocabulary, *, min_size: int, k_max: int, top: int, seed: int) -> dict[str, Any]:
    clustering: Clustering = cluster_rejected(features, min_size=min_size, k_max=k_max, seed=seed)
    out: dict[str, Any] = {"k": clustering.n_clusters, "dim": int(features.shape[1]),
                           **clustering_scores(clustering.labels, truth)}
    if align is not None and clustering.n_clusters:
        names = cluster_names(features, clustering, align, text_encoder, vocab, top)
        out["naming_accuracy"] = naming_accuracy(clustering.labels, truth, names)
        out["names"] = [[w for w, _ in n] for n in names]
    else:
        out["naming_accuracy"] = 0.0 if align is not None else float("nan")
    out["n_unclustered"] = int((clustering.labels == UNCLUSTERED).sum())
    return out


@dataclass(frozen=True)
class DiscoveryHook:
    """The trial hook of ``--discover`` / ``--enrol`` (module docstring).

    Attributes:
        discover: measure the clustering and naming of the unknown test clips.
        enrol: examples per enrolled class (empty: no enrolment).
        min_size, k_max, top: the clustering rule and names per cluster.
        steps, lr: the enrolment's tuning.
    """

    discover: bool = True
    enrol: tuple[int, ...] = ()
    min_size: int = 3
    k_max: int = 8
    top: int = 3
    steps: int = 60
    lr: float = 0.05

    def __call__(self, ctx: Any) -> dict[str, Any]:
        """Measure one trial; ``ctx`` is :class:`openmer.benchmarks.trials.TrialContext`."""
        out: dict[str, Any] = {}
        if self.discover:
            out["discovery"] = self._discovery(ctx)
        if self.enrol:
            out["enrolment"] = self._enrolment(ctx)
        return out

    def sections(self, records: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[str]]]:
        """The ``results.md`` sections of the measurements over all ``records`` (:func:`summary_sections`)."""
        return summary_sections(records)

    # ------------------------------------------------------------------ discovery
    def _scores(self, ctx: Any, rows: np.ndarray, labels: np.ndarray | None = None,
                method: OpenSetMethod | None = None) -> tuple[Any, np.ndarray | None]:
        y = ctx.y if labels is None else labels
        part = ctx.inputs.parts({"train": ctx.rows["train"], "x": rows}, labels=y)["x"]
        batches = part.batches(ctx.batch_size) if ctx.batch_size else part.batches()
        scores, feats = (method or ctx.method).score_all_with_features(batches)
        return scores, None if feats is None else feats.double().numpy()

    def _unprompted(self, ctx: Any) -> np.ndarray:
        """(N, D) every row's unprompted features of the trial's modalities (training-mean fill)."""
        from openmer.data.feature_blocks import fill_absent_blocks
        from openmer.data.feature_cache import encode_features
        from openmer.paths import default_cache_dir

        data = ctx.data
        mods = list(ctx.modalities)
        feats, present = data.features, data.present
        if feats is None or any(m not in feats for m in mods):
            enc = {m: e for m, e in data.encoders.items() if m in mods}
            feats, present = encode_features(data.clips, enc, cache_dir=default_cache_dir())
        x, _ = fill_absent_blocks(feats, present, mods, train_rows=ctx.rows["train"])
        return np.asarray(x, dtype=np.float64)

    def _discovery(self, ctx: Any) -> dict[str, Any]:
        te = np.asarray(ctx.rows["test"])
        unknown = te[ctx.y[te] < 0]
        truth = [ctx.data.labels[j] for j in unknown]
        text_encoder = ctx.data.encoders.get("text")
        vocab = default_vocabulary().without(ctx.split.known_classes)
        sentences = [vocab.template.format(c) for c in ctx.split.known_classes]
        opts = {"min_size": self.min_size, "k_max": self.k_max, "top": self.top, "seed": ctx.seed}
        result: dict[str, Any] = {"n_unknown": len(unknown), "classes": sorted(set(truth))}
        if ctx.outcome.features is not None:  # the trial's scoring pass (rows in test order)
            f_unknown = ctx.outcome.features.double().numpy()[ctx.y[te] < 0]
        else:
            _, f_unknown = self._scores(ctx, unknown)
        if f_unknown is None:
            result["trained"] = {"error": f"{ctx.method.name} has no features"}
        else:
            align: TextAlignment | None = None
            if text_encoder is not None:
                if has_text_alignment(ctx.method, f_unknown):
                    align, how = method_alignment(ctx.method), "own (text_query)"
                else:
                    tr = np.asarray(ctx.rows["train"])
                    f_train = self._scores(ctx, tr)[1]
                    assert f_train is not None  # the method has features (f_unknown above)
                    align = RidgeAlignment(f_train, ctx.y[tr], encode_sentences(text_encoder, sentences))
                    how = "ridge on training features"
            else:
                how = "none (no text encoder)"
            result["trained"] = {**_measure(f_unknown, truth, align, text_encoder, vocab, **opts), "alignment": how}
        x = self._unprompted(ctx)
        tr = np.asarray(ctx.rows["train"])
        base_align = None if text_encoder is None else RidgeAlignment(
            x[tr], ctx.y[tr], encode_sentences(text_encoder, sentences))
        result["baseline"] = {**_measure(x[unknown], truth, base_align, text_encoder, vocab, **opts),
                              "alignment": "ridge from unprompted training features to the raw text encoder"}
        return result

    # ------------------------------------------------------------------ enrolment
    def _enrolment(self, ctx: Any) -> dict[str, Any]:
        from openmer.discovery.enrol import enrol_method
        from openmer.methods.threshold import choose_threshold
        from openmer.metrics import auroc, closed_set_accuracy, oscr

        method: OpenSetMethod = ctx.method
        if method.class_parameters() is None:
            return {"error": f"{method.name} cannot take a new class (class_parameters)"}
        te = np.asarray(ctx.rows["test"])
        test_groups = {ctx.data.groups[j] for j in te}
        labels = np.asarray(ctx.data.labels, dtype=object)
        groups = np.asarray(ctx.data.groups, dtype=object)
        k = method.num_classes
        before = ctx.outcome.scores if ctx.outcome.scores is not None else self._scores(ctx, te)[0]
        conf_b, pred_b = before.confidence.double().numpy(), before.prediction.numpy()
        y_te = ctx.y[te]
        acc_before = closed_set_accuracy(pred_b, y_te, num_classes=k)
        rng = np.random.default_rng(ctx.seed)
        bs = ctx.batch_size or 64
        # the training and test clips are encoded once per trial, not per enrolment and step
        # (OpenSetMethod.encode_samples_once: valid for every method enrolled from this one)
        fixed = ctx.inputs.parts({"train": ctx.rows["train"], "test": te}, labels=ctx.y)
        train_b = [method.encode_samples_once(b) for b in fixed["train"].batches(bs)]
        test_b = [method.encode_samples_once(b) for b in fixed["test"].batches(bs)]
        per_n: dict[str, Any] = {}
        for n in self.enrol:
            rows_out = []
            for cls in ctx.split.unknown_classes:
                pool = np.flatnonzero((labels == cls) & ~np.isin(groups, list(test_groups)))
                if len(pool) == 0:
                    continue
                ex = np.sort(rng.choice(pool, size=min(n, len(pool)), replace=False))
                y_new = ctx.y.copy()
                y_new[ex] = k
                in_test = labels[te] == cls
                y_new[te[in_test]] = k
                ex_b = ctx.inputs.parts({"train": ctx.rows["train"], "ex": ex}, labels=y_new)["ex"].batches(bs)
                try:
                    new, _, _, known_conf = enrol_method(method, cls, train_b, ex_b, steps=self.steps, lr=self.lr)
                except NotSupportedError as exc:
                    return {"error": str(exc)}
                thr = choose_threshold(known_conf, self._acceptance(ctx))
                after = new.score_all(test_b)
                conf_a, pred_a = after.confidence.double().numpy(), after.prediction.numpy()
                y_after = y_new[te]
                remaining = (y_te >= 0) | ~in_test  # before: knowns and the other unknown classes
                rows_out.append({
                    "class": cls, "n_examples": len(ex),
                    "recall": float(((pred_a == k) & (conf_a >= thr))[in_test].mean()) if in_test.any() else np.nan,
                    "acc_before": acc_before,
                    "acc_after": closed_set_accuracy(pred_a[y_te >= 0], y_te[y_te >= 0], num_classes=k + 1),
                    "auroc_before": auroc(conf_b[remaining], y_te[remaining]),
                    "auroc_after": auroc(conf_a, y_after),
                    "oscr_before": oscr(conf_b[remaining], pred_b[remaining], y_te[remaining], num_classes=k),
                    "oscr_after": oscr(conf_a, pred_a, y_after, num_classes=k + 1),
                })
            keys = ("recall", "acc_before", "acc_after", "auroc_before", "auroc_after", "oscr_before", "oscr_after")
            per_n[str(n)] = {**{key: float(np.nanmean([r[key] for r in rows_out])) if rows_out else float("nan")
                                for key in keys}, "classes": rows_out}
        return per_n

    @staticmethod
    def _acceptance(ctx: Any) -> float:
        from openmer.methods.threshold import DEFAULT_ACCEPTANCE

        return float(getattr(ctx, "acceptance", DEFAULT_ACCEPTANCE))


#: what an enrolled class must reach (issue 28): its recall on the test speakers, and the most the
#: old classes' closed-set accuracy may fall (3 points)
TARGET_RECALL, MAX_OLD_DROP = 0.70, 0.03
DISCOVERY_METRICS = ("ari", "nmi", "purity", "naming_accuracy")


def _per_level(records: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str, str], list[Mapping[str, Any]]]:
    """(method, modalities, level) -> one record per split among those carrying the measurements
    (a trained method's; its post-hoc rows repeat the same hook numbers)."""
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for r in records:
        if ("discovery" in r or "enrolment" in r) and "posthoc_of" not in r:  # one row per trained method
            key = (str(r.get("method")), str(r.get("modalities")), str(r.get("level")))
            if not any(x.get("split") == r.get("split") for x in groups.get(key, [])):
                groups.setdefault(key, []).append(r)
    return groups


def summary_rows(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (method, modalities, level) with mean and std over splits of the discovery and
    enrolment numbers of ``records`` (those that carry them)."""
    groups = _per_level(records)
    rows = []
    for (method, mods, level), members in groups.items():
        row: dict[str, Any] = {"method": method, "modalities": mods, "level": level, "n_splits": len(members)}
        for side in ("trained", "baseline"):
            for m in ("ari", "nmi", "purity", "naming_accuracy", "k"):
                vals = [float(x["discovery"][side].get(m, np.nan)) for x in members if "discovery" in x
                        and side in x["discovery"]]
                if vals:
                    row[f"{side}_{m}"] = (float(np.nanmean(vals)), float(np.nanstd(vals)))
        for x in members:
            for n, e in x.get("enrolment", {}).items():
                if isinstance(e, dict) and "recall" in e:
                    for m in ("recall", "acc_before", "acc_after", "auroc_before", "auroc_after", "oscr_before",
                              "oscr_after"):
                        row.setdefault(f"enrol{n}_{m}", []).append(e[m])
        for name in [k for k in row if k.startswith("enrol")]:
            vals = row[name]
            row[name] = (float(np.nanmean(vals)), float(np.nanstd(vals)))
        rows.append(row)
    return rows


def _split_means(cells: Mapping[tuple[str, Any], float]) -> tuple[float, float]:
    """``(level, split) -> value``: the mean over levels within each split, then mean and std over splits."""
    per_split: dict[Any, list[float]] = {}
    for (_, split), v in cells.items():
        per_split.setdefault(split, []).append(v)
    means = [float(np.nanmean(v)) for v in per_split.values()]
    return (float(np.nanmean(means)), float(np.nanstd(means))) if means else (float("nan"), float("nan"))


def answer_rows(records: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The two answers the measurements are for, per (method, modalities), over every level and split.

    ``discovery``: per metric of :data:`DISCOVERY_METRICS`, the trained and baseline values and
    their difference (mean over levels within a split, then mean and std over splits), and in how
    many trials the trained features had the higher ARI. ``enrolment``: per N, the enrolled
    class's recall and the old classes' accuracy drop (before - after; same averaging), the trials
    that met both :data:`TARGET_RECALL` and :data:`MAX_OLD_DROP`, and ``meets`` (both met by the
    means over levels and splits)."""
    by_method: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for (method, mods, _), members in _per_level(records).items():
        by_method.setdefault((method, mods), []).extend(members)
    disc, enr = [], []
    for (method, mods), members in by_method.items():
        trials = [(str(r.get("level")), r.get("split"), r) for r in members]
        both = [(lv, sp, r["discovery"]) for lv, sp, r in trials if "discovery" in r
                and "ari" in r["discovery"].get("trained", {}) and "ari" in r["discovery"].get("baseline", {})]
        if both:
            row: dict[str, Any] = {"method": method, "modalities": mods, "n_trials": len(both),
                                   "trained_better_ari": sum(d["trained"]["ari"] > d["baseline"]["ari"]
                                                             for _, _, d in both)}
            for m in DISCOVERY_METRICS:
                for side in ("trained", "baseline"):
                    row[f"{side}_{m}"] = _split_means({(lv, sp): float(d[side].get(m, np.nan)) for lv, sp, d in both})
                row[f"delta_{m}"] = _split_means({(lv, sp): float(d["trained"].get(m, np.nan))
                                                  - float(d["baseline"].get(m, np.nan)) for lv, sp, d in both})
            disc.append(row)
        ns = sorted({int(n) for _, _, r in trials for n, e in r.get("enrolment", {}).items()
                     if isinstance(e, dict) and "recall" in e})
        for n in ns:
            got = [(lv, sp, r["enrolment"][str(n)]) for lv, sp, r in trials
                   if isinstance(r.get("enrolment", {}).get(str(n)), dict) and "recall" in r["enrolment"][str(n)]]
            recall = _split_means({(lv, sp): float(e["recall"]) for lv, sp, e in got})
            drop = _split_means({(lv, sp): float(e["acc_before"]) - float(e["acc_after"]) for lv, sp, e in got})
            enr.append({"method": method, "modalities": mods, "n": n, "n_trials": len(got), "recall": recall,
                        "old_drop": drop, "trials_meeting": sum(e["recall"] >= TARGET_RECALL and
                                                                e["acc_before"] - e["acc_after"] <= MAX_OLD_DROP
                                                                for _, _, e in got),
                        "meets": recall[0] >= TARGET_RECALL and drop[0] <= MAX_OLD_DROP})
    return {"discovery": disc, "enrolment": enr}


def summary_sections(records: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[str]]]:
    """The ``results.md`` sections of ``--discover`` / ``--enrol`` (``(heading, markdown lines)``):
    mean ± std over splits; none when no record carries the numbers."""
    rows = summary_rows(records)
    if not rows:
        return []

    def ms(v: Any) -> str:
        return "-" if v is None else f"{100 * v[0]:.1f} ± {100 * v[1]:.1f}"

    disc = [("On the unknown-class test clips, against their true classes; %, mean ± std over splits. trained: the "
            "method's features (OpenSetMethod.features) named through its text alignment; baseline: the same "
            "cluster-count rule on the unprompted encoder features, named through the raw text encoder "
            "(docs/discover.md). Naming accuracy: true class (shared vocabulary) among its cluster's top-3 names."), "",
            "| method | modalities | level | features | ARI | NMI | purity | naming acc. | clusters |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for side in ("trained", "baseline"):
            if f"{side}_ari" in r:
                k = r.get(f"{side}_k")
                disc.append(f"| {r['method']} | {r['modalities']} | {r['level']} | {side} | "
                            f"{ms(r.get(f'{side}_ari'))} | "
                            f"{ms(r.get(f'{side}_nmi'))} | {ms(r.get(f'{side}_purity'))} | "
                            f"{ms(r.get(f'{side}_naming_accuracy'))} | {'-' if k is None else f'{k[0]:.1f}'} |")
    out = [("Discovery of unknown classes (--discover)", disc)] if len(disc) > 4 else []
    ns = sorted({int(k[5:].split("_")[0]) for r in rows for k in r if k.startswith("enrol")})
    if ns:
        enr = [("N examples of each unknown class from the training speakers enrolled in turn; on the test "
               "speakers: the class's recall (predicted and accepted), the old classes' closed-set accuracy and "
               "AUROC / OSCR of the remaining unknowns, before / after; %, mean over the unknown classes, "
               "mean ± std over splits."), "",
               ("| method | modalities | level | N | recall | old acc. before | after | AUROC before | after | "
               "OSCR before | after |"), "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            for n in ns:
                if f"enrol{n}_recall" in r:
                    cells = " | ".join(ms(r.get(f"enrol{n}_{m}")) for m in (
                        "recall", "acc_before", "acc_after", "auroc_before", "auroc_after", "oscr_before",
                        "oscr_after"))
                    enr.append(f"| {r['method']} | {r['modalities']} | {r['level']} | {n} | {cells} |")
        out.append(("Enrolment of an unknown class (--enrol)", enr))
    out += _answer_section(answer_rows(records), ms)
    return out


def _answer_section(answers: Mapping[str, list[dict[str, Any]]], ms: Any) -> list[tuple[str, list[str]]]:
    """``results.md``'s closing answers (:func:`answer_rows`)."""
    lines: list[str] = []
    if answers["discovery"]:
        lines += [("Do the trained features group the unknown emotions better than the unprompted ones? Over every "
                  "level: %, mean over levels within a split, mean ± std over splits; Δ = trained - baseline."), "",
                  ("| method | modalities | ARI trained | ARI baseline | Δ ARI | Δ NMI | Δ purity | Δ naming acc. | "
                  "trials with higher ARI |"), "|---|---|---|---|---|---|---|---|---|"]
        for r in answers["discovery"]:
            lines.append(f"| {r['method']} | {r['modalities']} | {ms(r['trained_ari'])} | {ms(r['baseline_ari'])} | "
                         f"{ms(r['delta_ari'])} | {ms(r['delta_nmi'])} | {ms(r['delta_purity'])} | "
                         f"{ms(r['delta_naming_accuracy'])} | {r['trained_better_ari']} of {r['n_trials']} |")
        lines.append("")
    if answers["enrolment"]:
        lines += [(f"How many examples does an enrolled class need to reach {100 * TARGET_RECALL:.0f} % recall without "
                  f"costing the old classes more than {100 * MAX_OLD_DROP:.0f} points? Over every level (same "
                  "averaging); old-class drop = accuracy before - after."), "",
                  "| method | modalities | N | recall | old-class drop | trials meeting both | both met on average |",
                  "|---|---|---|---|---|---|---|"]
        for r in answers["enrolment"]:
            lines.append(f"| {r['method']} | {r['modalities']} | {r['n']} | {ms(r['recall'])} | {ms(r['old_drop'])} | "
                         f"{r['trials_meeting']} of {r['n_trials']} | {'yes' if r['meets'] else 'no'} |")
        methods = dict.fromkeys((r["method"], r["modalities"]) for r in answers["enrolment"])
        lines.append("")
        for method, mods in methods:
            rows = [r for r in answers["enrolment"] if (r["method"], r["modalities"]) == (method, mods)]
            met = [r["n"] for r in rows if r["meets"]]
            tried = "/".join(str(r["n"]) for r in rows)
            lines.append(f"- {method} ({mods}): " + (f"N = {min(met)} examples" if met else f"none of N = {tried}"))
    return [("Answers (--discover, --enrol)", lines)] if lines else []
