"""Frames of a long video for its windows, from one streaming decode in bounded memory.

Frames are taken on a grid of times ``i x step`` (the decoded frame nearest to each grid time);
a window's ``n`` frames are the grid frames nearest to ``start + (j + 1/2) x length / n``,
``j = 0..n-1`` (uniform, as :func:`openmer.media.load_frames` samples a clip). Grid frames older
than the window asked for are dropped, so memory holds about ``window / step`` frames.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from openmer.errors import MediaError


class FrameGrid:
    """RGB frames of ``path``'s video stream on a time grid (see the module doc).

    Windows must be asked for in increasing start order.

    Raises:
        MediaError: naming the file, when it has no video stream or cannot be opened.
    """

    def __init__(self, path: str | Path, step: float = 0.25):
        import av

        from openmer.media.audio import _container_start, _open_container
        from openmer.media.video import _video_stream

        self.path = Path(path)
        self.container = _open_container(self.path)
        stream = _video_stream(self.container)
        if stream is None:
            self.container.close()
            raise MediaError(self.path, "no video stream")
        stream.thread_type = "AUTO"
        self.origin = _container_start(self.container)
        self._frames = self.container.decode(stream)
        self._error = av.FFmpegError
        self.step = float(step)
        self.grid: dict[int, np.ndarray] = {}
        self._next = 0  # next grid index to fill
        self._prev: tuple[float, Any] | None = None
        self._done = False

    def close(self) -> None:
        self.container.close()

    def _fill_to(self, t: float) -> None:
        """Decode until every grid time <= ``t`` has its frame (or the stream ends)."""
        while not self._done and self._next * self.step <= t:
            try:
                frame = next(self._frames)
            except StopIteration:
                self._done = True
                break
            except self._error:  # a corrupt stretch: its grid times take the nearest good frame
                continue
            ft = (frame.time - self.origin) if frame.time is not None else \
                (self._prev[0] + self.step if self._prev else 0.0)
            while self._next * self.step <= ft:
                g = self._next * self.step
                use = frame if self._prev is None or abs(ft - g) <= abs(g - self._prev[0]) else self._prev[1]
                self.grid[self._next] = use.to_ndarray(format="rgb24")
                self._next += 1
            self._prev = (ft, frame)
        if self._done and self._prev is not None:
            while self._next * self.step <= t:
                self.grid[self._next] = self._prev[1].to_ndarray(format="rgb24")
                self._next += 1

    def frames(self, start: float, end: float, n: int) -> np.ndarray | None:
        """(n, H, W, 3) uint8 frames of window ``[start, end)``, or ``None`` when the video has no frame."""
        times = start + (np.arange(n) + 0.5) * (end - start) / n
        self._fill_to(float(times[-1]) + self.step)
        for i in [i for i in self.grid if (i + 1) * self.step < start]:
            del self.grid[i]
        if not self.grid:
            return None
        keys = np.array(sorted(self.grid))
        picks = [int(keys[np.abs(keys * self.step - t).argmin()]) for t in times]
        return np.stack([self.grid[i] for i in picks])
