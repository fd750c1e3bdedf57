"""Speech detection with Silero VAD (the ``silero-vad`` package, which ships its model: offline, CPU).

Rule: Silero gives a speech probability per 32 ms frame (512 samples at 16 kHz); a frame is speech
when it is at least ``threshold`` (0.5, Silero's default). A window's ``speech`` value is the
fraction of its frames that are speech, and the window is *speech* when that fraction is at least
``min_speech_fraction`` (default 0.25); other windows are ``no_speech`` and are not scored.

Speed: the frames of a block of audio are cut into substreams of 256 frames (8.192 s) that run as
one batch, each starting from a fresh state (Silero's state carries 8 s of context at most in
practice); substreams start at multiples of 8.192 s from the start of the recording, so the
result does not depend on where a run was resumed. Measured on this 2-core CPU, 1 thread: ~36x
real time frame by frame, ~200x with 32 substreams per call.

Source: Silero Team, "Silero VAD: pre-trained enterprise-grade Voice Activity Detector", 2024
(https://github.com/snakers4/silero-vad), model ``silero_vad.jit`` of package version 6.
"""

from __future__ import annotations

import numpy as np
import torch

from openmer.errors import ConfigError

#: samples per Silero frame at 16 kHz (32 ms)
FRAME = 512
#: frames per substream (8.192 s); a block of audio must hold a whole number of substreams
SUBSTREAM = 256
#: substreams per call (a block of 524.288 s)
BATCH = 64
#: seconds of audio the VAD wants per block (stream blocks should be this long)
BLOCK_SECONDS = FRAME * SUBSTREAM * BATCH / 16000


class SileroVAD:
    """Frame speech probabilities of 16 kHz audio (see the module doc).

    Raises:
        ConfigError: the ``silero-vad`` package is not installed.
    """

    frame_seconds = FRAME / 16000

    def __init__(self, threshold: float = 0.5):
        # silero_vad/model.py calls torch.set_num_threads(1) when first imported: keep the caller's
        # setting (without this, ``openmer timeline --threads 2`` ran the encoders on one thread).
        threads = torch.get_num_threads()
        try:
            from silero_vad import load_silero_vad
        except ImportError as exc:  # pragma: no cover - a dependency of openmer
            raise ConfigError("speech detection needs the silero-vad package: pip install silero-vad") from exc
        finally:
            torch.set_num_threads(threads)
        if not 0.0 < threshold < 1.0:
            raise ConfigError(f"VAD threshold must be in (0, 1), got {threshold}")
        self.threshold = float(threshold)
        self.model = load_silero_vad(onnx=False)

    @torch.no_grad()
    def frame_probs(self, block: np.ndarray) -> np.ndarray:
        """(F,) float32 speech probabilities of the ``F = ceil(T / 512)`` frames of ``block`` (T,),
        a block that starts at a multiple of :data:`SUBSTREAM` frames of the recording (the last
        frame is zero-padded)."""
        n = len(block)
        if n == 0:
            return np.zeros(0, np.float32)
        n_frames = -(-n // FRAME)
        n_sub = -(-n_frames // SUBSTREAM)
        size = n_sub * SUBSTREAM * FRAME
        if n == size and block.dtype == np.float32 and block.flags.c_contiguous and block.flags.writeable:
            x = block  # a whole block (the timeline's): no copy
        else:
            x = np.zeros(size, np.float32)
            x[:n] = block
        frames = torch.from_numpy(x).view(n_sub, SUBSTREAM, FRAME)
        self.model.reset_states()
        out = torch.stack([self.model(frames[:, t], 16000).reshape(-1) for t in range(SUBSTREAM)], dim=1)
        return out.reshape(-1)[:n_frames].numpy().astype(np.float32)

    def speech_fraction(self, probs: np.ndarray, start: int, end: int) -> float:
        """Fraction of the frames whose centre lies in samples ``[start, end)`` that are speech."""
        first = max(0, (start - FRAME // 2 + FRAME - 1) // FRAME)
        last = min(len(probs), (end - FRAME // 2 + FRAME - 1) // FRAME)
        if last <= first:
            return 0.0
        return float(np.mean(probs[first:last] >= self.threshold))


def speech_intervals(probs: np.ndarray, threshold: float = 0.5) -> list[tuple[float, float]]:
    """``(start_s, end_s)`` of the runs of speech frames (probability >= ``threshold``)."""
    speech = np.concatenate([[False], np.asarray(probs) >= threshold, [False]])
    edges = np.flatnonzero(speech[1:] != speech[:-1])
    step = FRAME / 16000
    return [(float(a * step), float(b * step)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
