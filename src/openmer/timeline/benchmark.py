"""``openmer benchmark timeline --data emodb|ravdess-speech``: emotion diarization of long sessions
built from real clips, with known and unknown emotions, against their true segments.

Sessions: for each (openness level, split) of the dataset's protocol, each held-out *test* speaker's
clips (known and unknown classes, as in the split) are put in a seeded random order with real
silence gaps drawn uniformly from ``gap_s`` (0.3-2 s) between them, one session per speaker; the
session's transcript (JSON cues) gives each clip's own transcript at its time. Each method is
trained on the split's training speakers by :func:`openmer.training.run.train` on the dataset's
benchmark preset (EmoDB's preset for every speech corpus: :func:`openmer.benchmarks.media.emodb_config`),
then :func:`openmer.timeline.timeline` runs on each session.

Reported per method, level and split (and mean/std over splits):

* ``eder``: :func:`openmer.timeline.segments.eder` of the smoothed segments against the clips
  (label = the clip's class when known, else ``unknown``; gaps carry no label);
* ``frame_auroc``, ``frame_oscr``: on 10 ms frames inside clips, each frame taking the smoothed
  confidence and class of the window tile over it (frames the timeline calls ``no_speech`` are
  rejected: the lowest confidence); unknown-class frames are the negatives;
* ``unknown_f1``: F1 of ``unknown`` stretches (consecutive unknown segments, or unknown clips,
  with only silence between them, merged) matched one-to-one at IoU >= 0.5;
* the same three with **oracle segmentation** (``*_oracle``): each clip scored whole by the run,
  as the clip benchmarks do, so the cost of not knowing the boundaries is the difference;
* ``vad_precision``, ``vad_recall``: Silero's 32 ms speech frames against the clips' extents.

With ``cue_offsets`` (``--cue-offsets 0.5,1,2``), each session is also scored with its transcript
cues shifted that many seconds later (:func:`offset_cues`: a subtitle track out of step with its
audio, issue 29's misalignment); those records carry ``cue_offset_s`` (0: aligned). The oracle
metrics score each clip with its own transcript, so they are the aligned ones at every offset.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from openmer.config import OpenmerConfig
from openmer.methods.threshold import UNKNOWN_LABEL
from openmer.timeline.core import TimelineConfig
from openmer.timeline.segments import ERROR, NO_SPEECH, eder, unknown_stretches

FRAME_S = 0.01
METRICS = ("eder", "frame_auroc", "frame_oscr", "unknown_f1", "eder_oracle", "frame_auroc_oracle",
           "frame_oscr_oracle", "unknown_f1_oracle", "vad_precision", "vad_recall")


class TimelineBenchmarkConfig(OpenmerConfig):
    """What ``openmer benchmark timeline`` runs.

    Attributes:
        data: a built-in speech dataset with a protocol (``emodb``, ``ravdess-speech``).
        methods: trained and scored per split.
        levels: openness levels (``None`` = all); n_splits: first N splits of each level.
        window, hop, smooth: the timeline settings measured.
        gap_s: (low, high) seconds of silence between clips.
        quick: the preset's quick training.
        cue_offsets: seconds the transcript cues are shifted (later; negative: earlier) in extra scorings.
    """

    data: str = "emodb"
    methods: tuple[str, ...] = ("msp", "arpl", "hcep")
    levels: tuple[str, ...] | None = None
    n_splits: int = 2
    seed: int = 0
    window: float = TimelineConfig.window
    hop: float = TimelineConfig.hop
    smooth: int = TimelineConfig.smooth
    gap_s: tuple[float, float] = (0.3, 2.0)
    quick: bool = False
    #: also score each session with its cues shifted this many seconds later (module doc); () = aligned only
    cue_offsets: tuple[float, ...] = ()


def offset_cues(cues: Sequence[dict[str, Any]], offset_s: float) -> list[dict[str, Any]]:
    """``{"start", "end", "text"}`` cues (seconds) ``offset_s`` seconds later (earlier when negative);
    a cue that would start before 0 starts at 0, one that would end by 0 is dropped."""
    out = []
    for c in cues:
        start, end = float(c["start"]) + offset_s, float(c["end"]) + offset_s
        if end > 0:
            out.append({**c, "start": max(start, 0.0), "end": end})
    return out


def build_sessions(manifest: Any, test: Sequence[int] | np.ndarray, known: Sequence[str], out: Path, *, seed: int,
                   gap_s: tuple[float, float] = (0.3, 2.0), cue_offsets: Sequence[float] = ()) -> list[dict[str, Any]]:
    """One session per speaker of the ``test`` rows (see the module doc), written to ``out``.

    Returns:
        ``[{"audio": wav path, "transcript": json path, "clips": [(start_s, end_s, label, row)],
        "transcripts": {offset_s: json path}}]`` where ``label`` is the clip's class when known, else
        ``unknown``, and ``transcripts`` holds the aligned cues (offset 0) and those of
        :func:`offset_cues` for each of ``cue_offsets``.
    """
    import soundfile as sf

    from openmer.media import load_audio

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    by_speaker: dict[str, list[int]] = {}
    for i in test:
        s = manifest[int(i)]
        by_speaker.setdefault(s.group or s.id, []).append(int(i))
    sessions = []
    for speaker in sorted(by_speaker):
        rows = [by_speaker[speaker][j] for j in rng.permutation(len(by_speaker[speaker]))]
        parts, clips, cues, t = [], [], [], 0.0
        for i in rows:
            s = manifest[i]
            wave = load_audio(manifest.path(s, "audio") or manifest.path(s, "video"), start=s.start, end=s.end,
                              min_rms=0)
            gap = np.zeros(int(round(rng.uniform(*gap_s) * 16000)), np.float32)
            start = t + len(gap) / 16000
            parts += [gap, wave]
            t = start + len(wave) / 16000
            clips.append((start, t, s.label if s.label in known else UNKNOWN_LABEL, i))
            text = manifest.text_of(s)
            if text:
                cues.append({"start": start, "end": t, "text": text})
        parts.append(np.zeros(int(round(rng.uniform(*gap_s) * 16000)), np.float32))
        name = f"session-{speaker}"
        sf.write(out / f"{name}.wav", np.concatenate(parts), 16000)
        (out / f"{name}.cues.json").write_text(json.dumps(cues), encoding="utf-8")
        transcripts = {0.0: out / f"{name}.cues.json"}
        for d in cue_offsets:
            transcripts[float(d)] = out / f"{name}.cues{d:+g}s.json"
            transcripts[float(d)].write_text(json.dumps(offset_cues(cues, float(d))), encoding="utf-8")
        sessions.append({"audio": out / f"{name}.wav", "transcript": out / f"{name}.cues.json", "clips": clips,
                         "transcripts": transcripts})
    return sessions


def unknown_matches(reference: Sequence[tuple[float, float, str]], hypothesis: Sequence[tuple[float, float, str]],
                    iou: float = 0.5) -> tuple[int, int, int]:
    """``(matched, n_reference, n_hypothesis)`` unknown stretches, matched one-to-one at IoU >=
    ``iou`` (greedy, largest IoU first)."""
    ref, hyp = unknown_stretches(reference), unknown_stretches(hypothesis)
    pairs = []
    for i, (a, b) in enumerate(ref):
        for j, (c, d) in enumerate(hyp):
            inter = max(0.0, min(b, d) - max(a, c))
            union = max(b, d) - min(a, c)
            if union > 0 and inter / union >= iou:
                pairs.append((inter / union, i, j))
    used_r: set[int] = set()
    used_h: set[int] = set()
    for _, i, j in sorted(pairs, reverse=True):
        if i not in used_r and j not in used_h:
            used_r.add(i)
            used_h.add(j)
    return len(used_r), len(ref), len(hyp)


def f1(matched: int, n_reference: int, n_hypothesis: int) -> float:
    """F1 of matched stretches (1 when there is none on either side)."""
    if n_reference == 0 and n_hypothesis == 0:
        return 1.0
    return 2 * matched / (n_reference + n_hypothesis)


def _frames(duration: float, clips: Sequence[tuple[float, float, str, int]], known: Sequence[str]) -> np.ndarray:
    """(F,) label of each 10 ms frame: class index, -1 unknown, -2 no speech."""
    y = np.full(int(math.ceil(duration / FRAME_S)), -2, np.int64)
    for s, e, lab, _ in clips:
        y[int(round(s / FRAME_S)): int(round(e / FRAME_S))] = known.index(lab) if lab in known else -1
    return y


def _tile_frames(n: int, tiles: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(n,) value of the tile over each 10 ms frame."""
    idx = np.searchsorted(tiles[:, 1], (np.arange(n) + 0.5) * FRAME_S, side="right")
    return values[np.clip(idx, 0, len(values) - 1)]


def score_session(run: Any, session: dict[str, Any], known: Sequence[str], config: TimelineConfig,
                  oracle: tuple[np.ndarray, np.ndarray], *, feature_cache: Path | None = None) -> dict[str, Any]:
    """Timeline + oracle pieces of one session: EDER parts, frame arrays, stretches, VAD counts.

    ``feature_cache``: the windows' feature cache, and the run's encoder states are kept (see
    :func:`openmer.timeline.timeline`'s ``feature_cache`` and ``keep_encoder_states``).
    """
    from openmer.timeline import timeline

    result = timeline(run, session["audio"], None, config=config, transcript=session["transcript"], picture=False,
                      feature_cache=feature_cache, keep_encoder_states=feature_cache is not None)
    clips = session["clips"]
    duration = float(result.summary["duration_s"])
    ref = [(s, e, lab) for s, e, lab, _ in clips]
    hyp = [(s.start, s.end, s.label) for s in result.segments]
    conf_o, pred_o = oracle
    thr = run.threshold
    hyp_o = [(s, e, known[int(p)] if c >= thr else UNKNOWN_LABEL) for (s, e, _, _), c, p in zip(clips, conf_o, pred_o,
                                                                                                  strict=True)]
    y = _frames(duration, clips, known)
    scored = np.array([lab not in (NO_SPEECH, ERROR) for lab in result.labels])
    low = float(np.min(result.confidence[scored])) - 1.0 if scored.any() else -1.0
    conf_w = np.where(scored, result.confidence, low)
    pred_w = result.probabilities.argmax(axis=1) if result.probabilities.size else np.zeros(len(scored), int)
    conf_f = _tile_frames(len(y), result.tiles, conf_w)
    pred_f = _tile_frames(len(y), result.tiles, pred_w)
    conf_fo = np.full(len(y), np.nan)
    pred_fo = np.zeros(len(y), np.int64)
    for (s, e, _, _), c, p in zip(clips, conf_o, pred_o, strict=True):
        conf_fo[int(round(s / FRAME_S)): int(round(e / FRAME_S))] = c
        pred_fo[int(round(s / FRAME_S)): int(round(e / FRAME_S))] = p
    speech = result.speech_frames
    vad_t = np.arange(len(speech)) * 0.032 + 0.016
    truth = np.zeros(len(speech), bool)
    for s, e, _, _ in clips:
        truth |= (vad_t >= s) & (vad_t < e)
    return {"eder": eder(ref, hyp), "eder_oracle": eder(ref, hyp_o), "ref": ref, "hyp": hyp, "hyp_oracle": hyp_o,
            "y": y, "conf": conf_f, "pred": pred_f, "conf_oracle": conf_fo, "pred_oracle": pred_fo,
            "vad": (int((speech & truth).sum()), int(speech.sum()), int(truth.sum())),
            "duration_s": duration, "elapsed_s": float(result.summary["elapsed_s"])}


def split_metrics(parts: Sequence[dict[str, Any]], k: int) -> dict[str, float]:
    """The metrics of one split from its sessions' :func:`score_session` parts."""
    from openmer.metrics import open_set_metrics

    out: dict[str, float] = {}
    for suffix in ("", "_oracle"):
        e = [p["eder" + suffix] for p in parts]
        errors = sum(x["missed"] + x["false_alarm"] + x["overlap"] + x["confusion"] for x in e)
        out["eder" + suffix] = errors / sum(x["total"] for x in e)
        y = np.concatenate([p["y"] for p in parts])
        conf = np.concatenate([p["conf" + suffix] for p in parts])
        pred = np.concatenate([p["pred" + suffix] for p in parts])
        inside = y >= -1
        m = open_set_metrics(conf[inside], pred[inside], y[inside], num_classes=k)
        out["frame_auroc" + suffix], out["frame_oscr" + suffix] = m["auroc"], m["oscr"]
        counts = [unknown_matches(p["ref"], p["hyp" + suffix]) for p in parts]
        out["unknown_f1" + suffix] = f1(*(sum(c[i] for c in counts) for i in range(3)))
    tp, pos, true = (sum(p["vad"][i] for p in parts) for i in range(3))
    out["vad_precision"], out["vad_recall"] = tp / max(pos, 1), tp / max(true, 1)
    out["audio_s"] = sum(p["duration_s"] for p in parts)
    out["real_time_factor"] = out["audio_s"] / max(sum(p["elapsed_s"] for p in parts), 1e-9)
    return out


def run_timeline_benchmark(cfg: TimelineBenchmarkConfig, out: str | Path, *,
                           progress: Callable[[int, int, str], None] | None = None) -> dict[str, Any]:
    """Run the benchmark (see the module doc); writes ``results.json`` and ``results.md`` to ``out``.

    Raises:
        ConfigError: a dataset without a protocol, an unknown method or level.
        OutputError: ``out`` cannot be written (checked first).
    """
    from openmer.benchmarks.media import benchmark_profile, emodb_config, media_plan
    from openmer.benchmarks.trials import benchmark_meta, select_levels
    from openmer.datasets import resolve_data
    from openmer.files import atomic_write_json, atomic_write_text, check_writable
    from openmer.inference import load_run
    from openmer.paths import default_cache_dir
    from openmer.protocol import load_protocol, open_set_subsets
    from openmer.training.run import train

    t0 = time.perf_counter()
    out = check_writable(out)
    preset = emodb_config(seed=cfg.seed, quick=cfg.quick).model_copy(update={"dataset": cfg.data})
    manifest, _ = resolve_data(cfg.data)
    protocol = load_protocol(cfg.data)
    tl_config = TimelineConfig(window=cfg.window, hop=cfg.hop, smooth=cfg.smooth)
    # each method's options and training config, as the preset's own benchmark gives them
    plans = {mp.cls.name: mp for group in media_plan(preset.model_copy(update={"methods": cfg.methods}),
                                                     protocol).groups for mp in group.methods}
    names, groups = list(manifest.labels), [s.group or s.id for s in manifest]
    levels = select_levels(cfg.levels, protocol)
    trials = [(lv, sp) for lv in levels for sp in protocol.levels[lv][: cfg.n_splits]]
    records: list[dict[str, Any]] = []
    # Encode once (results unchanged): a split's sessions hold the same clips at every level (the test
    # speakers' clips of every class, in an order seeded by the split index), so the windows' unprompted
    # features are stored on disk (window_cache) for every feature method and level, and each method's
    # runs share one set of frozen encoders whose late-prompt-entry states (prefix_cache) are kept
    held: dict[str, dict[str, Any]] = {}
    window_cache = out / "cache" / "window-features"
    done = 0
    total = len(trials) * len(cfg.methods)
    for level, split in trials:
        sub = open_set_subsets(names, groups, split, protocol.partition)
        known = list(split.known_classes)
        sessions = build_sessions(manifest, sub["test"], known, out / "sessions" / level / f"split{split.index}",
                                  seed=cfg.seed + split.index, gap_s=cfg.gap_s, cue_offsets=cfg.cue_offsets)
        for name in cfg.methods:
            if progress:
                progress(done, total, f"{name} {level} split {split.index}")
            run_dir = out / "runs" / level / f"split{split.index}" / name
            if not (run_dir / "run.json").is_file():
                train(cfg.data, known, method=name, profile=benchmark_profile(preset), out=run_dir, overwrite=True,
                      train_config=plans[name].train.model_copy(update={"seed": cfg.seed + split.index}),
                      modalities=list(preset.modalities), method_options=plans[name].options,
                      cache_dir=default_cache_dir())
            run = load_run(run_dir, encoders=held.get(name))
            held.setdefault(name, run.encoders)
            oracles = []
            for session in sessions:
                rows = [c[3] for c in session["clips"]]
                s = run.score(run.clips(manifest.subset(rows), [-1] * len(rows)), cache_dir=default_cache_dir())
                oracles.append((s.confidence.numpy().astype(float), s.prediction.numpy()))
            for offset in (0.0, *cfg.cue_offsets):
                parts = [score_session(run, {**session, "transcript": session["transcripts"][float(offset)]}, known,
                                       tl_config, oracle, feature_cache=window_cache)
                         for session, oracle in zip(sessions, oracles, strict=True)]
                records.append({"method": name, "level": level, "split": split.index, "sessions": len(sessions),
                                "cue_offset_s": float(offset), **split_metrics(parts, len(known))})
            done += 1
            atomic_write_json(out / "results.json", {"records": records}, allow_nan=False)
    if progress:
        progress(total, total, "done")
    meta = benchmark_meta(cfg, protocol, t0, preset=preset.preset_note)
    atomic_write_json(out / "results.json", {"records": records, "meta": meta}, allow_nan=False)
    atomic_write_text(out / "results.md", results_markdown(records, cfg, meta))
    return {"records": records, "meta": meta}


def summarise(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and std over splits per (method, level, cue offset), and over every split per method
    (level ``all``)."""
    rows = []

    def offset(r: dict[str, Any]) -> float:
        return float(r.get("cue_offset_s", 0.0))

    keys = sorted({(r["method"], r["level"], offset(r)) for r in records}) + sorted(
        {(r["method"], "all", offset(r)) for r in records})
    for method, level, off in keys:
        group = [r for r in records if r["method"] == method and level in ("all", r["level"]) and offset(r) == off]
        row: dict[str, Any] = {"method": method, "level": level, "cue_offset_s": off, "n": len(group)}
        for m in (*METRICS, "real_time_factor"):
            v = np.array([r[m] for r in group], float)
            row[m] = (float(v.mean()), float(v.std()))
        rows.append(row)
    return rows


def results_markdown(records: Sequence[dict[str, Any]], cfg: TimelineBenchmarkConfig, meta: dict[str, Any]) -> str:
    """``results.md``: one table of mean ± std over splits per (method, level), and the note."""
    head = ("| method | level | splits | EDER | EDER oracle | frame AUROC | oracle | frame OSCR | oracle | "
            "unknown F1 | oracle | VAD P | VAD R | x real time |")
    note = (f"Command: `openmer benchmark timeline --data {cfg.data}`; window {cfg.window} s, hop {cfg.hop} s, "
            f"smoothing {cfg.smooth} windows; sessions: one per test speaker, clips in seeded random order, "
            f"silence gaps {cfg.gap_s[0]}-{cfg.gap_s[1]} s. Training: {meta.get('preset', '')}. "
            f"Took {meta.get('seconds', 0) / 60:.1f} min. Mean ± std over splits; EDER lower is better. "
            f"x real time: session audio seconds per second of timeline here, where each split's windows "
            f"are encoded once and read back by the other methods and levels (the speed of one timeline: "
            f"`openmer bench-timeline`).")
    lines = [f"# Timeline benchmark: {cfg.data}", "", note, "", head, "|" + "---|" * 14]

    def f(v: tuple[float, float]) -> str:
        return f"{v[0]:.3f} ± {v[1]:.3f}"

    summary = summarise(records)
    aligned = [r for r in summary if r["cue_offset_s"] == 0.0]
    lines.extend(
        f"| {r['method']} | {r['level']} | {r['n']} | {f(r['eder'])} | {f(r['eder_oracle'])} | "
        f"{f(r['frame_auroc'])} | {f(r['frame_auroc_oracle'])} | {f(r['frame_oscr'])} | "
        f"{f(r['frame_oscr_oracle'])} | {f(r['unknown_f1'])} | {f(r['unknown_f1_oracle'])} | "
        f"{r['vad_precision'][0]:.3f} | {r['vad_recall'][0]:.3f} | {r['real_time_factor'][0]:.1f} |"
        for r in aligned)
    if len(aligned) < len(summary):  # --cue-offsets: the same sessions with the transcript out of step
        base = {(r["method"], r["level"]): r for r in aligned}
        lines += ["", "## Transcript cues offset against the audio", "",
                  ("The same sessions with every transcript cue shifted later by the offset (a subtitle track out "
                   "of step); change vs aligned cues in brackets."), "",
                  "| method | level | cue offset (s) | splits | EDER | frame AUROC | frame OSCR | unknown F1 |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in summary:
            if r["cue_offset_s"] == 0.0:
                continue
            b = base[(r["method"], r["level"])]
            cells = " | ".join(f"{f(r[m])} ({r[m][0] - b[m][0]:+.3f})"
                               for m in ("eder", "frame_auroc", "frame_oscr", "unknown_f1"))
            lines.append(f"| {r['method']} | {r['level']} | {r['cue_offset_s']:g} | {r['n']} | {cells} |")
    overall = [r for r in aligned if r["level"] == "all"]
    if overall:
        costs = ", ".join(f"{r['method']} EDER {r['eder'][0]:.3f} vs {r['eder_oracle'][0]:.3f} with oracle "
                          f"segments, frame AUROC {r['frame_auroc'][0]:.3f} vs {r['frame_auroc_oracle'][0]:.3f}"
                          for r in overall)
        lines += ["", f"Cost of windowing vs oracle segments (all splits): {costs}."]
    return "\n".join(lines) + "\n"


def timeline_config(*, seed: int = 0, quick: bool = False, data: str = "emodb") -> TimelineBenchmarkConfig:
    """The preset: msp, arpl and HCEP, 2 splits per level (quick: msp and arpl, the first and last
    level, 1 split, the training preset's quick schedule)."""
    from openmer.protocol import load_protocol

    levels = tuple(load_protocol(data).levels)
    if quick:
        return TimelineBenchmarkConfig(data=data, seed=seed, quick=True, methods=("msp", "arpl"),
                                       levels=(levels[0], levels[-1]), n_splits=1)
    return TimelineBenchmarkConfig(data=data, seed=seed)


def _register() -> None:
    from openmer.benchmarks.registry import BenchmarkPlan, refuse_roots, register_benchmark

    @register_benchmark("timeline")
    def plan_timeline(*, seed: int = 0, quick: bool = False, profile: str | None = None,
                      roots: Sequence[str] | None = None) -> BenchmarkPlan:
        refuse_roots("timeline", roots or [])
        if profile not in (None, "offline"):
            from openmer.errors import ConfigError

            raise ConfigError("benchmark timeline trains on the offline profile (the EmoDB preset's)")
        cfg = timeline_config(seed=seed, quick=quick)
        return BenchmarkPlan(config=cfg, run=lambda config, *, progress=None, out="runs/benchmark-timeline":
                             run_timeline_benchmark(config, out, progress=progress))


_register()
