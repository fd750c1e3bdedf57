"""Windows of a recording cut from a stream of decoded audio blocks, in bounded memory.

Window ``k`` covers samples ``[k * H, k * H + W)`` (``W = round(window * 16000)``, ``H = round(hop *
16000)``) for every ``k`` whose window ends inside the recording; when the last of them ends before
the recording does, one more window ``[N - W, N)`` ends at its last sample; a recording no longer
than one window is one window ``[0, N)``. These are :func:`openmer.inference.window_bounds`'s
windows, in samples. Each window also owns a *tile*: the stretch between the midpoints of its
centre and its neighbours' centres (the first tile starts at 0, the last ends at the end), so the
tiles cover the recording once; segments and the picture are drawn on tiles.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from openmer.media.audio import SAMPLE_RATE


@dataclass(frozen=True)
class Window:
    """One window: its index, first sample and end sample (exclusive) at 16 kHz, and its samples."""

    index: int
    start: int
    end: int
    wave: np.ndarray

    @property
    def start_s(self) -> float:
        return self.start / SAMPLE_RATE

    @property
    def end_s(self) -> float:
        return self.end / SAMPLE_RATE


def cut_windows(blocks: Iterable[np.ndarray], window: float, hop: float) -> Iterator[Window]:
    """The windows of the recording whose consecutive 16 kHz ``blocks`` are given (see the module doc).

    Memory: the block being cut, the samples of it the next windows need (at most one window),
    and the windows not yet consumed; a block is never copied whole (a window that straddles two
    blocks is joined from the kept samples and the new block).
    """
    w, h = max(1, round(window * SAMPLE_RATE)), max(1, round(hop * SAMPLE_RATE))
    tail = np.zeros(0, np.float32)  # samples [tail_start, total) of the blocks seen so far
    tail_start = 0
    k = 0
    total = 0
    for block in blocks:
        first = total  # sample index of block[0]
        total += len(block)
        while k * h + w <= total:
            s = k * h
            yield Window(k, s, s + w, _samples(tail, tail_start, block, first, s, s + w))
            k += 1
        keep_from = max(tail_start, min(k * h, total - w))  # the next window, and the last W samples
        tail, tail_start = _samples(tail, tail_start, block, first, keep_from, total), keep_from
        del block  # not kept while the next block is read
    if total == 0:
        return
    last_end = (k - 1) * h + w if k else 0
    if k == 0:  # no longer than one window: the whole recording
        yield Window(0, 0, total, tail.copy())
    elif total - last_end > 16:  # the last window ends at the end (1 ms of slack, as window_bounds)
        yield Window(k, total - w, total, tail[total - w - tail_start:].copy())


def _samples(tail: np.ndarray, tail_start: int, block: np.ndarray, first: int, a: int, b: int) -> np.ndarray:
    """A copy of samples ``[a, b)`` from ``tail`` (samples from ``tail_start`` up to ``first``) and
    ``block`` (samples from ``first``); ``tail_start <= a`` and ``b <= first + len(block)``."""
    if a >= first:
        return block[a - first: b - first].copy()
    return np.concatenate([tail[a - tail_start:], block[: max(0, b - first)]])


def tiles(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K,) tile starts and ends (seconds) of windows with these starts and ends (see the module doc)."""
    starts, ends = np.asarray(starts, float), np.asarray(ends, float)
    if len(starts) == 0:
        return starts, ends
    centres = (starts + ends) / 2
    mids = (centres[1:] + centres[:-1]) / 2
    return np.concatenate([[0.0], mids]), np.concatenate([mids, [ends[-1]]])
