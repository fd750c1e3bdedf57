"""``openmer discover``: group the clips a run rejects as ``unknown`` and name what each group resembles.

1. every clip is scored by the run (its one input pipeline, :func:`openmer.methods.inputs.method_inputs`);
   the clips below the run's deployable threshold are the rejected ones (HCEP Algorithm 1);
2. the rejected clips are clustered on the run's own features, the ones its scores come from
   (one interface call: :meth:`OpenSetMethod.score_all_with_features`, i.e. ``features``; HCEP: F_M;
   a feature method: its learned embedding, the head's penultimate features),
   with the rule of :mod:`openmer.discovery.cluster`; a clip that fits no cluster stays ``unknown``;
3. each cluster is named from an open vocabulary (:mod:`openmer.discovery.words`) through a text
   alignment (:mod:`openmer.discovery.naming`): the run's own (HCEP's L_emo), else a ridge map
   fitted on the run's training clips;
4. :func:`write_discovery` writes ``clusters.json``, ``clusters.md``, ``assignments.csv`` and
   ``map.png`` (t-SNE of every clip, coloured by known class or cluster, with the names).
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from openmer.data.clips import ClipDataset, vision_preprocess
from openmer.data.manifest import Manifest, label_indices
from openmer.discovery.cluster import UNCLUSTERED, Clustering, cluster_rejected, prepare_features
from openmer.discovery.naming import (
    RidgeAlignment,
    TextAlignment,
    cluster_queries,
    encode_sentences,
    name_clusters,
)
from openmer.discovery.words import Vocabulary, default_vocabulary
from openmer.errors import DataError, NotSupportedError, OpenmerError
from openmer.inference import LoadedRun
from openmer.methods.base import OpenSetScores
from openmer.methods.inputs import method_inputs

__all__ = ["Discovery", "cluster_names", "discover", "has_text_alignment", "method_alignment",
           "run_scores_and_features", "run_text_encoder", "training_alignment",
           "write_discovery"]

logger = logging.getLogger(__name__)

CLUSTERS_JSON, CLUSTERS_MD, ASSIGNMENTS_CSV, MAP_PNG = "clusters.json", "clusters.md", "assignments.csv", "map.png"


@dataclass
class Discovery:
    """What :func:`discover` found for N clips.

    Attributes:
        manifest: the N clips.
        scores: the run's scores of them.
        features: (N, E) the run's features of them.
        rejected: (N,) bool, confidence below the threshold.
        clustering: of the rejected clips (its labels index into the rejected clips).
        clusters: one dict per cluster (see :func:`write_discovery`'s ``clusters.json``).
        known_classes, threshold: the run's.
        naming: how the names were found (the alignment), or why there are none.
        settings: the options used.
    """

    manifest: Manifest
    scores: OpenSetScores
    features: np.ndarray
    rejected: np.ndarray
    clustering: Clustering
    clusters: list[dict[str, Any]]
    known_classes: list[str]
    threshold: float
    naming: str
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def cluster_of(self) -> np.ndarray:
        """(N,) cluster of every clip: -1 rejected but in no cluster, -2 accepted as a known class."""
        out = np.full(len(self.rejected), -2, dtype=np.int64)
        out[self.rejected] = self.clustering.labels
        return out


def run_text_encoder(run: LoadedRun) -> Any:
    """The text encoder of the run: its own (a method on clips holds it), else its profile's
    (:meth:`openmer.inference.LoadedRun.encoder`: the run's trusted profile, never a path the run
    folder names).

    Raises:
        NotSupportedError: the run's profile has no text encoder.
    """
    return run.encoder("text")


def run_scores_and_features(run: LoadedRun, manifest: Manifest, *, labels: np.ndarray | None = None,
                            cache_dir: Path | None = None) -> tuple[OpenSetScores, np.ndarray]:
    """The run's scores and (N, E) features of the clips of ``manifest`` (one pass).

    Raises:
        NotSupportedError: the method has no features (:meth:`OpenSetMethod.features`).
    """
    lab = np.full(len(manifest), -1, dtype=np.int64) if labels is None else labels
    clips = ClipDataset(manifest, lab, run.modalities, vision_preprocess=vision_preprocess(run.encoders))
    batches = method_inputs(run.method.consumes, clips, run.encoders, cache_dir=cache_dir).batches(run.method)
    scores, feats = run.method.score_all_with_features(batches)
    if feats is None:
        raise NotSupportedError(f"{run.info.method} has no features to cluster (OpenSetMethod.features)")
    return scores, feats.double().numpy()


def training_alignment(run: LoadedRun, text_encoder: Any, sentences: list[str], *, data: str | Path | None = None,
                       cache_dir: Path | None = None) -> RidgeAlignment:
    """A :class:`~openmer.discovery.naming.RidgeAlignment` fitted on the run's training clips
    (``run.json`` ``samples["train"]`` among the rows of ``data``, default the run's own data source).

    Args:
        sentences: the K known classes' sentences (the vocabulary's template with each class).

    Raises:
        DataError: the data cannot be read, or the run's training clips are not rows of it.
    """
    train, labels = training_manifest(run, data)
    _, feats = run_scores_and_features(run, train, labels=labels, cache_dir=cache_dir)
    return RidgeAlignment(feats, labels, encode_sentences(text_encoder, sentences))


def training_manifest(run: LoadedRun, data: str | Path | None = None) -> tuple[Manifest, np.ndarray]:
    """The run's training clips (``run.json`` ``samples["train"]``, known classes only) among the rows of
    ``data`` (default: the data the run records) and their class indices.

    Raises:
        DataError: the data cannot be read, or none of the run's training clips is a row of it.
    """
    from openmer.datasets import resolve_data

    manifest, _ = resolve_data(data if data is not None else run.info.data.source)
    rows = {s.id: i for i, s in enumerate(manifest)}
    ids = [i for i in run.info.samples.get("train", []) if i in rows]
    if not ids:
        raise DataError(manifest.source or data, "none of the run's training clips (run.json samples.train) is a "
                                                 "row of this data; give the data it was trained on")
    train = manifest.subset([rows[i] for i in ids])
    labels = label_indices(train.labels, run.known_classes)
    keep = [i for i, y in enumerate(labels) if y >= 0]
    return train.subset(keep), labels[keep]



def method_alignment(method: Any) -> TextAlignment:
    """The method's own text alignment (:meth:`OpenSetMethod.text_query`) as a
    :data:`~openmer.discovery.naming.TextAlignment`; calling it raises ``NotSupportedError`` for
    a method without one."""
    def align(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return method.text_query(torch.as_tensor(x, dtype=torch.float32)).double().cpu().numpy()

    return align


def has_text_alignment(method: Any, features: np.ndarray) -> bool:
    """Whether ``method`` brings ``features`` into text space itself (tried on one row)."""
    try:
        method_alignment(method)(features[:1])
    except NotSupportedError:
        return False
    return True


def _alignment(run: LoadedRun, features: np.ndarray, text_encoder: Any, vocab: Vocabulary,
               train_data: str | Path | None, cache_dir: Path | None) -> tuple[TextAlignment, str]:
    """The run's own text alignment, else a ridge map fitted on its training clips (and how it was found)."""
    if has_text_alignment(run.method, features):
        return method_alignment(run.method), f"{run.info.method}'s own text alignment (OpenSetMethod.text_query)"
    known_sentences = [vocab.template.format(c) for c in run.known_classes]
    align = training_alignment(run, text_encoder, known_sentences, data=train_data, cache_dir=cache_dir)
    return align, (f"ridge map from the run's features of its training clips to their class sentences "
                   f"({run.info.method} learned no text alignment)")


def cluster_names(features: np.ndarray, clustering: Clustering, align: TextAlignment, text_encoder: Any,
                  vocab: Vocabulary, top: int = 3) -> list[list[tuple[str, float]]]:
    """The ``top`` names of each cluster of ``clustering`` (over the rows of ``features``) from
    ``vocab``, through ``align`` and ``text_encoder`` (:mod:`openmer.discovery.naming`)."""
    queries = cluster_queries(align(features), clustering.labels, clustering.n_clusters)
    return name_clusters(queries, encode_sentences(text_encoder, vocab.sentences()), vocab, top)


def discover(run: LoadedRun, manifest: Manifest, *, vocabulary: Vocabulary | None = None, min_size: int = 3,
             k_max: int = 8, top: int = 3, seed: int = 0, exclude_known: bool = True,
             train_data: str | Path | None = None, cache_dir: Path | None = None) -> Discovery:
    """Score the clips of ``manifest``, cluster the rejected ones and name each cluster.

    Args:
        run: a loaded run folder.
        manifest: the clips (:func:`openmer.discovery.sources.clip_manifest`).
        vocabulary: words to name clusters with (default: :func:`default_vocabulary`).
        min_size, k_max, seed: the clustering rule (:func:`~openmer.discovery.cluster.cluster_rejected`).
        top: names per cluster.
        exclude_known: leave out the words whose shared name is a known class (the clips were
            rejected as those).
        train_data: where the run's training clips are, for a run without its own text alignment
            (default: the data the run records).

    Returns:
        The :class:`Discovery`; its ``naming`` says how names were found or why there are none.

    Raises:
        NotSupportedError: the run's method has no features.
        DataError: no clip to score.
    """
    if len(manifest) == 0:
        raise DataError(manifest.source, "no clip to score")
    vocab = vocabulary or default_vocabulary()
    if exclude_known:
        vocab = vocab.without(run.known_classes)
    scores, feats = run_scores_and_features(run, manifest, cache_dir=cache_dir)
    conf = scores.confidence.double().numpy()
    rejected = conf < run.threshold
    names: list[list[tuple[str, float]]] | None = None
    naming = ""
    clustering = cluster_rejected(feats[rejected], min_size=min_size, k_max=k_max, seed=seed)
    if clustering.n_clusters:
        try:
            text_encoder = run_text_encoder(run)
            align, naming = _alignment(run, feats, text_encoder, vocab, train_data, cache_dir)
            names = cluster_names(feats[rejected], clustering, align, text_encoder, vocab, top)
        except OpenmerError as exc:
            naming = f"no names: {exc}"
            logger.warning("clusters are not named: %s", exc)
    clusters = _describe_clusters(manifest, scores, feats, rejected, clustering, names, run.known_classes)
    settings = {"min_size": min_size, "k_max": k_max, "top": top, "seed": seed, "exclude_known": exclude_known,
                "template": vocab.template, "n_words": len(vocab.words)}
    return Discovery(manifest, scores, feats, rejected, clustering, clusters, list(run.known_classes),
                     run.threshold, naming, settings)


def _clip_record(manifest: Manifest, i: int, conf: np.ndarray, pred: np.ndarray, known: list[str]) -> dict[str, Any]:
    s = manifest[i]
    media = manifest.path(s, "video") or manifest.path(s, "audio")
    try:
        text = manifest.text_of(s)
    except DataError:
        text = None
    return {"id": s.id, "file": None if media is None else str(media), "start_s": s.start, "end_s": s.end,
            "text": text, "confidence": float(conf[i]), "nearest_known": known[int(pred[i])]}


def _describe_clusters(manifest: Manifest, scores: OpenSetScores, feats: np.ndarray, rejected: np.ndarray,
                       clustering: Clustering, names: list[list[tuple[str, float]]] | None,
                       known: list[str]) -> list[dict[str, Any]]:
    conf = scores.confidence.double().numpy()
    pred = scores.prediction.numpy()
    rows = np.flatnonzero(rejected)
    z = prepare_features(feats[rows]) if len(rows) else feats[rows]
    out = []
    for c in range(clustering.n_clusters):
        members = rows[clustering.labels == c]
        zc = z[clustering.labels == c]
        centre = zc.mean(axis=0)
        medoid = int(members[int(np.argmin(((zc - centre) ** 2).sum(axis=1)))])
        nearest = np.bincount(pred[members], minlength=len(known))
        out.append({
            "cluster": c, "size": int(len(members)),
            "names": [{"word": w, "score": round(s, 6)} for w, s in names[c]] if names else [],
            "mean_confidence": float(conf[members].mean()),
            "medoid": _clip_record(manifest, medoid, conf, pred, known),
            "nearest_known": {known[k]: int(n) for k, n in enumerate(nearest) if n},
            "members": [_clip_record(manifest, int(i), conf, pred, known) for i in members],
        })
    return out


# ----------------------------------------------------------------------------- writing
def write_discovery(result: Discovery, out: str | Path, *, title: str | None = None, skipped: list | None = None,
                    tsne: bool = True) -> list[Path]:
    """Write ``clusters.json``, ``clusters.md``, ``assignments.csv`` and (``tsne``) ``map.png`` into ``out``.

    ``clusters.json``: ``{"known_classes", "threshold", "n_clips", "n_rejected", "n_unclustered",
    "silhouette" (k -> mean silhouette), "k", "naming", "settings", "skipped", "clusters": [{"cluster",
    "size", "names": [{"word", "score"}], "mean_confidence", "medoid", "nearest_known", "members"}]}``.

    Raises:
        OutputError: ``out`` cannot be written.
    """
    from openmer.files import atomic_write_json, atomic_write_text, check_writable

    out = Path(out)
    check_writable(out)
    n_rej = int(result.rejected.sum())
    body = {"known_classes": result.known_classes, "threshold": result.threshold, "n_clips": len(result.manifest),
            "n_rejected": n_rej, "n_unclustered": int((result.clustering.labels == UNCLUSTERED).sum()),
            "k": result.clustering.k, "silhouette": {str(k): v for k, v in result.clustering.silhouette.items()},
            "naming": result.naming, "settings": result.settings, "skipped": skipped or [],
            "clusters": result.clusters}
    written = [atomic_write_json(out / CLUSTERS_JSON, body)]
    written.append(atomic_write_text(out / CLUSTERS_MD, _markdown(result, title)))
    conf = result.scores.confidence.double().numpy()
    pred = result.scores.prediction.numpy()
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "file", "start_s", "end_s", "confidence", "nearest_known", "status", "cluster"])
    for i, (s, c) in enumerate(zip(result.manifest, result.cluster_of, strict=True)):
        status = "known" if c == -2 else ("unknown" if c == UNCLUSTERED else "cluster")
        w.writerow([s.id, s.video or s.audio or "", "" if s.start is None else s.start,
                    "" if s.end is None else s.end, f"{conf[i]:.6g}", result.known_classes[int(pred[i])], status,
                    "" if c < 0 else int(c)])
    written.append(atomic_write_text(out / ASSIGNMENTS_CSV, buf.getvalue()))
    if tsne and len(result.manifest) >= 4:
        from openmer.discovery.plot import plot_cluster_map

        written.append(plot_cluster_map(result, out / MAP_PNG, title=title))
    return written


def _markdown(result: Discovery, title: str | None) -> str:
    n_rej = int(result.rejected.sum())
    summary = (f"{len(result.manifest)} clips, {n_rej} rejected at the run's threshold {result.threshold:.4g} "
               f"(known classes: {', '.join(result.known_classes)}); {result.clustering.n_clusters} cluster(s), "
               f"{int((result.clustering.labels == UNCLUSTERED).sum())} rejected clip(s) in none (`unknown`).")
    rule = (f"Clusters: k-means, k by silhouette over 2..{result.settings.get('k_max')} (chosen k = "
            f"{result.clustering.k}), clusters under {result.settings.get('min_size')} clips dissolved. "
            f"Names: {result.naming}.")
    lines = [f"# {title or 'Discovered groups of rejected clips'}", "", summary, "", rule, "",
             "| cluster | size | top names (cosine) | mean confidence | medoid | nearest known class |",
             "|---|---|---|---|---|---|"]
    for c in result.clusters:
        names = ", ".join(f"{n['word']} ({n['score']:.3f})" for n in c["names"]) or "-"
        near = ", ".join(f"{k} {v}" for k, v in sorted(c["nearest_known"].items(), key=lambda kv: -kv[1]))
        lines.append(f"| {c['cluster']} | {c['size']} | {names} | {c['mean_confidence']:.4g} | "
                     f"`{Path(str(c['medoid']['file'] or c['medoid']['id'])).name}` | {near} |")
    return "\n".join(lines) + "\n"
