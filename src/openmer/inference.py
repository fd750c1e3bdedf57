"""``openmer evaluate`` and ``openmer predict``: use a finished run folder.

Prediction (HCEP Algorithm 1 and Sec. 4.4.6): ``confidence = max p``; the label is the argmax
known class when ``confidence >= threshold`` (the run's deployable threshold, chosen from
known-class data only), else ``"unknown"``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from openmer.backbones.factory import ProfileConfig, load_profile
from openmer.data.clips import ClipDataset
from openmer.data.feature_cache import encode_features
from openmer.data.manifest import Manifest, Sample
from openmer.data.tensors import FeatureDataset
from openmer.errors import CheckpointError, DataError
from openmer.methods.base import OpenSetMethod, OpenSetScores
from openmer.training.run import RUN_FILE, default_cache_dir, resolve_data, unknown_label_vector, vision_preprocess

UNKNOWN_LABEL = "unknown"
AUDIO_EXT = {".wav", ".flac", ".mp3", ".m4a", ".ogg", ".opus", ".aac"}
VIDEO_EXT = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v"}


@dataclass
class LoadedRun:
    """A run folder with its method and encoders loaded (CUEP features computed once here)."""

    run_dir: Path
    info: dict[str, Any]
    method: OpenSetMethod
    encoders: dict[str, Any]

    @property
    def modalities(self) -> list[str]:
        return list(self.info["modalities"])

    @property
    def threshold(self) -> float:
        return float(self.method.threshold if self.method.threshold is not None else self.info["threshold"])


def load_run(run_dir: str | Path) -> LoadedRun:
    """Load a run folder written by :func:`openmer.training.run.train`.

    Raises:
        CheckpointError: not a finished run folder.
    """
    run_dir = Path(run_dir)
    if not (run_dir / RUN_FILE).is_file():
        raise CheckpointError(f"{run_dir / RUN_FILE}: not found; is {run_dir} a finished `openmer train` run?")
    info = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
    profile = ProfileConfig.from_dict(info["profile"])
    needed = tuple(set(info["modalities"]) | ({"text"} if info["method"] == "hcep" else set()))
    encoders = load_profile(profile, modalities=needed)
    method = OpenSetMethod.load(run_dir, encoders=encoders)
    return LoadedRun(run_dir, info, method, encoders)


def score_clips(run: LoadedRun, clips: ClipDataset, *, batch_size: int = 16, cache_dir: Path | None = None) -> OpenSetScores:
    """Scores of every clip: prompted encoders for HCEP, cached unprompted features for baselines.

    Baselines on a clip that lacks one of their modalities use the training mean for that block
    (a standardised zero), with a warning; HCEP leaves the block out (``docs/interpretation.md``).
    """
    if run.info["method"] == "hcep":
        return run.method.score_all(clips.batches(batch_size))
    feats, present = encode_features(clips, run.encoders, cache_dir=cache_dir)
    blocks = []
    offset = 0
    mean = run.method.embedding.mean.cpu().numpy()
    for m in run.modalities:
        f = feats[m].copy()
        d = f.shape[1]
        if not present[m].all():
            warnings.warn(f"{(~present[m]).sum()} clip(s) lack {m}; {run.info['method']} uses the training mean for it",
                          stacklevel=2)
            f[~present[m]] = mean[offset: offset + d]
        blocks.append(f)
        offset += d
    x = np.concatenate(blocks, axis=1)
    return run.method.score_all(FeatureDataset(x, clips.labels).batches())


def evaluate(run_dir: str | Path, data: str | Path, *, out: str | Path | None = None, test_only: bool = True) -> dict[str, Any]:
    """Open-set metrics of a run on a dataset; known classes = the run's, every other label unknown.

    With a built-in dataset and ``test_only``, only the protocol's test groups are used.
    Writes ``evaluation.json`` and figures (ROC, OSCR, confidence histogram, confusion) to ``out``.

    Returns:
        ``{"auroc", "oscr", "aupr_in", "aupr_out", "closed_acc", "macro_f1", "fpr95", "threshold", "at_threshold": {...}, "n_known", "n_unknown"}``.
    """
    from openmer.metrics import open_set_metrics, operating_point
    from openmer.reporting.figures import plot_confidence_hist, plot_confusion, plot_oscr, plot_roc
    from openmer.reporting.scores import RunScores
    from openmer.protocol import partition_indices

    run = load_run(run_dir)
    manifest, partition = resolve_data(data)
    if partition is not None and test_only:
        idx = partition_indices([s.group or s.id for s in manifest], partition)["test"]
        manifest = manifest.subset(idx)
    manifest = manifest.subset([i for i, s in enumerate(manifest) if s.label])
    known = run.method.known_classes
    labels = unknown_label_vector(manifest.labels, known)
    if (labels >= 0).sum() == 0 or (labels < 0).sum() == 0:
        raise DataError(manifest.source or data, "evaluation needs both known-class and unknown-class samples")
    clips = ClipDataset(manifest, labels, run.modalities, vision_preprocess=vision_preprocess(run.encoders))
    s = score_clips(run, clips, cache_dir=default_cache_dir())
    conf, pred = s.confidence.numpy(), s.prediction.numpy()
    metrics = open_set_metrics(conf, pred, labels, num_classes=len(known))
    metrics["threshold"] = run.threshold
    metrics["at_threshold"] = operating_point(conf, pred, labels, run.threshold, num_classes=len(known))
    metrics["n_known"], metrics["n_unknown"] = int((labels >= 0).sum()), int((labels < 0).sum())
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "evaluation.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        rs = RunScores(method=run.info["method"], modalities=tuple(run.modalities), level=f"O({len(known)}:{len(set(manifest.labels) - set(known))})",
                       openness=float("nan"), split=0, known_classes=known,
                       unknown_classes=sorted(set(manifest.labels) - set(known)), confidence=conf, prediction=pred,
                       labels=labels, class_names=list(manifest.labels), features=None, threshold=run.threshold)
        name = Path(run_dir).name
        plot_roc([rs], out / "roc.png", f"ROC: {name} on {data}")
        plot_oscr([rs], out / "oscr.png", f"OSCR: {name} on {data}")
        plot_confidence_hist(rs, out / "confidence_hist.png", f"Confidence: {name} on {data}")
        plot_confusion(rs, out / "confusion_open.png", f"Open-set confusion: {name}", open_set=True, threshold=run.threshold)
    return metrics


def files_to_manifest(paths: list[str | Path], text: str | None = None) -> Manifest:
    """A manifest for loose media files (a folder expands to the media files inside it).

    Video files give video + their audio track; audio files give audio; the transcript is
    ``text`` or a sidecar ``<name>.txt`` beside the file.

    Raises:
        DataError: a path that does not exist, or a folder without media files.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in AUDIO_EXT | VIDEO_EXT)
            if not found:
                raise DataError(p, f"folder contains no media file ({', '.join(sorted(AUDIO_EXT | VIDEO_EXT))})")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise DataError(p, "no such file or folder")
    samples = []
    for f in files:
        f = f.resolve()
        sidecar = f.with_suffix(".txt")
        transcript = text if text is not None else (sidecar.read_text(encoding="utf-8").strip() if sidecar.is_file() else None)
        is_video = f.suffix.lower() in VIDEO_EXT
        samples.append(Sample(id=str(f), video=str(f) if is_video else None, audio=None if is_video else str(f),
                              text=transcript or None))
    return Manifest(samples, root=Path("/"), name="predict")


def predict(run_dir: str | Path | LoadedRun, files: list[str | Path], *, text: str | None = None) -> list[dict[str, Any]]:
    """Label each file with a known class or ``"unknown"``.

    Returns:
        One dict per file: ``file``, ``label``, ``confidence``, ``threshold``, ``probabilities``
        (known class -> p), ``modalities`` (those used for this file).

    Raises:
        MediaError: a file that cannot be decoded (the message names it).
        DataError: a missing file or folder.
    """
    run = run_dir if isinstance(run_dir, LoadedRun) else load_run(run_dir)
    manifest = files_to_manifest(list(files), text)
    clips = ClipDataset(manifest, [-1] * len(manifest), run.modalities, vision_preprocess=vision_preprocess(run.encoders))
    s = score_clips(run, clips, cache_dir=None)
    known = run.method.known_classes
    out = []
    for i, sample in enumerate(manifest):
        item = clips[i]
        used = [m for m in run.modalities if item.get(m) is not None]
        conf = float(s.confidence[i])
        probs = s.probabilities[i].tolist() if s.probabilities is not None else None
        out.append({
            "file": sample.id,
            "label": known[int(s.prediction[i])] if conf >= run.threshold else UNKNOWN_LABEL,
            "confidence": conf,
            "threshold": run.threshold,
            "probabilities": None if probs is None else dict(zip(known, probs, strict=True)),
            "modalities": used,
        })
    return out
