"""Applying a trained run to new input: one package, one loaded-run object.

- :mod:`~openmer.inference.loaded`: :class:`LoadedRun` and :func:`load_run` (a run folder read
  through :mod:`openmer.runs`, every file checked);
- :mod:`~openmer.inference.scoring`: scores of clips, post-hoc scores on the run's head;
- :mod:`~openmer.inference.evaluate`: ``openmer evaluate`` (metrics and figures on labelled data);
- :mod:`~openmer.inference.predict`: ``openmer predict`` (labels of media files, long files in windows).

The CLI (``cli/run.py``) calls these functions and only these; a service beside ``cli/`` calls the
same ones (timelines and unknown-discovery build on :class:`LoadedRun`).
"""

from openmer.inference.evaluate import evaluate
from openmer.inference.loaded import LoadedRun, load_run
from openmer.inference.predict import (
    AUDIO_EXT,
    HOP_SECONDS,
    MIN_CLIP_SECONDS,
    MIN_HOP_SECONDS,
    VIDEO_EXT,
    WINDOW_GROUP,
    WINDOW_SECONDS,
    check_windows,
    max_window_seconds,
    predict,
    predict_file,
    predict_iter,
    window_bounds,
)
from openmer.inference.scoring import method_batches, posthoc_rescore, score_clips
from openmer.methods.threshold import UNKNOWN_LABEL

__all__ = [
    "AUDIO_EXT", "HOP_SECONDS", "MIN_CLIP_SECONDS", "MIN_HOP_SECONDS", "UNKNOWN_LABEL", "VIDEO_EXT", "WINDOW_GROUP",
    "WINDOW_SECONDS", "LoadedRun", "check_windows", "evaluate", "load_run", "max_window_seconds", "method_batches",
    "posthoc_rescore", "predict", "predict_file", "predict_iter", "score_clips", "window_bounds",
]
