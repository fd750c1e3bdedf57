"""The training loop, on Hugging Face accelerate.

Why accelerate: the same loop runs on this CPU, on one GPU and data-parallel on several GPUs or
nodes (``accelerate launch -m openmer train ...``) without code changes, and it leaves the loop
itself readable (no callbacks framework). See ``docs/training.md``.

What the loop guarantees:

- only parameters with ``requires_grad`` are optimised (prompts, projections, reciprocal points,
  heads); frozen encoders never change;
- model selection uses the validation data only (known classes), never the test data;
- ``run_dir`` receives a checkpoint after every epoch, one unit written by
  :func:`openmer.runs.save_last` (a folder ``last/epoch-NNNN/`` renamed into place, then the
  pointer ``last/latest`` switched): the method's tensors, the trainer state (optimizer,
  scheduler, epoch, best state, history, training config) as safetensors + JSON (nothing
  pickled), and what defines the run. A kill at any moment leaves one whole checkpoint; a full
  disk or read-only folder is one :class:`~openmer.errors.OutputError` naming ``last/`` and the
  checkpoint kept. ``resume=True`` refuses a checkpoint of another run (naming the field that
  differs) or of other training settings (every :class:`TrainConfig` field but ``epochs`` and
  ``num_workers``, listed), then continues and gives the same result as an uninterrupted run,
  because every epoch's shuffling and dropout are seeded from ``(seed, epoch)`` alone;
- a training set with ``start_epoch(epoch)`` (on-the-fly augmentation, :class:`openmer.data.augment.AugmentedClips`)
  is told the epoch before each one, so a resumed run draws the same (not ``set_epoch``: accelerate's
  data loader calls a dataset's ``set_epoch`` with its own count, 0 for a loader made per epoch);
- hooks: ``method.on_epoch_start(epoch, epochs)`` before each epoch,
  ``method.before_optimizer_step()`` after each backward pass and gradient clipping (HESP's
  normalised-gradient prompt steps), ``method.on_epoch_end(epoch, epochs)`` after each epoch's
  last step, before validation (Open-VCLIP's weight averaging), and ``method.finalize(train)``
  once at the end, in eval mode, after the selected weights are loaded;
- a NaN/inf loss stops training with :class:`~openmer.errors.TrainingError` naming epoch and step;
  the last completed epoch stays on disk for ``--resume``.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from openmer.errors import CheckpointError, ConfigError, TrainingError
from openmer.methods.base import LossOutput
from openmer.training.config import TrainConfig

logger = logging.getLogger(__name__)

#: ``callback(epoch, total_epochs, status)``, called after each epoch
ProgressFn = Callable[[int, int, dict[str, float]], None]


@dataclass
class TrainResult:
    """What :func:`fit` returns."""

    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    select_metric: str = "val_acc"


def _loader(data: Any, cfg: TrainConfig, epoch: int | None, shuffle: bool) -> Iterable[Any]:
    """A DataLoader over a Dataset (seeded per epoch), or the iterable itself."""
    if not isinstance(data, Dataset):
        return data
    gen = torch.Generator().manual_seed(cfg.seed * 100_003 + (epoch or 0))
    collate = getattr(data, "collate_fn", default_collate)
    return DataLoader(data, batch_size=cfg.batch_size, shuffle=shuffle, generator=gen,
                      num_workers=cfg.num_workers, collate_fn=collate)


def make_optimizer(params: list[torch.nn.Parameter] | dict[str, list[torch.nn.Parameter]],
                   cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD with momentum (paper) or Adam, over the trainable parameters.

    Args:
        params: a list of parameters, or parameter groups by name (one optimiser group each, with
            learning rate ``cfg.lr * cfg.lr_scales.get(name, 1)``).

    Raises:
        ConfigError: ``cfg.lr_scales`` names a group that ``params`` does not have.
    """
    groups = params if isinstance(params, dict) else {"all": list(params)}
    unknown = sorted(set(cfg.lr_scales) - set(groups))
    if unknown:
        raise ConfigError(f"lr_scales names parameter group(s) {unknown}; the method's groups are {sorted(groups)}")
    param_groups = [{"params": ps, "lr": cfg.lr * cfg.lr_scales.get(name, 1.0), "name": name}
                    for name, ps in groups.items() if ps]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(param_groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(param_groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _trainable_groups(method: Any) -> dict[str, list[torch.nn.Parameter]]:
    """The method's parameter groups, checked to cover every trainable parameter exactly once."""
    groups = {name: [p for p in ps if p.requires_grad] for name, ps in method.parameter_groups().items()}
    seen = [id(p) for ps in groups.values() for p in ps]
    trainable = {id(p) for p in method.parameters() if p.requires_grad}
    if len(seen) != len(set(seen)) or set(seen) != trainable:
        raise TrainingError(
            f"{type(method).__name__}.parameter_groups() must hold every trainable parameter exactly once")
    return {name: ps for name, ps in groups.items() if ps}


#: a validation run is reported as collapsed when one class takes more than this fraction of the
#: predictions, or when the mean confidence is below 1/K + NEAR_UNIFORM_MARGIN
COLLAPSE_MAJORITY = 0.9
NEAR_UNIFORM_MARGIN = 0.1


def collapse_warning(status: dict[str, float], num_classes: int) -> str | None:
    """Why a validation result looks collapsed (one class, or near-uniform probabilities), or ``None``.

    The near-uniform check reads ``val_max_probability`` (mean largest class probability), not
    the confidence: a method's confidence need not be a probability (ARPL's logits, CPN*'s
    one-versus-all score); without probabilities it is skipped.
    """
    reasons = []
    majority = status.get("val_majority_fraction")
    if majority is not None and majority > COLLAPSE_MAJORITY:
        reasons.append(f"one class takes {majority:.0%} of the validation predictions")
    top = status.get("val_max_probability")
    if top is not None and top < 1.0 / num_classes + NEAR_UNIFORM_MARGIN:
        reasons.append(f"near-uniform probabilities (mean largest probability {top:.3f}, "
                       f"chance {1.0 / num_classes:.3f})")
    return "; ".join(reasons) or None


@torch.no_grad()
def evaluate_known(method: Any, batches: Iterable[Any]) -> dict[str, float]:
    """Validation on known-class data: loss, closed-set accuracy, mean confidence.

    When the batches contain unknown samples (label < 0), AUROC and OSCR are added.
    """
    from openmer.metrics import auroc, oscr

    method.eval()
    losses, confs, preds, labels, probs = [], [], [], [], []
    for b in batches:
        y = torch.as_tensor(b["label"])
        loss, s = method.evaluate_batch(b)
        if loss is not None:
            losses.append(float(loss) * int((y >= 0).sum()))
        probs.append(None if s.probabilities is None else s.probabilities.cpu())
        confs.append(s.confidence.cpu())
        preds.append(s.prediction.cpu())
        labels.append(y.cpu())
    conf, pred, lab = torch.cat(confs).numpy(), torch.cat(preds).numpy(), torch.cat(labels).numpy()
    k = lab >= 0
    out = {
        "val_loss": sum(losses) / max(int(k.sum()), 1),
        "val_acc": float((pred[k] == lab[k]).mean()) if k.any() else float("nan"),
        # mean recall over the classes the validation clips have (1 clip of a class counts as much as 30)
        "val_balanced_acc": (float(np.mean([(pred[lab == c] == c).mean() for c in np.unique(lab[k])]))
                             if k.any() else float("nan")),
        "val_confidence": float(conf[k].mean()) if k.any() else float("nan"),
    }
    if k.any():
        out["val_majority_fraction"] = float(np.bincount(pred[k], minlength=method.num_classes).max() / k.sum())
        known_probs = [p for p in probs if p is not None]
        if probs and len(known_probs) == len(probs):
            # spread of the logits the probabilities come from: log p_max - log p_min per sample
            p = torch.cat(known_probs).numpy()[k]
            out["val_max_probability"] = float(p.max(1).mean())
            logp = np.log(np.clip(p, 1e-30, None))
            out["val_logit_spread"] = float((logp.max(1) - logp.min(1)).mean())
    if k.any() and (~k).any():
        out["val_auroc"] = auroc(conf, lab)
        out["val_oscr"] = oscr(conf, pred, lab, num_classes=method.num_classes)
    return out


def _total_loss(out: Any) -> torch.Tensor:
    """The scalar loss of what a method's forward returned (a :class:`LossOutput` or a tensor)."""
    return out.total if isinstance(out, LossOutput) else out


def _is_better(metrics: dict[str, float], best: dict[str, float] | None, select: str) -> bool:
    if best is None or select == "last":
        return True
    if select == "val_loss":
        return metrics["val_loss"] < best["val_loss"]
    return (metrics[select], -metrics["val_loss"]) > (best[select], -best["val_loss"])


def fit(
    method: Any,
    train: Any,
    val: Any = None,
    cfg: TrainConfig | None = None,
    *,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: ProgressFn | None = None,
    accelerator: Any = None,
    identity: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train ``method`` on ``train`` and select the best epoch on ``val``.

    Args:
        method: an :class:`~openmer.methods.base.OpenSetMethod`.
        train: a ``torch.utils.data.Dataset`` of sample dicts (batched here, reshuffled each
            epoch with a generator seeded from ``(cfg.seed, epoch)``), or an iterable of batches.
        val: the same kinds, known classes only (or ``None``: the last epoch is kept).
        cfg: :class:`TrainConfig` (paper defaults).
        run_dir: where the per-epoch ``last/`` checkpoint and ``metrics.json`` go (optional).
        resume: continue from the newest complete checkpoint in ``run_dir/last`` (with the same
            ``cfg`` but for ``epochs`` and ``num_workers``).
        progress: called after each epoch as ``progress(epoch, epochs, status)``.
        accelerator: an ``accelerate.Accelerator`` (one is made when ``None``).
        identity: what else defines the run besides the method (e.g. ``profile``, ``data``),
            stored in ``last/`` and compared on ``resume``.

    Returns:
        :class:`TrainResult`; ``method`` holds the selected weights and is marked fitted.

    Raises:
        TrainingError: a NaN/inf loss (the message names epoch and step) or no trainable parameter.
        CheckpointError: ``resume`` without a checkpoint, with a pickled one (refused unread),
            or with one of another run (another method, known classes, class order, config or
            ``identity`` field; the message names it) or of other training settings (listed).
        OutputError: the checkpoint cannot be written (the message names ``last/``, the file and
            the checkpoint kept).
    """
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, set_seed

    from openmer.runs import load_last, method_identity, save_last, save_metrics

    cfg = cfg or TrainConfig()
    if accelerator is None:
        # cpu=True without CUDA makes a multi-process launch (torchrun / accelerate launch) use gloo.
        # split_batches: the global batch is cfg.batch_size whatever the number of processes.
        accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=cfg.mixed_precision,
                                  dataloader_config=DataLoaderConfiguration(split_batches=True))
    run_dir = Path(run_dir) if run_dir is not None else None
    set_seed(cfg.seed)
    method.to(accelerator.device)
    method.setup(_loader(train, cfg, 0, shuffle=False))
    groups = _trainable_groups(method)
    params = [p for ps in groups.values() for p in ps]
    if not params:
        raise TrainingError(f"{type(method).__name__} has no trainable parameter")
    optimizer = make_optimizer(groups, cfg)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    model, optimizer = accelerator.prepare(method, optimizer)
    run_identity = {**method_identity(method), **dict(identity or {})}

    start_epoch, history, best, best_state, best_epoch = 0, [], None, None, -1
    if resume:
        if run_dir is None:
            raise CheckpointError("resume needs a run directory")
        state = load_last(run_dir, method, run_identity, cfg)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, history = state["epoch"] + 1, state["history"]
        best, best_state, best_epoch = state["best"], state["best_state"], state["best_epoch"]
        logger.info("resuming %s at epoch %d", run_dir, start_epoch)

    tell_epoch = getattr(train, "start_epoch", None)  # a training set drawn anew each epoch (module docstring)
    for epoch in range(start_epoch, cfg.epochs):
        set_seed(cfg.seed * 1000 + epoch)
        if tell_epoch is not None:
            tell_epoch(epoch)
        method.on_epoch_start(epoch, cfg.epochs)
        model.train()
        sums: dict[str, float] = {}
        n, correct, seen = 0, 0, 0
        loader = accelerator.prepare_data_loader(_loader(train, cfg, epoch, shuffle=True)) \
            if isinstance(train, Dataset) else train
        for step, batch in enumerate(loader):
            out = model(batch)
            loss = _total_loss(out)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"training loss is {float(loss.detach())} at epoch {epoch + 1}, step {step + 1}; "
                    "stopped (the last finished epoch is kept). Check the inputs, or lower the learning rate "
                    "(a new run: --overwrite; --resume continues with the same settings)."
                )
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            for name, ps in groups.items():  # gradient norm of each parameter group, before clipping
                sq = sum(float(p.grad.detach().pow(2).sum()) for p in ps if p.grad is not None)
                sums[f"grad_norm_{name}"] = sums.get(f"grad_norm_{name}", 0.0) + math.sqrt(sq)
            if cfg.grad_clip is not None:
                accelerator.clip_grad_norm_(params, cfg.grad_clip)
            method.before_optimizer_step()
            optimizer.step()
            sums["train_loss"] = sums.get("train_loss", 0.0) + float(loss.detach())
            if isinstance(out, LossOutput):
                if len(out.terms) > 1:
                    for term, value in out.terms.items():
                        sums[term] = sums.get(term, 0.0) + float(value.detach())
                if out.logits is not None:
                    y = torch.as_tensor(batch["label"], device=out.logits.device)
                    correct += int((out.logits.detach().argmax(1) == y).sum())
                    seen += len(y)
            n += 1
        scheduler.step()
        method.on_epoch_end(epoch, cfg.epochs)
        status: dict[str, float] = {"epoch": epoch + 1, **{k: v / max(n, 1) for k, v in sums.items()},
                                    "lr": optimizer.param_groups[0]["lr"]}
        if seen:
            status["train_acc"] = correct / seen
        if val is not None and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs):
            status.update(evaluate_known(method, _loader(val, cfg, None, shuffle=False)))
            status.update(method.diagnostics())
            warning = collapse_warning(status, method.num_classes)
            if warning:
                status["collapsed"] = 1.0
                logger.warning("%s epoch %d looks collapsed: %s", type(method).__name__, epoch + 1, warning)
            if _is_better(status, best, cfg.select_metric):
                best, best_epoch = dict(status), epoch + 1
                best_state = copy.deepcopy(method.trainable_state_dict())
        elif val is None:
            best, best_epoch, best_state = dict(status), epoch + 1, None
        history.append(status)
        if run_dir is not None and accelerator.is_main_process:
            save_last(run_dir, method, {
                "epoch": epoch, "history": history, "best": best, "best_state": best_state, "best_epoch": best_epoch,
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "config": cfg.to_dict(),
            }, run_identity)
        if progress is not None:
            progress(epoch + 1, cfg.epochs, status)

    if best_state is not None:
        method.load_state_dict(best_state, strict=False)
    method.eval()
    method.finalize(_loader(train, cfg, 0, shuffle=False))
    method.mark_fitted()
    if run_dir is not None and accelerator.is_main_process:
        save_metrics(run_dir, cfg.select_metric, best_epoch, history)
    accelerator.wait_for_everyone()
    return TrainResult(best_epoch=best_epoch, history=history, select_metric=cfg.select_metric)
