"""Smoothing of window decisions, segments, and the emotion diarization error rate (EDER).

Decision of a scored window (HCEP Algorithm 1, Sec. 4.4.6): class ``argmax p`` when the
confidence is at least the run's threshold, else ``unknown``. Windows without speech are
``no_speech``; windows that could not be decoded are ``error``; neither is smoothed or scored.

**Smoothing** (``k`` odd, ``h = (k - 1) / 2``): the probabilities and the confidence of a scored
window are replaced by their means over the scored windows ``i - h .. i + h`` of its run of
consecutive scored windows (the neighbourhood is cut at a ``no_speech``/``error`` window and at the
ends), and the decision is taken again from the means. Bound: when every window of a
neighbourhood has the same decision, its mean has that decision too (each ``p_c >= p_j`` and
``confidence >= threshold`` -- or ``< threshold`` for ``unknown`` -- survive averaging), so a
window's smoothed decision can differ from its own only within ``h`` windows of a change of raw
decision: **every boundary of the smoothed timeline lies within ``h x hop`` seconds of a boundary
of the raw one** (boundaries can vanish, none appears farther away).

**Segments**: each window owns its tile (:func:`openmer.timeline.windows.tiles`); consecutive
tiles with the same decision merge into a segment. With ``min_segment > 0`` a segment shorter than
that (seconds) gives its time to the segment before it (to the one after it at the start); this
moves boundaries by less than ``min_segment`` more.

**EDER** (Wang et al. 2023, "Speech Emotion Diarization: Which Emotion Appears When?", the metric
of SpeechBrain's emotion diarization recipe): over the elementary intervals between all
boundaries, with ``R`` the reference labels and ``H`` the hypothesis labels active there,
missed = ``max(0, |R| - |H|)``, false alarm = ``|H|`` where ``R`` is empty, overlap =
``|H| - |R|`` where ``R`` is not empty and ``|H| > |R|``, confusion = ``min(|R|, |H|) - |R & H|``,
each times the interval's length; EDER = their sum over the total reference time ``sum |R|``.
``unknown`` is a label like the others; no-speech time carries no label.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from openmer.methods.threshold import UNKNOWN_LABEL

NO_SPEECH = "no_speech"
ERROR = "error"


def decisions(conf: np.ndarray, probs: np.ndarray, scored: np.ndarray, threshold: float,
              classes: Sequence[str], other: Sequence[str]) -> list[str]:
    """Labels of K windows: ``classes[argmax probs]`` or ``unknown`` for scored ones, ``other[i]`` else.

    Args:
        conf: (K,) confidences; probs: (K, C) class probabilities; scored: (K,) bool.
    """
    out = []
    for i in range(len(scored)):
        if not scored[i]:
            out.append(other[i])
        else:
            out.append(classes[int(np.argmax(probs[i]))] if conf[i] >= threshold else UNKNOWN_LABEL)
    return out


def smooth(conf: np.ndarray, probs: np.ndarray, scored: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Means of ``conf`` (K,) and ``probs`` (K, C) over ``k`` scored windows (see the module doc).

    Raises:
        ValueError: ``k`` not a positive odd number.
    """
    if k < 1 or k % 2 == 0:
        raise ValueError(f"smoothing needs an odd number of windows >= 1, got {k}")
    conf, probs = np.asarray(conf, float), np.asarray(probs, float)
    if k == 1:
        return conf.copy(), probs.copy()
    h = (k - 1) // 2
    out_c, out_p = conf.copy(), probs.copy()
    i, n = 0, len(scored)
    while i < n:
        if not scored[i]:
            i += 1
            continue
        j = i
        while j < n and scored[j]:
            j += 1
        for t in range(i, j):  # run [i, j)
            a, b = max(i, t - h), min(j, t + h + 1)
            out_c[t] = conf[a:b].mean()
            out_p[t] = probs[a:b].mean(axis=0)
        i = j
    return out_c, out_p


@dataclass(frozen=True)
class Segment:
    """A stretch of one decision: seconds, label, mean (smoothed) confidence of its windows (NaN
    for no_speech/error), number of windows."""

    start: float
    end: float
    label: str
    confidence: float
    n_windows: int

    @property
    def duration(self) -> float:
        return self.end - self.start


def segments(tile_start: np.ndarray, tile_end: np.ndarray, labels: Sequence[str], conf: np.ndarray,
             min_segment: float = 0.0) -> list[Segment]:
    """Merged runs of one label over the windows' tiles (see the module doc)."""
    runs: list[list] = []  # [start, end, label, conf_sum, n]
    for s, e, lab, c in zip(tile_start, tile_end, labels, conf, strict=True):
        if runs and runs[-1][2] == lab:
            runs[-1][1] = e
            runs[-1][3] += c
            runs[-1][4] += 1
        else:
            runs.append([s, e, lab, c, 1])
    if min_segment > 0 and len(runs) > 1:
        merged: list[list] = []
        for r in runs:
            if merged and (r[1] - r[0] < min_segment or merged[-1][2] == r[2]):
                merged[-1][1] = r[1]  # a short run gives its time to the run before it
                if merged[-1][2] == r[2]:
                    merged[-1][3] += r[3]
                    merged[-1][4] += r[4]
            else:
                merged.append(list(r))
        if len(merged) > 1 and merged[0][1] - merged[0][0] < min_segment:  # a short first run: to the next
            merged[1][0] = merged[0][0]
            merged.pop(0)
        runs = merged
    return [Segment(float(s), float(e), lab, float(c / n) if lab not in (NO_SPEECH, ERROR) else float("nan"), int(n))
            for s, e, lab, c, n in runs]


def eder(reference: Sequence[tuple[float, float, str]],
         hypothesis: Sequence[tuple[float, float, str]]) -> dict[str, float]:
    """Emotion diarization error rate of ``hypothesis`` against ``reference`` (see the module doc).

    Args:
        reference, hypothesis: ``(start_s, end_s, label)`` segments; a hypothesis label
            ``no_speech`` or ``error`` counts as no label.

    Returns:
        ``{"eder", "missed", "false_alarm", "overlap", "confusion", "total"}``: seconds, and the rate.

    Raises:
        ValueError: the reference holds no labelled time.
    """
    hyp = [(s, e, lab) for s, e, lab in hypothesis if lab not in (NO_SPEECH, ERROR)]
    cuts = sorted({t for s, e, _ in [*reference, *hyp] for t in (s, e)})
    out = {"missed": 0.0, "false_alarm": 0.0, "overlap": 0.0, "confusion": 0.0, "total": 0.0}
    for a, b in itertools.pairwise(cuts):
        d = b - a
        if d <= 0:
            continue
        r = [lab for s, e, lab in reference if s < b and e > a]
        h = [lab for s, e, lab in hyp if s < b and e > a]
        out["total"] += len(r) * d
        out["missed"] += max(0, len(r) - len(h)) * d
        if not r:
            out["false_alarm"] += len(h) * d
        elif len(h) > len(r):
            out["overlap"] += (len(h) - len(r)) * d
        correct = sum(min(r.count(lab), h.count(lab)) for lab in set(r))
        out["confusion"] += (min(len(r), len(h)) - correct) * d
    if out["total"] <= 0:
        raise ValueError("EDER needs reference segments with labelled time")
    out["eder"] = (out["missed"] + out["false_alarm"] + out["overlap"] + out["confusion"]) / out["total"]
    return out


def cut_to_speech(segs: Sequence[Segment], speech: Sequence[tuple[float, float]],
                  min_pause: float = 0.3) -> list[Segment]:
    """Segments cut to the speech the VAD found: the time of an emotion (or ``unknown``) segment
    outside every speech interval becomes ``no_speech``, so labels cover speech, not the pauses
    that a window's tile spans. Pauses shorter than ``min_pause`` seconds are bridged (a breath
    does not split a segment). ``no_speech``/``error`` segments are kept as they are; pieces of one
    segment keep its confidence and window count.

    Args:
        segs: segments covering the recording in order.
        speech: ``(start_s, end_s)`` speech intervals in order (:func:`openmer.timeline.vad.speech_intervals`).
    """
    bridged: list[list[float]] = []
    for a, b in speech:
        if bridged and a - bridged[-1][1] < min_pause:
            bridged[-1][1] = b
        else:
            bridged.append([a, b])
    out: list[Segment] = []

    def add(seg: Segment) -> None:
        if seg.end - seg.start <= 1e-9:
            return
        if out and out[-1].label == seg.label and abs(out[-1].end - seg.start) < 1e-9:
            last = out.pop()
            seg = Segment(last.start, seg.end, seg.label, last.confidence if seg.label in (NO_SPEECH, ERROR)
                          else (last.confidence * last.n_windows + seg.confidence * seg.n_windows)
                          / max(last.n_windows + seg.n_windows, 1), last.n_windows + seg.n_windows)
        out.append(seg)

    j = 0
    for seg in segs:
        if seg.label in (NO_SPEECH, ERROR):
            add(seg)
            continue
        t = seg.start
        while j < len(bridged) and bridged[j][1] <= seg.start:
            j += 1
        k = j
        while k < len(bridged) and bridged[k][0] < seg.end:
            a, b = max(seg.start, bridged[k][0]), min(seg.end, bridged[k][1])
            if a > t:
                add(Segment(t, a, NO_SPEECH, float("nan"), 0))
            add(Segment(a, b, seg.label, seg.confidence, seg.n_windows))
            t = b
            k += 1
        if t < seg.end:
            add(Segment(t, seg.end, NO_SPEECH, float("nan"), 0))
    return out


def unknown_stretches(segs: Sequence[tuple[float, float, str]]) -> list[tuple[float, float]]:
    """``(start_s, end_s)`` of the stretches to review: ``unknown`` segments merged across the
    silence between them (``no_speech``/``error`` segments, or gaps); a segment of a known class
    ends a stretch."""
    out: list[list[float]] = []
    open_ = False
    for s, e, lab in sorted(segs):
        if lab == UNKNOWN_LABEL:
            if open_:
                out[-1][1] = e
            else:
                out.append([s, e])
            open_ = True
        elif lab not in (NO_SPEECH, ERROR):
            open_ = False
    return [(a, b) for a, b in out]
