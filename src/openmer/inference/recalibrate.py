"""Threshold recalibration for a new recording environment, without unknown-class data.

A deployed run accepts a clip as known when its confidence reaches the threshold chosen on clean
known-class clips at acceptance ``a`` (HCEP Sec. 4.4.6; ``run.json``'s ``threshold``). In a noisy
room, over a phone line or after a codec, every confidence shifts, and the same threshold flags
many more known clips as unknown (``openmer benchmark robustness``'s ``fpr_at_threshold``).

The rule (:func:`recalibrated_threshold`): re-choose the threshold at the *same acceptance* ``a``
on the confidences of a few minutes of speech recorded in the new environment, with
:func:`openmer.methods.threshold.choose_threshold`, nothing else of the model changed.

What it assumes:

- ``known`` (default): the new clips are of the known classes (labelled, or known to be e.g.
  neutral/everyday speech of the known emotions); clips labelled with another class are left out.
  Then the known-class acceptance in the new room is ``a`` again, as it was on clean data.
- ``unlabeled``: every new clip is used. This assumes unknown classes are rare in it: with a share
  ``u`` of unknown clips, the rule accepts about ``a`` of a mix and so sets the threshold a little
  lower than on known clips alone (fewer unknowns are caught); keep ``u`` small.
- Either way the new clips must come from the new environment, not from the test speakers' test
  clips, and the corruption must shift known and unknown confidences alike; recalibration restores
  the rate of false alarms, it cannot restore a ranking (AUROC) the corruption destroyed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from openmer.errors import DataError
from openmer.inference.loaded import LoadedRun, load_run
from openmer.methods.threshold import Threshold

#: which clips of the new environment the threshold is re-chosen on (module docstring)
RecalibrationClips = Literal["known", "unlabeled"]


def recalibrated_threshold(deployed: Threshold, confidence: np.ndarray, *, what: str = "") -> Threshold:
    """``deployed``'s rule on new-environment confidences: the threshold accepting
    ``deployed.acceptance`` of ``confidence`` (N,), same source word, the rule saying what changed.

    Raises:
        ValueError: no confidence or a non-finite one.
    """
    conf = np.asarray(confidence, dtype=np.float64)
    if conf.size == 0:
        raise ValueError("recalibration needs at least one clip from the new environment")
    new = Threshold.from_confidences(conf, deployed.acceptance, deployed.source)
    rule = (f"recalibrated at acceptance {deployed.acceptance:g} on {conf.size} clip(s) of the new environment"
            f"{' (' + what + ')' if what else ''}; was {deployed.value:.6g} ({deployed.rule or 'as trained'})")
    return new.model_copy(update={"rule": rule})


@dataclass(frozen=True)
class Recalibration:
    """What :func:`recalibrate` did: the new threshold, the old, the clips used, the folder written."""

    threshold: Threshold
    before: float
    n_clips: int
    run_dir: Path | None


def recalibrate(run: LoadedRun | str | Path, data: str | Path, out: str | Path | None = None, *,
                clips: RecalibrationClips = "known", overwrite: bool = False,
                allow_outside_root: bool = False) -> Recalibration:
    """Re-choose ``run``'s threshold on the clips of ``data`` (the new environment) and write the
    run with it to ``out`` (``None``: nothing written). Module docstring: the rule and its assumptions.

    Args:
        data: a manifest file or ``NAME=PATH`` / a built-in dataset name (every row is used).
        clips: ``"known"``: only rows labelled with a known class; ``"unlabeled"``: every row.

    Raises:
        DataError: no usable clip in ``data``; ConfigError: ``out`` holds a run (without ``overwrite``);
        CheckpointError: as :func:`~openmer.inference.loaded.load_run`.
    """
    from openmer.datasets.registry import resolve_data
    from openmer.runs import prepare_out, save_run

    loaded = run if isinstance(run, LoadedRun) else load_run(run)
    manifest, _ = resolve_data(data, allow_outside_root=allow_outside_root)
    known = set(loaded.known_classes)
    if clips == "known":
        manifest = manifest.subset([i for i, s in enumerate(manifest) if s.label in known])
    if len(manifest) == 0:
        raise DataError(data, "no clip of the new environment to recalibrate on"
                        + (" (no row labelled with a known class; use unlabeled clips)" if clips == "known" else ""))
    if out is not None:
        prepare_out(out, overwrite=overwrite)
    conf = loaded.score(loaded.clips(manifest, [-1] * len(manifest))).confidence.numpy()
    threshold = recalibrated_threshold(loaded.info.threshold, conf, what=f"{clips} clips of {data}")
    written = None
    if out is not None:
        loaded.method.threshold = threshold.value
        written = save_run(out, loaded.method, loaded.info.model_copy(update={"threshold": threshold}))
    return Recalibration(threshold, loaded.threshold, len(manifest), written)
