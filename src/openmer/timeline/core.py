"""``openmer timeline``: an emotion timeline of a long recording, streamed in bounded memory.

Steps (``docs/timeline.md``): the audio is decoded in blocks (:func:`openmer.media.audio.stream_audio`);
Silero VAD gives each 32 ms frame a speech probability (:mod:`openmer.timeline.vad`); windows of
``window`` s every ``hop`` s (:mod:`openmer.timeline.windows`) with speech are scored by the run in
groups of ``group`` windows, with the transcript cues that overlap them (:mod:`~openmer.timeline.subtitles`)
and, for a video, frames sampled from one streaming decode (:mod:`~openmer.timeline.frames`) through
the run's vision preprocessing (face crops for the FER encoder: the largest face of each frame; a
frame without one uses the nearest frame's box; a window without any face is centre-cropped and
noted). Each group's rows are appended to ``timeline.csv`` as it is scored; at the end the
decisions are smoothed, merged into segments and summarised (:mod:`~openmer.timeline.segments`),
and drawn (:mod:`~openmer.timeline.plot`). ``resume=True`` keeps the whole groups already written
and scores the rest: the result equals an uninterrupted run (groups are fixed by window index and
the VAD does not depend on where decoding resumed).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from openmer.errors import ConfigError, DataError, MediaError, OpenmerWarning, OutputError
from openmer.methods.threshold import UNKNOWN_LABEL
from openmer.timeline.segments import (
    ERROR,
    NO_SPEECH,
    Segment,
    cut_to_speech,
    decisions,
    segments,
    smooth,
    unknown_stretches,
)
from openmer.timeline.vad import speech_intervals
from openmer.timeline.windows import Window, tiles

#: ``progress(seconds done, seconds total, message)``
Progress = Callable[[float, float, str], None]

TIMELINE_CSV, SEGMENTS_CSV, SEGMENTS_JSON = "timeline.csv", "segments.csv", "segments.json"
SUMMARY_JSON, STATE_JSON, PICTURE = "summary.json", "timeline.json", "timeline.png"


@dataclass(frozen=True)
class TimelineConfig:
    """Settings of a timeline (all times in seconds).

    Attributes:
        window, hop: window length and the time between window starts.
        smooth: k, windows averaged by the smoothing (odd; 1 = none); see :mod:`openmer.timeline.segments`.
        min_segment: segments shorter than this give their time to a neighbour (0 = keep all).
        min_pause: segments are cut to the VAD's speech; pauses shorter than this are bridged.
        vad_threshold: Silero speech probability of a speech frame.
        min_speech: fraction of a window's frames that must be speech for it to be scored.
        group: windows decoded and scored together (also the unit of ``resume``).
        num_frames: frames per window for a video modality.
    """

    window: float = 4.0
    hop: float = 2.0
    smooth: int = 1
    min_segment: float = 0.0
    min_pause: float = 0.3
    vad_threshold: float = 0.5
    min_speech: float = 0.25
    group: int = 16
    num_frames: int = 8

    def check(self, limit: float = math.inf) -> None:
        """Raises ConfigError for settings that cannot work (before any work)."""
        from openmer.inference import check_windows

        check_windows(self.window, self.hop, limit)
        if self.smooth < 1 or self.smooth % 2 == 0:
            raise ConfigError(f"smooth must be an odd number of windows >= 1, got {self.smooth}")
        for name in ("min_segment", "min_pause"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ConfigError(f"{name} must be a finite number of seconds >= 0, got {v}")
        if not 0 < self.vad_threshold < 1:
            raise ConfigError(f"vad_threshold must be in (0, 1), got {self.vad_threshold}")
        if not 0 < self.min_speech <= 1:
            raise ConfigError(f"min_speech must be in (0, 1], got {self.min_speech}")
        if self.group < 1 or self.num_frames < 1:
            raise ConfigError(f"group and num_frames must be >= 1, got {self.group} and {self.num_frames}")


@dataclass
class Timeline:
    """What :func:`timeline` returns: the window table, the segments and the summary.

    Attributes:
        columns: names of the columns of ``rows`` (as in ``timeline.csv``).
        rows: one dict per window: ``start_s``, ``end_s``, ``speech`` (fraction of speech frames),
            ``label`` (a known class, ``unknown``, ``no_speech`` or ``error``), ``confidence``,
            ``p_<class>`` per known class (empty for unscored windows), ``text``, ``note``.
        segments: smoothed, merged decisions.
        summary: seconds per label, unknown segments, decode gaps, settings, speed.
        out: the folder written (``None`` when nothing was written).
        messages: what the summary's ``messages`` say (e.g. no speech found).
        tiles: (K, 2) seconds each window owns (:func:`openmer.timeline.windows.tiles`).
        labels: (K,) smoothed decisions; confidence (K,) and probabilities (K, C): smoothed
            (zeros for unscored windows).
        speech_frames: (F,) bool, Silero's speech decision per 32 ms frame.
    """

    columns: list[str]
    rows: list[dict[str, Any]]
    segments: list[Segment]
    summary: dict[str, Any]
    out: Path | None = None
    messages: list[str] = field(default_factory=list)
    tiles: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    labels: list[str] = field(default_factory=list)
    confidence: np.ndarray = field(default_factory=lambda: np.zeros(0))
    probabilities: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    speech_frames: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))


def _fmt(x: float | None, digits: int = 6) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _identity(recording: Path, run_dir: Path, config: TimelineConfig, transcript: Path | None) -> dict[str, Any]:
    st = recording.stat()
    return {"recording": str(recording), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "run": str(run_dir),
            "transcript": None if transcript is None else str(transcript), "config": asdict(config)}


def _prepare_out(out: Path, identity: dict[str, Any], columns: list[str], *, resume: bool,
                 overwrite: bool) -> int:
    """Check ``out`` and return the number of windows already written there (``resume``), else 0.

    Raises:
        OutputError: ``out`` holds a timeline and neither ``resume`` nor ``overwrite`` is given.
        ConfigError: ``resume`` with other settings, recording or run than the stored ones.
    """
    from openmer.files import atomic_write_json, atomic_write_text, check_writable

    check_writable(out)
    csv_path, state_path = out / TIMELINE_CSV, out / STATE_JSON
    if csv_path.exists() and not (resume or overwrite):
        raise OutputError(out, f"already holds {TIMELINE_CSV}; give --resume to continue it or --overwrite")
    done = 0
    if resume and csv_path.exists():
        try:
            stored = json.loads(state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{state_path}: cannot resume without a readable {STATE_JSON} ({exc})") from exc
        diff = sorted(k for k in identity if stored.get(k) != identity[k])
        if diff:
            raise ConfigError(f"{state_path}: --resume with another {', '.join(diff)} than the interrupted "
                              f"timeline; use --overwrite to start again")
        text = csv_path.read_text(encoding="utf-8")
        lines = text.splitlines(keepends=True)
        if not lines or lines[0].rstrip("\r\n").split(",") != columns:
            raise ConfigError(f"{csv_path}: header differs from this run's columns; use --overwrite")
        body = [ln for ln in lines[1:] if ln.endswith("\n")]  # a line cut by the interruption is dropped
        done = len(body) // identity["config"]["group"] * identity["config"]["group"]
        atomic_write_text(csv_path, lines[0] + "".join(body[:done]))
    else:
        atomic_write_text(csv_path, ",".join(columns) + "\n")
        atomic_write_json(state_path, identity)
    return done


def timeline(run: Any, recording: str | Path, out: str | Path | None = None, *,
             config: TimelineConfig | None = None, transcript: str | Path | None = None, resume: bool = False,
             overwrite: bool = False, progress: Progress | None = None, picture: bool = True,
             feature_cache: str | Path | None = None, keep_encoder_states: bool = False,
             bounded_heap: bool = True) -> Timeline:
    """The emotion timeline of one recording (see the module doc); files go to ``out`` as they come.

    Args:
        run: a run folder or a loaded run (:func:`openmer.inference.load_run`).
        recording: an audio file, or a video (with or without an audio track).
        out: folder for ``timeline.csv``, ``segments.csv``/``.json``, ``summary.json``,
            ``timeline.png`` and ``timeline.json`` (the settings, for ``resume``); ``None``: a
            temporary folder, removed after (the result is returned only).
        config: :class:`TimelineConfig` (defaults when ``None``).
        transcript: an SRT/WebVTT/JSON transcript; ``None``: ``<recording stem>.srt|.vtt|.json``
            beside the recording when there is one.
        resume: continue an interrupted timeline in ``out``.
        overwrite: replace a timeline in ``out``.
        progress: ``progress(seconds done, seconds total, message)`` after each group.
        picture: draw ``timeline.png``.
        feature_cache: a folder for the windows' unprompted encoder features
            (:mod:`openmer.data.feature_cache`, keyed by the recording's content and the window's
            bounds), for scoring the same recording with several runs on the same encoders (the
            timeline benchmark); ``None``: none (a window is encoded once per timeline anyway).
        keep_encoder_states: keep the encoders' per-input states (late prompt entry's
            ``prefix_cache``) after each group instead of releasing them, so another run with the
            same encoder objects reuses them; memory then grows with the recording (about 0.4 MB
            per 4 s window of Whisper-base): for benchmarks on short sessions only.
        bounded_heap: fix glibc's mmap threshold at 1 MiB for this process
            (:func:`openmer.timeline.memory.bound_heap`; it stays so after the call), which keeps the
            peak resident memory of a 2-hour recording within 1 % of a 10-minute one's, for 19-33 %
            more time (measured, docs/timeline.md); ``False`` leaves the process's allocator as it is.

    Returns:
        :class:`Timeline`; ``summary["message"]`` says when no window had speech (nothing scored).

    Raises:
        ConfigError: settings that cannot work (before anything is read), or ``resume`` with
            settings that differ from the interrupted run's.
        MediaError: the recording cannot be opened, or offers none of the run's modalities.
        DataError: the transcript cannot be read.
        OutputError: ``out`` cannot be written, or holds a timeline (without ``resume``/``overwrite``).
    """
    import tempfile

    from openmer.inference import LoadedRun, load_run, max_window_seconds
    from openmer.media import probe
    from openmer.timeline.subtitles import CueIndex, find_sidecar, read_cues

    config = config or TimelineConfig()
    config.check()
    if bounded_heap:
        from openmer.timeline.memory import bound_heap

        bound_heap()
    run_dir = Path(run.run_dir if isinstance(run, LoadedRun) else run)
    recording = Path(recording).resolve()
    info = probe(recording)  # MediaError naming the file
    transcript = Path(transcript).resolve() if transcript is not None else find_sidecar(recording)
    if transcript is not None and not transcript.is_file():
        raise DataError(transcript, "transcript file not found")
    cues = read_cues(transcript) if transcript is not None else []
    loaded = run if isinstance(run, LoadedRun) else load_run(run)
    config.check(max_window_seconds(loaded))
    mods = loaded.modalities
    has = {"audio": info.has_audio, "video": info.has_video and "video" in mods, "text": bool(cues)}
    used = [m for m in mods if has[m]]
    if not used:
        raise MediaError(recording, f"offers none of the modalities the run uses ({', '.join(mods)}): "
                                    f"{'an audio track' if info.has_audio else 'no audio track'}, "
                                    f"{'a video track' if info.has_video else 'no video'}, "
                                    f"{'a transcript' if cues else 'no transcript'}")
    if not info.has_audio:
        raise MediaError(recording, "has no audio track: the timeline needs one to find speech")
    classes = loaded.known_classes
    columns = ["start_s", "end_s", "speech", "label", "confidence", *[f"p_{c}" for c in classes], "text", "note"]
    tmp = None
    if out is None:
        tmp = tempfile.TemporaryDirectory(prefix="openmer-timeline-")
        out = tmp.name
    out = Path(out)
    try:
        done = _prepare_out(out, _identity(recording, run_dir, config, transcript), columns, resume=resume,
                            overwrite=overwrite)
        t0 = time.perf_counter()
        stream_info = _stream(loaded, recording, out / TIMELINE_CSV, config, used, CueIndex(cues), columns, done,
                              info.duration_s, progress, feature_cache=feature_cache,
                              release=not keep_encoder_states)
        elapsed = time.perf_counter() - t0
        return _finish(loaded, out, config, columns, stream_info, elapsed, picture=picture, keep=tmp is None)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _stream(run: Any, recording: Path, csv_path: Path, config: TimelineConfig, used: list[str], cues: Any,
            columns: list[str], done: int, duration: float | None, progress: Progress | None, *,
            feature_cache: str | Path | None = None, release: bool = True) -> dict[str, Any]:
    """Decode, detect speech, score and append rows; returns the decode gaps and counts."""
    from openmer.media.audio import DecodeGap, stream_audio
    from openmer.timeline.frames import FrameGrid
    from openmer.timeline.memory import trim_heap
    from openmer.timeline.vad import BLOCK_SECONDS, SileroVAD
    from openmer.timeline.windows import cut_windows

    vad = SileroVAD(config.vad_threshold)
    gaps: list[DecodeGap] = []
    probs: list[np.ndarray] = []
    n_samples = [0]

    def blocks() -> Iterator[np.ndarray]:
        for block in stream_audio(recording, block_seconds=BLOCK_SECONDS, gaps=gaps):
            probs.append(vad.frame_probs(block))
            n_samples[0] += len(block)
            yield block
            del block  # freed before the next block is decoded

    grid = FrameGrid(recording, step=min(0.25, config.window / config.num_frames)) if "video" in used else None
    pending: list[tuple[Window, dict[str, Any]]] = []
    n_windows = 0
    cache_log = logging.getLogger("openmer.data.feature_cache")
    old_level = cache_log.level
    cache_log.setLevel(logging.WARNING)  # one "encoding N clips" note per group would bury the progress
    try:
        with csv_path.open("a", encoding="utf-8", newline="") as fh:
            for w in cut_windows(blocks(), config.window, config.hop):
                n_windows += 1
                if w.index < done:
                    continue
                frame_probs = np.concatenate(probs) if len(probs) > 1 else probs[0]
                if len(probs) > 1:
                    probs[:] = [frame_probs]
                row = _describe(w, vad, frame_probs, gaps, cues, config)
                pending.append((w, row))
                if len(pending) == config.group:
                    _score_group(run, recording, pending, used, grid, config, columns, fh, feature_cache, release)
                    pending = []
                    trim_heap()  # resident memory follows what is live (openmer.timeline.memory)
                    if progress is not None:
                        progress(w.end_s, duration or w.end_s, "")
            if pending:
                _score_group(run, recording, pending, used, grid, config, columns, fh, feature_cache, release)
    finally:
        cache_log.setLevel(old_level)
        if grid is not None:
            grid.close()
    if progress is not None:
        total = n_samples[0] / 16000
        progress(total, total, "done")
    frame_probs = np.concatenate(probs) if probs else np.zeros(0, np.float32)
    return {"gaps": gaps, "n_windows": n_windows, "duration_s": n_samples[0] / 16000,
            "speech_s": float((frame_probs >= vad.threshold).sum() * vad.frame_seconds), "resumed_from": done,
            "speech_frames": frame_probs >= vad.threshold}


def _describe(w: Window, vad: Any, frame_probs: np.ndarray, gaps: list, cues: Any,
              config: TimelineConfig) -> dict[str, Any]:
    """The unscored part of a window's row: times, speech, text, and whether it can be scored."""
    speech = vad.speech_fraction(frame_probs, w.start, w.end)
    row: dict[str, Any] = {"start_s": w.start_s, "end_s": w.end_s, "speech": speech,
                           "text": cues.text(w.start_s, w.end_s), "note": ""}
    bad = [g for g in gaps if g.start_s < w.end_s and g.end_s > w.start_s]
    if bad:
        g = bad[0]
        end = "end of file" if math.isinf(g.end_s) else f"{g.end_s:.2f} s"
        row.update(label=ERROR, note=f"could not decode {g.start_s:.2f} s - {end}: {g.reason}")
    elif speech < config.min_speech:
        row["label"] = NO_SPEECH
    return row


def _score_group(run: Any, recording: Path, pending: list[tuple[Window, dict[str, Any]]], used: list[str],
                 grid: Any, config: TimelineConfig, columns: list[str], fh: io.TextIOBase,
                 feature_cache: str | Path | None = None, release: bool = True) -> None:
    """Score the speech windows of a group and append the group's rows to ``fh`` (flushed)."""
    import torch

    from openmer.data.clips import vision_preprocess
    from openmer.data.manifest import Manifest, Sample
    from openmer.media.faces import NoFaceWarning

    todo = [(w, row) for w, row in pending if "label" not in row]
    if todo:
        samples, items = [], []
        prep = vision_preprocess(run.encoders) if "video" in used else None
        for w, row in todo:
            sample = Sample(id=f"{recording}#{w.index}", audio=str(recording), text=row["text"],
                            start=round(w.start_s, 6), end=round(w.end_s, 6))
            item: dict[str, Any] = {"id": sample.id, "label": -1}
            if "audio" in run.modalities:
                item["audio"] = torch.from_numpy(w.wave) if "audio" in used else None
            if "text" in run.modalities:
                item["text"] = row["text"]
            if "video" in run.modalities:
                frames = grid.frames(w.start_s, w.end_s, config.num_frames) if grid is not None else None
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", NoFaceWarning)
                    item["video"] = prep(frames, recording) if frames is not None and prep is not None else None
                if any(issubclass(c.category, NoFaceWarning) for c in caught):
                    row["note"] = "no face found: centre crops"
            samples.append(sample)
            items.append(item)
        clips = run.clips(Manifest(samples, root=Path("/"), name="timeline"), [-1] * len(samples))
        assert clips._cache is not None
        clips._cache.update(enumerate(items))  # decoded here, from the stream
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OpenmerWarning)
            s = run.score(clips, cache_dir=feature_cache)
        if release:
            run.release_caches()  # each window is seen once: cached encoder states would only grow
        conf = s.confidence.numpy().astype(float)
        probs = None if s.probabilities is None else s.probabilities.numpy().astype(float)
        for j, (_, row) in enumerate(todo):
            p = probs[j] if probs is not None else np.eye(len(run.known_classes))[int(s.prediction[j])]
            row["confidence"] = float(conf[j])
            row["probs"] = p
            row["label"] = run.known_classes[int(np.argmax(p))] if conf[j] >= run.threshold else UNKNOWN_LABEL
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for _, row in pending:
        p = row.get("probs")
        writer.writerow([_fmt(row["start_s"], 3), _fmt(row["end_s"], 3), _fmt(row["speech"], 3), row["label"],
                         _fmt(row.get("confidence")), *([_fmt(float(x)) for x in p] if p is not None
                                                        else [""] * (len(columns) - 7)),
                         row["text"] or "", row["note"]])
    fh.write(out.getvalue())
    fh.flush()
    os.fsync(fh.fileno())


def read_timeline(path: str | Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The columns and rows of a ``timeline.csv`` (numbers as floats, empty cells as ``None``)."""
    with Path(path).open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        columns = list(reader.fieldnames or [])
        rows = []
        for r in reader:
            row: dict[str, Any] = {}
            for k, v in r.items():
                if k in ("label", "text", "note"):
                    row[k] = v
                else:
                    row[k] = float(v) if v not in ("", None) else None
            rows.append(row)
    return columns, rows


def _finish(run: Any, out: Path, config: TimelineConfig, columns: list[str], info: dict[str, Any], elapsed: float,
            *, picture: bool, keep: bool) -> Timeline:
    """Segments, summary and picture from the finished ``timeline.csv``."""
    from openmer.files import atomic_write_json, atomic_write_text

    _, rows = read_timeline(out / TIMELINE_CSV)
    classes = run.known_classes
    k = len(rows)
    start = np.array([r["start_s"] for r in rows], float)
    end = np.array([r["end_s"] for r in rows], float)
    scored = np.array([r["label"] not in (NO_SPEECH, ERROR) for r in rows], bool)
    conf = np.array([r["confidence"] if r["confidence"] is not None else np.nan for r in rows], float)
    probs = np.array([[r[f"p_{c}"] if r[f"p_{c}"] is not None else np.nan for c in classes] for r in rows],
                     float).reshape(k, len(classes))
    s_conf, s_probs = smooth(np.nan_to_num(conf), np.nan_to_num(probs), scored, config.smooth)
    labels = decisions(s_conf, s_probs, scored, run.threshold, classes, [r["label"] for r in rows])
    t0, t1 = tiles(start, end)
    segs = segments(t0, t1, labels, np.where(scored, s_conf, np.nan), config.min_segment)
    speech = speech_intervals(info["speech_frames"].astype(np.float32), 0.5)
    segs = cut_to_speech(segs, speech, config.min_pause)
    unknown = unknown_stretches([(s.start, s.end, s.label) for s in segs])
    per_label: dict[str, float] = {}
    for s in segs:
        per_label[s.label] = per_label.get(s.label, 0.0) + s.duration
    longest = max(unknown, key=lambda ab: ab[1] - ab[0], default=None)
    messages = []
    if not scored.any() and rows:
        gap_note = " (or could be decoded)" if any(r["label"] == ERROR for r in rows) else ""
        messages.append(f"no speech found in {info['duration_s']:.1f} s of audio{gap_note} (VAD threshold "
                        f"{config.vad_threshold}, a window needs {config.min_speech:.0%} speech): nothing was scored")
    summary: dict[str, Any] = {
        "duration_s": info["duration_s"], "speech_s": info["speech_s"], "n_windows": k,
        "n_scored_windows": int(scored.sum()), "seconds_per_label": {k_: round(v, 3) for k_, v in per_label.items()},
        "unknown_stretches": {"count": len(unknown), "total_s": round(sum(b - a for a, b in unknown), 3),
                              "longest": None if longest is None else {"start_s": longest[0], "end_s": longest[1]},
                              "rule": "unknown segments merged across the silence between them"},
        "decode_errors": [{"start_s": g.start_s, "end_s": None if math.isinf(g.end_s) else g.end_s, "reason": g.reason}
                          for g in info["gaps"]],
        "threshold": run.threshold, "known_classes": classes, "method": run.info.method, "modalities": run.modalities,
        "settings": asdict(config), "elapsed_s": round(elapsed, 2),
        "real_time_factor": round(info["duration_s"] / elapsed, 2) if elapsed > 0 else None,
        "resumed_from_window": info["resumed_from"], "messages": messages,
    }
    if keep:
        seg_rows = [{"start_s": round(s.start, 3), "end_s": round(s.end, 3), "label": s.label,
                     "confidence": None if math.isnan(s.confidence) else round(s.confidence, 6),
                     "n_windows": s.n_windows} for s in segs]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=["start_s", "end_s", "label", "confidence", "n_windows"],
                           lineterminator="\n")
        w.writeheader()
        w.writerows(seg_rows)
        atomic_write_text(out / SEGMENTS_CSV, buf.getvalue())
        atomic_write_json(out / SEGMENTS_JSON, seg_rows, allow_nan=False)
        atomic_write_json(out / SUMMARY_JSON, summary, allow_nan=False)
        if picture and rows:
            from openmer.timeline.plot import plot_timeline

            plot_timeline(out / PICTURE, t0, t1, s_conf, s_probs, scored, unknown, speech, classes, run.threshold,
                          title=f"{Path(json.loads((out / STATE_JSON).read_text())['recording']).name}: "
                                f"{run.info.method} ({', '.join(run.modalities)})",
                          errors=[(g.start_s, min(g.end_s, info["duration_s"])) for g in info["gaps"]])
    for m in messages:
        warnings.warn(OpenmerWarning(m), stacklevel=3)
    return Timeline(columns, rows, segs, summary, out if keep else None, messages, np.stack([t0, t1], 1), labels,
                    s_conf, s_probs, info["speech_frames"])
