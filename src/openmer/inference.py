"""``openmer evaluate`` and ``openmer predict``: use a finished run folder (:func:`openmer.runs.load_run`).

Prediction (HCEP Algorithm 1 and Sec. 4.4.6): ``confidence = max p``; the label is the argmax
known class when ``confidence >= threshold`` (the run's deployable threshold, chosen from
known-class training or validation data only, :mod:`openmer.methods.threshold`), else ``"unknown"``.

``predict`` never lets one file cost the others: a file that cannot be used gets a record
``{"file": ..., "error": ...}`` and the next file is scored. Clips longer than
:data:`WINDOW_SECONDS` are scored in overlapping windows (``docs/training.md``, "Long clips").
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from openmer.data.clips import ClipDataset, vision_preprocess
from openmer.data.manifest import Manifest, Sample, label_indices, near_known_labels
from openmer.datasets import resolve_data
from openmer.errors import ConfigError, DataError, MediaError, OpenmerError, OpenmerWarning
from openmer.media.audio import AUDIO_SUFFIXES, VIDEO_SUFFIXES
from openmer.methods.base import OpenSetScores
from openmer.methods.inputs import method_inputs
from openmer.methods.threshold import UNKNOWN_LABEL, decide
from openmer.paths import default_cache_dir
from openmer.runs import LoadedRun, ThresholdInfo, load_run, read_run_info

#: ``progress(done, total, what)``: windows scored so far of ``total``
Progress = Callable[[int, int, str], None]

logger = logging.getLogger(__name__)

#: the suffixes a folder given to ``predict`` is searched for: the media loaders' own lists (what a
#: file holds is then read from its streams, not its suffix)
AUDIO_EXT, VIDEO_EXT = AUDIO_SUFFIXES, VIDEO_SUFFIXES
#: below this duration (seconds) a prediction carries a warning: too little signal to judge
MIN_CLIP_SECONDS = 0.25
#: clips longer than this (seconds) are scored in windows of this length...
WINDOW_SECONDS = 10.0
#: ...starting every this many seconds (the last window ends at the end of the clip)
HOP_SECONDS = 5.0
#: the shortest hop accepted (seconds): below it the windows of a long recording outnumber any use
MIN_HOP_SECONDS = 0.1
#: windows decoded and scored together; memory holds one such group of windows, whatever the file's length
WINDOW_GROUP = 32

__all__ = ["AUDIO_EXT", "HOP_SECONDS", "MIN_CLIP_SECONDS", "UNKNOWN_LABEL", "VIDEO_EXT", "WINDOW_SECONDS",
           "LoadedRun", "check_windows", "evaluate", "load_run", "max_window_seconds", "method_batches", "posthoc_rescore", "predict", "predict_iter", "score_clips",
           "window_bounds"]


def score_clips(run: LoadedRun, clips: ClipDataset, *, batch_size: int | None = None,
                cache_dir: Path | None = None) -> OpenSetScores:
    """Scores of every clip: the method's own encoders for a method on clips, cached unprompted
    features for a method on features.

    A method on features, on a clip that lacks one of their modalities use the training mean for that block
    (a standardised zero, :func:`~openmer.data.feature_blocks.fill_absent_blocks`), with a warning;
    HCEP leaves the block out (``docs/interpretation.md``).
    """
    return run.method.score_all(method_batches(run, clips, batch_size=batch_size, cache_dir=cache_dir))


def method_batches(run: LoadedRun, clips: ClipDataset, *, batch_size: int | None = None,
                   cache_dir: Path | None = None) -> list[dict[str, Any]]:
    """The batches the run's method reads for ``clips`` (:func:`openmer.methods.inputs.method_inputs`
    for its ``consumes``): media batches for a method on clips, batches of cached unprompted
    features for a method on features (see :func:`score_clips`); ``batch_size`` ``None``: the
    pipeline's scoring batch size."""
    inputs = method_inputs(run.method.consumes, clips, run.encoders, cache_dir=cache_dir)
    return inputs.batches(run.method, batch_size)


def posthoc_rescore(run: LoadedRun, score: str, test: ClipDataset, train: ClipDataset, *,
                    cache_dir: Path | None = None) -> tuple[OpenSetScores, ThresholdInfo]:
    """The run's trained head scored with post-hoc score ``score`` instead of its own confidence,
    and the deployable threshold of that score: fitted and chosen on the run's training clips,
    at the run's acceptance, as ``openmer train`` chooses it (HCEP Sec. 4.4.6; never on test clips).

    Raises:
        ConfigError: an unknown score, or a method without a classifier head.
    """
    from openmer.methods.posthoc import fitted_score, head_outputs

    train_out = head_outputs(run.method, method_batches(run, train, cache_dir=cache_dir))
    fitted = fitted_score(run.method, score, train_out)
    test_out, _ = head_outputs(run.method, method_batches(run, test, cache_dir=cache_dir))
    conf = fitted(test_out).cpu()
    known = fitted(train_out[0]).cpu().numpy().astype(np.float64)
    threshold = ThresholdInfo.from_confidences(known, run.info.threshold.acceptance, "train")
    pred = test_out.logits.argmax(dim=1).cpu()
    return OpenSetScores(conf, pred, torch.softmax(test_out.logits.float(), dim=1).cpu()), threshold


def _operating_points(conf: np.ndarray, pred: np.ndarray, labels: np.ndarray, run: LoadedRun,
                      th: ThresholdInfo) -> dict[str, Any]:
    """Known acceptance, TPR, FPR and CCR on the test clips at threshold ``th`` and at each acceptance target."""
    from openmer.metrics import operating_point

    k = len(run.known_classes)

    def at(threshold: float) -> dict[str, float]:
        op = operating_point(conf, pred, labels, threshold, num_classes=k)
        return {"threshold": threshold, "known_acceptance": op["tpr"], **op}

    return {
        "threshold": th.value,
        "threshold_source": th.source,
        "threshold_acceptance": th.acceptance,
        "at_threshold": at(th.value),
        "at_acceptance": [{"acceptance": p.acceptance, **at(p.threshold)} for p in th.at_acceptance],
    }


def evaluate(run_dir: str | Path, data: str | Path, *, out: str | Path | None = None, test_only: bool = True,
             allow_outside_root: bool = False, score: str | None = None) -> dict[str, Any]:
    """Open-set metrics of a run on a dataset; known classes = the run's, every other label unknown.

    Which clips are scored: with ``test_only``, a built-in dataset's protocol test groups, or a
    manifest's ``test`` rows when it has a ``split`` column. Clips whose id the run was trained
    or selected on (``run.json`` ``samples``) are always left out, with a warning and the count
    in ``n_excluded_seen``.

    Writes ``evaluation.json`` and figures (ROC, OSCR, confidence histogram, confusion) to ``out``,
    whose writability is checked before any clip is scored.

    ``score``: a post-hoc score (:data:`~openmer.methods.posthoc.POSTHOC_SCORES`) on the run's
    trained classifier head instead of the confidence it was trained with; its statistics and its
    threshold (at the run's acceptance) come from the run's training clips (``run.json``
    ``samples["train"]``), which must be rows of ``data`` (:func:`posthoc_rescore`). ``None``:
    the run's own confidence and stored threshold.

    Returns:
        ``{"auroc", "oscr", "aupr_in", "aupr_out", "closed_acc", "macro_f1", "fpr95", "threshold", "threshold_source",
        "threshold_acceptance", "at_threshold": {...}, "at_acceptance": [...], "n_known",
        "n_unknown", "n_excluded_seen", "clips"}``; ``at_*`` hold ``known_acceptance`` (= TPR, the
        fraction of test knowns accepted), ``tpr``, ``fpr``, ``ccr`` and ``accepted_rate``.

    Raises:
        CheckpointError: the run folder cannot be read (naming the file).
        DataError: the data give no known or no unknown clip to score.
        OutputError: ``out`` cannot be written.
    """
    from openmer.files import atomic_write_json, check_writable
    from openmer.metrics import open_set_metrics
    from openmer.protocol import partition_indices
    from openmer.reporting.figures import plot_confidence_hist, plot_confusion, plot_oscr, plot_roc
    from openmer.reporting.scores import RunScores

    read_run_info(run_dir)  # a missing or damaged run folder fails before anything is created
    if out is not None:
        check_writable(out)
    run = load_run(run_dir)
    manifest, partition = resolve_data(data, allow_outside_root=allow_outside_root)
    train_clips = _training_clips(run, manifest, data) if score is not None else None
    clips_rule = "all rows"
    if test_only and partition is not None:
        manifest = manifest.subset(partition_indices([s.group or s.id for s in manifest], partition)["test"])
        clips_rule = "protocol test groups"
    elif test_only and manifest.has_splits:
        manifest = manifest.subset(manifest.split_indices()["test"])
        clips_rule = "manifest split column: test rows"
    manifest = manifest.subset([i for i, s in enumerate(manifest) if s.label])
    known = run.known_classes
    for label, match in near_known_labels(manifest.labels, known).items():
        warnings.warn(OpenmerWarning(f"{manifest.source or data}: label {label!r} differs from the known class "
                                     f"{match!r} only in case or spaces; it is scored as unknown"), stacklevel=2)
    seen = run.info.seen_ids
    keep = [i for i, s in enumerate(manifest) if s.id not in seen]
    n_seen = len(manifest) - len(keep)
    if n_seen:
        warnings.warn(OpenmerWarning(f"left out {n_seen} clip(s) of {data} that {Path(run_dir).name} was trained or "
                                     "selected on (same ids as in its run.json)"), stacklevel=2)
        manifest = manifest.subset(keep)
    elif not seen and partition is None and not manifest.has_splits:
        warnings.warn(OpenmerWarning(f"{Path(run_dir)} does not record its training clips (an older run folder); "
                                     "make sure none of them is in the evaluation data"), stacklevel=2)
    labels = label_indices(manifest.labels, known)
    if (labels >= 0).sum() == 0 or (labels < 0).sum() == 0:
        raise DataError(manifest.source or data, f"evaluation needs both known-class and unknown-class clips "
                                                 f"({clips_rule}, {n_seen} seen clip(s) left out); found "
                                                 f"{int((labels >= 0).sum())} known and {int((labels < 0).sum())} unknown")
    clips = ClipDataset(manifest, labels, run.modalities, vision_preprocess=vision_preprocess(run.encoders))
    if train_clips is None:
        s, threshold = score_clips(run, clips, cache_dir=default_cache_dir()), run.info.threshold
    else:
        s, threshold = posthoc_rescore(run, score, clips, train_clips, cache_dir=default_cache_dir())
    conf, pred = s.confidence.numpy(), s.prediction.numpy()
    metrics: dict[str, Any] = open_set_metrics(conf, pred, labels, num_classes=len(known))
    metrics["score"] = score or run.method.score_name
    metrics.update(_operating_points(conf, pred, labels, run, threshold))
    metrics.update(n_known=int((labels >= 0).sum()), n_unknown=int((labels < 0).sum()), n_excluded_seen=n_seen,
                   clips=clips_rule)
    if out is not None:
        out = Path(out)
        atomic_write_json(out / "evaluation.json", metrics)
        unknown_classes = sorted({lb for lb in manifest.labels if lb} - set(known))
        rs = RunScores(method=run.info.method, modalities=tuple(run.modalities),
                       level=f"O({len(known)}:{len(unknown_classes)})", openness=float("nan"), split=0,
                       known_classes=known, unknown_classes=unknown_classes, confidence=conf, prediction=pred,
                       labels=labels, class_names=list(manifest.labels), features=None, threshold=threshold.value)
        name = Path(run_dir).name
        plot_roc([rs], out / "roc.png", f"ROC: {name} on {data}")
        plot_oscr([rs], out / "oscr.png", f"OSCR: {name} on {data}")
        plot_confidence_hist(rs, out / "confidence_hist.png", f"Confidence: {name} on {data}")
        plot_confusion(rs, out / "confusion_open.png", f"Open-set confusion: {name}", open_set=True,
                       threshold=threshold.value)
    return metrics


def _training_clips(run: LoadedRun, manifest: Manifest, data: str | Path) -> ClipDataset:
    """The run's training clips (``run.json`` ``samples["train"]``) among the rows of ``manifest``.

    Raises:
        DataError: the run records no training clips, or some are not rows of ``data``.
    """
    ids = list(run.info.samples.get("train", []))
    rows = {s.id: i for i, s in enumerate(manifest)}
    missing = [i for i in ids if i not in rows]
    if not ids or missing:
        raise DataError(manifest.source or data, f"--score fits the score and its threshold on the run's training "
                                                 f"clips; {len(missing) if ids else 'no'} of them "
                                                 f"{'are not rows of this data' if ids else 'are recorded in run.json'}"
                                                 f"{f' (e.g. {missing[0]!r})' if missing else ''}")
    train = manifest.subset([rows[i] for i in ids])
    labels = label_indices(train.labels, run.known_classes)
    return ClipDataset(train, labels, run.modalities, vision_preprocess=vision_preprocess(run.encoders))


# ----------------------------------------------------------------------------- predict
def window_bounds(duration: float, window: float = WINDOW_SECONDS, hop: float = HOP_SECONDS) -> list[tuple[float, float]]:
    """``(start, end)`` seconds of the windows that cover a clip of ``duration`` seconds.

    Windows of ``window`` s start every ``hop`` s; the last one ends at the end of the clip. A
    clip no longer than ``window`` is one window.

    Example:
        >>> window_bounds(22.0, 10.0, 5.0)
        [(0.0, 10.0), (5.0, 15.0), (10.0, 20.0), (12.0, 22.0)]
    """
    if duration <= window:
        return [(0.0, float(duration))]
    starts = list(np.arange(0.0, duration - window, hop))
    if duration - window - starts[-1] > 1e-6:
        starts.append(duration - window)
    return [(round(float(s), 6), round(float(s) + window, 6)) for s in starts]


def max_window_seconds(run: LoadedRun) -> float:
    """The longest window (seconds) the run's encoders take: the least ``max_audio_seconds``
    declared by an encoder of the run (its own, or the method's for a method on clips); ``inf``
    when none declares one."""
    import torch.nn as nn

    found = [*run.encoders.values()]
    if isinstance(run.method, nn.Module):
        found += list(run.method.modules())
    limits = [float(e.max_audio_seconds) for e in found if hasattr(e, "max_audio_seconds")]
    return min(limits, default=math.inf)


def check_windows(window: float, hop: float, limit: float = math.inf) -> None:
    """Refuse window options that cannot work, before any file is read.

    Raises:
        ConfigError: ``window`` not finite or not in [:data:`MIN_CLIP_SECONDS`, ``limit``]; ``hop``
            not finite, below :data:`MIN_HOP_SECONDS` or above ``window``.
    """
    if not (math.isfinite(window) and math.isfinite(hop)):
        raise ConfigError(f"window and hop must be finite numbers of seconds, got window {window}, hop {hop}")
    if not MIN_CLIP_SECONDS <= window <= limit:
        raise ConfigError(f"window {window:g} s: must be between {MIN_CLIP_SECONDS} s and {limit:g} s "
                          "(the longest clip the run's audio encoder takes)")
    if not MIN_HOP_SECONDS <= hop <= window:
        raise ConfigError(f"hop {hop:g} s: must be between {MIN_HOP_SECONDS} s and the window ({window:g} s)")


def _media_files(paths: Iterable[str | Path]) -> Iterator[tuple[Path, str | None]]:
    """``(file, None)`` per media file (folders expanded), or ``(path, error)`` for a path that gives none."""
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in AUDIO_EXT | VIDEO_EXT)
            if not found:
                yield p, f"{p}: folder contains no media file ({', '.join(sorted(AUDIO_EXT | VIDEO_EXT))})"
            yield from ((f, None) for f in found)
        elif p.is_file():
            yield p, None
        else:
            yield p, f"{p}: no such file or folder"


def _transcript(file: Path, text: str | None) -> str | None:
    """``text``, else the sidecar ``<name>.txt`` read by :func:`openmer.media.load_text` (an empty one = none)."""
    from openmer.media import load_text

    if text is not None:
        return text.strip() or None
    sidecar = file.with_suffix(".txt")
    if not sidecar.is_file():
        return None
    try:
        return load_text(sidecar)
    except MediaError as exc:
        if exc.reason.startswith("empty"):
            return None
        raise


def _has_modalities(file: Path, transcript: str | None) -> tuple[dict[str, bool], float | None]:
    """Which modalities ``file`` (+ transcript) offers, and its duration in seconds, from the headers only:
    the streams decide, not the suffix (an audio-only ``.mp4`` is audio, a video named ``.m4a`` a video)."""
    from openmer.media import probe

    info = probe(file)  # MediaError naming the file when it is unreadable
    return {"video": info.has_video, "audio": info.has_audio, "text": bool(transcript)}, info.duration_s


def _describe(has: dict[str, bool], file: Path) -> str:
    parts = [m for m in ("video", "audio") if has[m]]
    media = " and ".join(parts) if parts else "no audio or video stream"
    return f"{media}, {'a transcript' if has['text'] else 'no transcript'}"


def _result(run: LoadedRun, confidence: float, prediction: int, probabilities: Sequence[float] | None) -> dict[str, Any]:
    known = run.known_classes
    return {"label": decide(confidence, prediction, run.threshold, known), "confidence": confidence,
            "threshold": run.threshold,
            "probabilities": None if probabilities is None else dict(zip(known, map(float, probabilities), strict=True))}


def predict_file(run: LoadedRun, file: str | Path, *, text: str | None = None, window: float = WINDOW_SECONDS,
                 hop: float = HOP_SECONDS, progress: Progress | None = None) -> dict[str, Any]:
    """Label one media file; clips longer than ``window`` seconds are scored in windows.

    Returns:
        ``{"file", "label", "confidence", "threshold", "probabilities", "modalities"}`` plus
        ``"warnings"`` (e.g. a clip shorter than :data:`MIN_CLIP_SECONDS`) when there are any, and
        for a windowed clip ``"window_s"``, ``"hop_s"`` and ``"windows"`` (one result per window with
        ``start_s``/``end_s``). The whole-clip result of a windowed clip averages the windows:
        confidence = mean window confidence, class = argmax of the mean probabilities (openmer's
        rule, not the paper's; the paper scores single utterances). Windows are decoded (seeking
        to each) and scored in groups of :data:`WINDOW_GROUP`, so memory does not grow with the
        file's length; ``progress(done, total, file name)`` is called after each group.

    Raises:
        MediaError: the file (or its sidecar transcript) cannot be read, or it offers none of the
            modalities the model uses (the message names the file and what the model needs).
    """
    file = Path(file).resolve()
    transcript = _transcript(file, text)
    has, duration = _has_modalities(file, transcript)
    used = [m for m in run.modalities if has[m]]
    if not used:
        raise MediaError(file, f"has none of the modalities the model uses ({', '.join(run.modalities)}): it has "
                               f"{_describe(has, file)}; nothing to predict from")
    notes = []
    timed = any(m in used for m in ("audio", "video"))
    if timed and duration is not None and duration < MIN_CLIP_SECONDS:
        notes.append(f"{duration:.3f} s is shorter than {MIN_CLIP_SECONDS} s: too short for a reliable prediction")
    lacking = [("transcript" if m == "text" else m) for m in run.modalities if not has[m]]
    if lacking:
        notes.append(f"no {', no '.join(lacking)}: predicted from {', '.join(used)}")
    windowed = timed and duration is not None and duration > window
    bounds = window_bounds(float(duration or 0.0), window, hop) if windowed else [(None, None)]
    is_video = has["video"]  # a file with a video stream is read as a video (its audio track too)
    conf_parts, pred_parts, prob_parts = [], [], []
    for g in range(0, len(bounds), WINDOW_GROUP):  # memory: one group of decoded windows at a time
        group = bounds[g: g + WINDOW_GROUP]
        samples = [Sample(id=f"{file}#{g + i}", video=str(file) if is_video else None,
                          audio=None if is_video else str(file), text=transcript, start=s, end=e)
                   for i, (s, e) in enumerate(group)]
        clips = ClipDataset(Manifest(samples, root=Path("/"), name="predict"), [-1] * len(samples), run.modalities,
                            vision_preprocess=vision_preprocess(run.encoders))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OpenmerWarning)  # the missing block is said in "warnings" above
            part = score_clips(run, clips, cache_dir=None)
        conf_parts.append(part.confidence.numpy().astype(float))
        pred_parts.append(part.prediction.numpy())
        if part.probabilities is not None:
            prob_parts.append(part.probabilities.numpy().astype(float))
        if progress is not None and len(bounds) > 1:
            progress(min(g + WINDOW_GROUP, len(bounds)), len(bounds), file.name)
    conf, prediction = np.concatenate(conf_parts), np.concatenate(pred_parts)
    probs = np.concatenate(prob_parts) if prob_parts else None
    record: dict[str, Any] = {"file": str(file)}
    if len(bounds) == 1:
        record.update(_result(run, float(conf[0]), int(prediction[0]), None if probs is None else probs[0]))
    else:
        mean_p = None if probs is None else probs.mean(axis=0)
        pred = int(np.argmax(mean_p)) if mean_p is not None else int(np.bincount(prediction).argmax())
        record.update(_result(run, float(conf.mean()), pred, mean_p))
    record["modalities"] = used
    if notes:
        record["warnings"] = notes
    if len(bounds) > 1:
        record.update(window_s=window, hop_s=hop, windows=[
            {"start_s": b[0], "end_s": b[1],
             **_result(run, float(conf[i]), int(prediction[i]), None if probs is None else probs[i])}
            for i, b in enumerate(bounds)])
    return record


def predict_iter(run_dir: str | Path | LoadedRun, files: Iterable[str | Path], *, text: str | None = None,
                 window: float = WINDOW_SECONDS, hop: float = HOP_SECONDS,
                 progress: Progress | None = None) -> Iterator[dict[str, Any]]:
    """:func:`predict`, one record at a time (as each file is scored).

    Raises:
        CheckpointError: the run folder cannot be loaded (before any file is read).
        ConfigError: ``window``/``hop`` refused by :func:`check_windows` (before any file is read;
            the window's upper limit is :func:`max_window_seconds`).
    """
    check_windows(window, hop)
    run = run_dir if isinstance(run_dir, LoadedRun) else load_run(run_dir)
    check_windows(window, hop, max_window_seconds(run))
    for file, error in _media_files(files):
        if error is not None:
            yield {"file": str(file), "error": error}
            continue
        try:
            yield predict_file(run, file, text=text, window=window, hop=hop, progress=progress)
        except OpenmerError as exc:
            yield {"file": str(file), "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - one file's failure must not cost the others
            logger.debug("predict failed on %s", file, exc_info=True)
            yield {"file": str(file), "error": f"{file}: {type(exc).__name__}: {exc}"}


def predict(run_dir: str | Path | LoadedRun, files: list[str | Path], *, text: str | None = None,
            window: float = WINDOW_SECONDS, hop: float = HOP_SECONDS) -> list[dict[str, Any]]:
    """Label each file with a known class or ``"unknown"``; a file that fails gets an error record.

    Args:
        run_dir: a run folder (or a :class:`LoadedRun`).
        files: video or audio files, or folders of them.
        text: transcript for every file (else a sidecar ``<name>.txt`` beside each file).
        window, hop: clips longer than ``window`` seconds are scored in windows starting every
            ``hop`` seconds (see :func:`predict_file`).

    Returns:
        One dict per file, in order: see :func:`predict_file`, or ``{"file", "error"}`` for a file
        that could not be used (missing, corrupt, no usable modality...).

    Raises:
        CheckpointError: the run folder cannot be loaded.
    """
    return list(predict_iter(run_dir, files, text=text, window=window, hop=hop))

