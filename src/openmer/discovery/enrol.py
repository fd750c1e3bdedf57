"""``openmer enrol``: add a known class to a finished run from a few examples, without retraining.

The method declares which of its tensors are indexed by known class
(:meth:`OpenSetMethod.class_parameters <openmer.methods.base.OpenSetMethod.class_parameters>`:
HCEP's CUEP whole-input prompts, MSP's classifier row, ARPL's reciprocal point). Enrolment
(``docs/discover.md``, "Enrol"):

1. rebuilds the method with K + 1 classes (the new class last); every tensor is copied from the
   run, each class-indexed tensor gets a new row started at the mean of the K rows (HCEP's new
   class sentences "This video is {name}" / "... not {name}" come from the name itself);
2. tunes only the new rows (``steps`` Adam steps; every other value stays as trained) on the
   method's own loss of a batch of the run's training clips and a batch of the examples (new
   class index K), weighted K : 1 (class-balanced: the examples count as one class among K + 1),
   so the new class is learnt against the old ones it must not take;
3. refits what the method fits after training (:meth:`OpenSetMethod.finalize`, e.g. a post-hoc score);
4. recomputes the deployable threshold on the training clips and the examples (known-class data
   only, HCEP Sec. 4.4.6, at the run's acceptance);
5. writes a new run folder (:func:`openmer.runs.save_run`, the one format) whose ``run.json``
   records the enrolment (``enrolments``) and the examples (``samples["enrolled"]``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from openmer import __version__
from openmer.data.clips import ClipDataset, vision_preprocess
from openmer.data.manifest import Manifest
from openmer.discovery.core import training_manifest
from openmer.discovery.words import shared_word
from openmer.errors import ConfigError, NotSupportedError
from openmer.inference import LoadedRun
from openmer.methods.base import Batch, OpenSetMethod
from openmer.methods.inputs import method_inputs
from openmer.methods.threshold import Threshold
from openmer.runs import prepare_out, save_run

__all__ = ["Enrolment", "enrol", "enrol_method", "enrolled_method", "training_manifest"]

logger = logging.getLogger(__name__)


@dataclass
class Enrolment:
    """What :func:`enrol` did.

    Attributes:
        run_dir: the new run folder (``None`` when not written).
        method: the method with K + 1 classes.
        threshold: its new deployable threshold.
        record: the ``run.json`` ``enrolments`` entry.
        losses: the tuning loss per step.
    """

    run_dir: Path | None
    method: OpenSetMethod
    threshold: Threshold
    record: dict[str, Any]
    losses: list[float]


def enrolled_method(method: OpenSetMethod, name: str) -> tuple[OpenSetMethod, tuple[str, ...]]:
    """``method`` rebuilt with ``name`` as class K (every tensor copied; each class-indexed tensor
    gets row K = the mean of its K rows) and the names of the class-indexed tensors.

    Raises:
        NotSupportedError: the method declares no class-indexed tensors (``class_parameters() is None``).
    """
    params = method.class_parameters()
    if params is None:
        raise NotSupportedError(f"{method.name} cannot take a new class without retraining "
                                "(it declares no class-indexed tensors: OpenSetMethod.class_parameters)")
    encoders = method.input_encoders()
    kwargs: dict[str, Any] = {"encoders": encoders} if encoders else {}
    new = type(method).build(method.config, [*method.known_classes, name], extra=method.extra_state(), **kwargs)
    old = method.trainable_state_dict()
    state = {}
    k = method.num_classes
    for key, target in new.trainable_state_dict().items():
        if key in params:
            state[key] = torch.cat([old[key], old[key].mean(dim=0, keepdim=True)], dim=0)
        elif key in old and old[key].shape == target.shape:
            state[key] = old[key]
    new.load_state_dict(state, strict=False)
    new.mark_fitted()
    for key in params:
        if new.trainable_state_dict()[key].shape[0] != k + 1:
            raise ConfigError(f"{method.name}: class tensor {key} did not grow to {k + 1} rows")
    return new.eval(), params


def _inputs(run: LoadedRun, manifest: Manifest, labels: np.ndarray, method: OpenSetMethod,
            batch_size: int, cache_dir: Path | None) -> list[dict[str, Any]]:
    clips = ClipDataset(manifest, labels, run.modalities, vision_preprocess=vision_preprocess(run.encoders))
    return method_inputs(method.consumes, clips, run.encoders, cache_dir=cache_dir).batches(method, batch_size)


def _tune(method: OpenSetMethod, params: Sequence[str], train: Sequence[Batch], examples: Sequence[Batch],
          *, steps: int, lr: float, progress: Callable[[int, int, str], None] | None) -> list[float]:
    """Adam on row K of each class-indexed tensor only (the rest frozen); in training mode, as the
    method was trained (HCEP's class features carry gradients only then)."""
    named = dict(method.named_parameters())
    trainable = [named[p] for p in params if p in named]
    if not trainable or steps == 0:
        return []
    saved = {n: p.requires_grad for n, p in named.items()}
    for p in named.values():
        p.requires_grad_(False)
    for p in trainable:
        p.requires_grad_(True)
    k = method.num_classes - 1
    opt = torch.optim.Adam(trainable, lr=lr)
    losses = []
    method.train()
    method.hold_classes_fixed(k)  # the old classes' rows stay as trained: what depends on them is computed once
    try:
        for step in range(steps):
            opt.zero_grad()
            # class-balanced: the examples weigh as one class among K + 1 (as if the new class had as
            # many clips as an average old one), the training batch as the K others
            loss = (k * method.loss(train[step % len(train)]) + method.loss(examples[step % len(examples)])) / (k + 1)
            loss.backward()
            for p in trainable:
                if p.grad is not None:
                    p.grad[:k] = 0  # the old classes' rows stay as trained
            opt.step()
            losses.append(float(loss.detach()))
            if progress is not None:
                progress(step + 1, steps, "tuning the new class")
    finally:
        method.hold_classes_fixed(0)
        for n, p in named.items():
            p.requires_grad_(saved[n])
        method.eval()
    return losses


def enrol_method(method: OpenSetMethod, name: str, train: Sequence[Batch], examples: Sequence[Batch], *,
                 steps: int = 100, lr: float = 0.05, progress: Callable[[int, int, str], None] | None = None
                 ) -> tuple[OpenSetMethod, tuple[str, ...], list[float], np.ndarray]:
    """Steps 1-3 of the module docstring on batches the method reads.

    Args:
        method: the fitted method (K classes); left unchanged.
        name: the new class.
        train: batches of its training clips (labels 0..K-1).
        examples: batches of the new class's examples (label K).
        steps, lr: the tuning of the new rows.

    Returns:
        ``(new method, tuned tensor names, loss per step, (M,) confidences of train + examples)``:
        the confidences the deployable threshold is chosen from (step 4).

    Raises:
        NotSupportedError: the method cannot take a new class.
        ConfigError: no example batch.
    """
    if not examples or not train:
        raise ConfigError("enrolment needs batches of training clips and of examples")
    # every clip is encoded once (the encoders and sample prompts are frozen; only class rows change)
    train = [method.encode_samples_once(b) for b in train]
    examples = [method.encode_samples_once(b) for b in examples]
    new, params = enrolled_method(method, name)
    losses = _tune(new, params, train, examples, steps=steps, lr=lr, progress=progress)
    new.finalize([*train, *examples])
    new.eval()
    known_conf = new.score_all([*train, *examples]).confidence.double().numpy()
    return new, params, losses, known_conf


def enrol(run: LoadedRun, name: str, examples: Manifest, out: str | Path | None = None, *,
          train_data: str | Path | None = None, steps: int = 100, lr: float = 0.05, batch_size: int = 32,
          overwrite: bool = False, cache_dir: Path | None = None, source: str = "",
          progress: Callable[[int, int, str], None] | None = None) -> Enrolment:
    """Add class ``name`` to ``run`` from ``examples`` and write the new run folder ``out``.

    Args:
        run: the loaded run.
        name: the new class (must differ from the known classes, also through the shared vocabulary).
        examples: its example clips.
        out: the new run folder (``None``: nothing written).
        train_data: where the run's training clips are (default: the data the run records).
        steps, lr: the tuning of the new rows (0 steps: the new rows stay at the mean of the old).
        batch_size: training clips per step.
        overwrite: replace a run in ``out``.
        source: what the examples were (files, a cluster of a discovery...), recorded.

    Raises:
        ConfigError: ``name`` empty or already a known class, fewer than 1 example, bad options,
            or ``out`` holds a run (without ``overwrite``).
        NotSupportedError: the method cannot take a new class.
        DataError: the training clips cannot be found.
    """
    name = name.strip()
    if not name:
        raise ConfigError("the new class needs a name")
    if shared_word(name) in {shared_word(c) for c in run.known_classes}:
        raise ConfigError(f"{name!r} is already a known class of the run ({', '.join(run.known_classes)})")
    if len(examples) == 0:
        raise ConfigError("enrolment needs at least one example clip")
    if steps < 0 or lr <= 0 or batch_size < 1:
        raise ConfigError(f"steps must be >= 0, lr > 0 and batch_size >= 1; got {steps}, {lr}, {batch_size}")
    if out is not None:
        prepare_out(out, overwrite=overwrite)
    train_manifest, train_labels = training_manifest(run, train_data)
    order = np.random.default_rng(0).permutation(len(train_manifest))
    train_manifest, train_labels = train_manifest.subset(order.tolist()), train_labels[order]
    k = run.method.num_classes
    train = _inputs(run, train_manifest, train_labels, run.method, batch_size, cache_dir)
    ex = _inputs(run, examples, np.full(len(examples), k, dtype=np.int64), run.method, batch_size, cache_dir)
    method, params, losses, known_conf = enrol_method(run.method, name, train, ex, steps=steps, lr=lr,
                                                      progress=progress)
    threshold = Threshold.from_confidences(known_conf, run.info.threshold.acceptance, "train")
    method.threshold = threshold.value
    record = {"class": name, "n_examples": len(examples), "examples": examples.ids, "source": source,
              "tuned": list(params), "steps": steps, "lr": lr, "batch_size": batch_size,
              "final_loss": losses[-1] if losses else None, "from_run": str(run.run_dir),
              "threshold_before": run.threshold, "threshold_after": threshold.value, "openmer_version": __version__}
    written = None
    if out is not None:
        info = run.info.model_copy(update={
            "known_classes": method.known_classes, "method_extra": method.extra_state(), "threshold": threshold,
            "samples": {**run.info.samples, "enrolled": [*run.info.samples.get("enrolled", []), *examples.ids]},
            "enrolments": [*run.info.enrolments, record]})
        written = save_run(out, method, info)
    return Enrolment(written, method, threshold, record, losses)
