"""Scoring clips with a loaded run, and post-hoc scores on its trained head.

Thin functions over :class:`~openmer.inference.loaded.LoadedRun` (kept for callers of the module
``openmer.inference`` before it became a package).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from openmer.data.clips import ClipDataset
from openmer.inference.loaded import LoadedRun
from openmer.methods.base import OpenSetScores
from openmer.methods.threshold import Threshold

__all__ = ["method_batches", "posthoc_rescore", "score_clips"]


def score_clips(run: LoadedRun, clips: ClipDataset, *, batch_size: int | None = None,
                cache_dir: Path | None = None) -> OpenSetScores:
    """Scores of every clip: the method's own encoders for a method on clips, cached unprompted
    features for a method on features.

    A method on features, on a clip that lacks one of their modalities use the training mean for that block
    (a standardised zero, :func:`~openmer.data.feature_blocks.fill_absent_blocks`), with a warning;
    HCEP leaves the block out (``docs/interpretation.md``).
    """
    return run.score(clips, batch_size=batch_size, cache_dir=cache_dir)


def method_batches(run: LoadedRun, clips: ClipDataset, *, batch_size: int | None = None,
                   cache_dir: Path | None = None) -> list[dict[str, Any]]:
    """The batches the run's method reads for ``clips`` (:func:`openmer.methods.inputs.method_inputs`
    for its ``consumes``): media batches for a method on clips, batches of cached unprompted
    features for a method on features (see :func:`score_clips`); ``batch_size`` ``None``: the
    pipeline's scoring batch size."""
    return run.batches(clips, batch_size=batch_size, cache_dir=cache_dir)


def posthoc_rescore(run: LoadedRun, score: str, test: ClipDataset, train: ClipDataset, *,
                    cache_dir: Path | None = None) -> tuple[OpenSetScores, Threshold]:
    """The run's trained head scored with post-hoc score ``score`` instead of its own confidence,
    and the deployable threshold of that score: fitted and chosen on the run's training clips,
    at the run's acceptance, as ``openmer train`` chooses it (HCEP Sec. 4.4.6; never on test clips).

    Raises:
        ConfigError: an unknown score; NotSupportedError (a ConfigError): a method without a
            classifier head.
    """
    from openmer.methods.posthoc import fitted_score, head_outputs

    train_out = head_outputs(run.method, method_batches(run, train, cache_dir=cache_dir))
    fitted = fitted_score(run.method, score, train_out)
    test_out, _ = head_outputs(run.method, method_batches(run, test, cache_dir=cache_dir))
    conf = fitted(test_out).cpu()
    known = fitted(train_out[0]).cpu().numpy().astype(np.float64)
    threshold = Threshold.from_confidences(known, run.info.threshold.acceptance, "train")
    pred = test_out.logits.argmax(dim=1).cpu()
    return OpenSetScores(conf, pred, torch.softmax(test_out.logits.float(), dim=1).cpu()), threshold


