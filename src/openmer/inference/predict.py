"""``openmer predict``: label media files with a loaded run, known class or ``"unknown"``.

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
from typing import TYPE_CHECKING, Any

import numpy as np

from openmer.data.manifest import Manifest, Sample
from openmer.errors import ConfigError, MediaError, OpenmerError, OpenmerWarning, SilentAudioError
from openmer.inference.loaded import LoadedRun, load_run
from openmer.media.audio import AUDIO_SUFFIXES, VIDEO_SUFFIXES

if TYPE_CHECKING:
    from openmer.backbones.specs import ProfileConfig

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
#: the label of a window whose audio is digital silence (RMS below ``load_audio``'s ``min_rms``): not scored
SILENT_LABEL = "silent"

__all__ = ["AUDIO_EXT", "HOP_SECONDS", "MIN_CLIP_SECONDS", "MIN_HOP_SECONDS", "SILENT_LABEL", "VIDEO_EXT",
           "WINDOW_GROUP", "WINDOW_SECONDS", "check_windows", "max_window_seconds", "predict", "predict_file",
           "predict_iter", "window_bounds"]


def window_bounds(duration: float, window: float = WINDOW_SECONDS,
                  hop: float = HOP_SECONDS) -> list[tuple[float, float]]:
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


def _result(run: LoadedRun, confidence: float, prediction: int,
            probabilities: Sequence[float] | None) -> dict[str, Any]:
    known = run.known_classes
    probs = None if probabilities is None else dict(zip(known, map(float, probabilities), strict=True))
    return {"label": run.label(confidence, prediction), "confidence": confidence, "threshold": run.threshold,
            "probabilities": probs}


def _check_finite_scores(run: LoadedRun, file: Path, confidence: np.ndarray) -> None:
    """Refuse a non-finite confidence: it comes from the model, not the file (the weights were
    checked at load; a NaN here is an encoder or method failure on this input)."""
    if not np.isfinite(confidence).all():
        raise OpenmerError(f"{file}: the model gave a non-finite confidence ({run.info.method} on "
                           f"{', '.join(run.modalities)}); no label is given for it")


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
        file's length; ``progress(done, total, file name)`` is called after each group. A window
        whose audio is digital silence is not scored: its result is label :data:`SILENT_LABEL`
        with ``confidence`` and ``probabilities`` ``None``, the whole-clip result averages the
        other windows, and ``"warnings"`` says which stretches were silent.

    Raises:
        MediaError: the file (or its sidecar transcript) cannot be read, or it offers none of the
            modalities the model uses (the message names the file and what the model needs);
            :class:`~openmer.errors.SilentAudioError` when its audio (every window of it) is all silent.
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
    silent: list[int] = []  # windows of digital silence: reported, not scored
    for g in range(0, len(bounds), WINDOW_GROUP):  # memory: one group of decoded windows at a time
        group = bounds[g: g + WINDOW_GROUP]
        samples = [Sample(id=f"{file}#{g + i}", video=str(file) if is_video else None,
                          audio=None if is_video else str(file), text=transcript, start=s, end=e)
                   for i, (s, e) in enumerate(group)]
        clips = run.clips(Manifest(samples, root=Path("/"), name="predict"), [-1] * len(samples))
        keep = list(range(len(samples)))
        if len(bounds) > 1:
            keep = []
            for i in range(len(samples)):
                try:
                    clips[i]  # decoded once here, kept by the dataset for scoring
                except SilentAudioError:
                    silent.append(g + i)
                    continue
                keep.append(i)
            if not keep:
                continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OpenmerWarning)  # the missing block is said in "warnings" above
            part = run.score(clips if len(keep) == len(samples) else clips.subset(keep), cache_dir=None)
        run.release_caches()
        conf_parts.append(part.confidence.numpy().astype(float))
        pred_parts.append(part.prediction.numpy())
        if part.probabilities is not None:
            prob_parts.append(part.probabilities.numpy().astype(float))
        if progress is not None and len(bounds) > 1:
            progress(min(g + WINDOW_GROUP, len(bounds)), len(bounds), file.name)
    if len(silent) == len(bounds):
        raise SilentAudioError(file, f"all silent: each of its {len(bounds)} windows of {window:g} s is digital "
                                     f"silence")
    if silent:
        spans = _spans([bounds[i] for i in silent])
        shown = ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in spans[:5]) + (", ..." if len(spans) > 5 else "")
        notes.append(f"{len(silent)} of {len(bounds)} windows {'is' if len(silent) == 1 else 'are'} digital silence "
                     f"({shown}): not scored")
    conf, prediction = np.concatenate(conf_parts), np.concatenate(pred_parts)
    _check_finite_scores(run, file, conf)
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
        scored = sorted(set(range(len(bounds))) - set(silent))
        at = {i: j for j, i in enumerate(scored)}  # window -> row of the scores
        record.update(window_s=window, hop_s=hop, windows=[
            {"start_s": b[0], "end_s": b[1],
             **(_result(run, float(conf[at[i]]), int(prediction[at[i]]), None if probs is None else probs[at[i]])
                if i in at else {"label": SILENT_LABEL, "confidence": None, "threshold": run.threshold,
                                 "probabilities": None})}
            for i, b in enumerate(bounds)])
    return record


def _spans(bounds: Sequence[tuple[Any, Any]]) -> list[tuple[float, float]]:
    """Overlapping or touching ``(start, end)`` windows (in start order) merged into spans."""
    spans: list[tuple[float, float]] = []
    for a, b in bounds:
        if spans and a <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], b))
        else:
            spans.append((a, b))
    return spans


def predict_iter(run_dir: str | Path | LoadedRun, files: Iterable[str | Path], *, text: str | None = None,
                 window: float = WINDOW_SECONDS, hop: float = HOP_SECONDS, progress: Progress | None = None,
                 profile: ProfileConfig | None = None) -> Iterator[dict[str, Any]]:
    """:func:`predict`, one record at a time (as each file is scored); ``profile``: as
    :func:`~openmer.inference.loaded.load_run`.

    Raises:
        CheckpointError: the run folder cannot be loaded (before any file is read).
        ConfigError: ``window``/``hop`` refused by :func:`check_windows` (before any file is read;
            the window's upper limit is :func:`max_window_seconds`).
    """
    check_windows(window, hop)
    run = run_dir if isinstance(run_dir, LoadedRun) else load_run(run_dir, profile=profile)
    check_windows(window, hop, max_window_seconds(run))
    for file, error in _media_files(files):
        if error is not None:
            yield {"file": str(file), "error": error}
            continue
        try:
            yield predict_file(run, file, text=text, window=window, hop=hop, progress=progress)
        except OpenmerError as exc:
            yield {"file": str(file), "error": str(exc)}
        except Exception as exc:  # one file's failure must not cost the others
            logger.debug("predict failed on %s", file, exc_info=True)
            yield {"file": str(file), "error": f"{file}: {type(exc).__name__}: {exc}"}


def predict(run_dir: str | Path | LoadedRun, files: list[str | Path], *, text: str | None = None,
            window: float = WINDOW_SECONDS, hop: float = HOP_SECONDS,
            profile: ProfileConfig | None = None) -> list[dict[str, Any]]:
    """Label each file with a known class or ``"unknown"``; a file that fails gets an error record.

    Args:
        run_dir: a run folder (or a :class:`LoadedRun`).
        files: video or audio files, or folders of them.
        text: transcript for every file (else a sidecar ``<name>.txt`` beside each file).
        window, hop: clips longer than ``window`` seconds are scored in windows starting every
            ``hop`` seconds (see :func:`predict_file`).
        profile: the profile the run was trained with, when it is not a registered profile.

    Returns:
        One dict per file, in order: see :func:`predict_file`, or ``{"file", "error"}`` for a file
        that could not be used (missing, corrupt, no usable modality...).

    Raises:
        CheckpointError: the run folder cannot be loaded.
    """
    return list(predict_iter(run_dir, files, text=text, window=window, hop=hop, profile=profile))

