"""The training loop, on Hugging Face accelerate.

Why accelerate: the same loop runs on this CPU, on one GPU and data-parallel on several GPUs or
nodes (``accelerate launch -m openmer train ...``) without code changes, and it leaves the loop
itself readable (no callbacks framework). See ``docs/training.md``.

What the loop guarantees:

- only parameters with ``requires_grad`` are optimised (prompts, projections, reciprocal points,
  heads); frozen encoders never change;
- model selection uses the validation data only (known classes), never the test data;
- ``run_dir`` receives the last state after every epoch, written atomically (temporary name then
  rename): ``last/model.safetensors`` + ``last/trainer_state.pt`` (optimizer, scheduler, epoch,
  best state, history); ``resume=True`` continues from it and gives the same result as an
  uninterrupted run, because every epoch's shuffling and dropout are seeded from
  ``(seed, epoch)`` alone;
- hooks: ``method.on_epoch_start(epoch, epochs)`` before each epoch, and
  ``method.finalize(train)`` once at the end, in eval mode, after the selected weights are loaded;
- a NaN/inf loss stops training with :class:`~openmer.errors.TrainingError` naming epoch and step;
  the last completed epoch stays on disk for ``--resume``.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from openmer.errors import CheckpointError, TrainingError
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


def make_optimizer(params: list[torch.nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD with momentum (paper) or Adam, over the trainable parameters."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


@torch.no_grad()
def evaluate_known(method: Any, batches: Iterable[Any]) -> dict[str, float]:
    """Validation on known-class data: loss, closed-set accuracy, mean confidence.

    When the batches contain unknown samples (label < 0), AUROC and OSCR are added.
    """
    from openmer.metrics import auroc, oscr

    method.eval()
    losses, confs, preds, labels = [], [], [], []
    for b in batches:
        y = torch.as_tensor(b["label"])
        known = y >= 0
        if known.any():
            kb = {k: (v[known] if isinstance(v, torch.Tensor) and v.shape[:1] == y.shape else
                      [x for x, m in zip(v, known.tolist(), strict=True) if m] if isinstance(v, list) else v)
                  for k, v in b.items()}
            losses.append(float(method.loss(kb)) * int(known.sum()))
        s = method.score(b)
        confs.append(s.confidence.cpu())
        preds.append(s.prediction.cpu())
        labels.append(y.cpu())
    conf, pred, lab = torch.cat(confs).numpy(), torch.cat(preds).numpy(), torch.cat(labels).numpy()
    k = lab >= 0
    out = {
        "val_loss": sum(losses) / max(int(k.sum()), 1),
        "val_acc": float((pred[k] == lab[k]).mean()) if k.any() else float("nan"),
        "val_confidence": float(conf[k].mean()) if k.any() else float("nan"),
    }
    if k.any() and (~k).any():
        out["val_auroc"] = auroc(conf, lab)
        out["val_oscr"] = oscr(conf, pred, lab, num_classes=method.num_classes)
    return out


def _is_better(metrics: dict[str, float], best: dict[str, float] | None, select: str) -> bool:
    if best is None or select == "last":
        return True
    if select == "val_loss":
        return metrics["val_loss"] < best["val_loss"]
    return (metrics["val_acc"], -metrics["val_loss"]) > (best["val_acc"], -best["val_loss"])


def _save_last(run_dir: Path, method: Any, state: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    last = run_dir / "last"
    last.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in method.trainable_state_dict().items()}
    save_file(tensors, str(last / "model.safetensors.tmp"))
    torch.save(state, last / "trainer_state.pt.tmp")
    (last / "model.safetensors.tmp").replace(last / "model.safetensors")
    (last / "trainer_state.pt.tmp").replace(last / "trainer_state.pt")


def _load_last(run_dir: Path, method: Any) -> dict[str, Any]:
    from safetensors.torch import load_file

    last = run_dir / "last"
    if not (last / "trainer_state.pt").is_file() or not (last / "model.safetensors").is_file():
        raise CheckpointError(f"{last}: no checkpoint to resume from (expected model.safetensors and trainer_state.pt)")
    method.load_state_dict(load_file(str(last / "model.safetensors")), strict=False)
    return torch.load(last / "trainer_state.pt", weights_only=False)


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
) -> TrainResult:
    """Train ``method`` on ``train`` and select the best epoch on ``val``.

    Args:
        method: an :class:`~openmer.methods.base.OpenSetMethod`.
        train: a ``torch.utils.data.Dataset`` of sample dicts (batched here, reshuffled each
            epoch with a generator seeded from ``(cfg.seed, epoch)``), or an iterable of batches.
        val: the same kinds, known classes only (or ``None``: the last epoch is kept).
        cfg: :class:`TrainConfig` (paper defaults).
        run_dir: where the per-epoch ``last/`` checkpoint and ``metrics.json`` go (optional).
        resume: continue from ``run_dir/last``.
        progress: called after each epoch as ``progress(epoch, epochs, status)``.
        accelerator: an ``accelerate.Accelerator`` (one is made when ``None``).

    Returns:
        :class:`TrainResult`; ``method`` holds the selected weights and is marked fitted.

    Raises:
        TrainingError: a NaN/inf loss (the message names epoch and step) or no trainable parameter.
        CheckpointError: ``resume`` without a checkpoint.
    """
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, set_seed

    cfg = cfg or TrainConfig()
    if accelerator is None:
        # cpu=True without CUDA makes a multi-process launch (torchrun / accelerate launch) use gloo.
        # split_batches: the global batch is cfg.batch_size whatever the number of processes.
        accelerator = Accelerator(cpu=not torch.cuda.is_available(),
                                  dataloader_config=DataLoaderConfiguration(split_batches=True))
    run_dir = Path(run_dir) if run_dir is not None else None
    set_seed(cfg.seed)
    method.to(accelerator.device)
    method.setup(_loader(train, cfg, 0, shuffle=False))
    params = [p for p in method.parameters() if p.requires_grad]
    if not params:
        raise TrainingError(f"{type(method).__name__} has no trainable parameter")
    optimizer = make_optimizer(params, cfg)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    model, optimizer = accelerator.prepare(method, optimizer)

    start_epoch, history, best, best_state, best_epoch = 0, [], None, None, -1
    if resume:
        if run_dir is None:
            raise CheckpointError("resume needs a run directory")
        state = _load_last(run_dir, method)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, history = state["epoch"] + 1, state["history"]
        best, best_state, best_epoch = state["best"], state["best_state"], state["best_epoch"]
        logger.info("resuming %s at epoch %d", run_dir, start_epoch)

    for epoch in range(start_epoch, cfg.epochs):
        set_seed(cfg.seed * 1000 + epoch)
        method.on_epoch_start(epoch, cfg.epochs)
        model.train()
        total, n = 0.0, 0
        loader = accelerator.prepare_data_loader(_loader(train, cfg, epoch, shuffle=True)) \
            if isinstance(train, Dataset) else train
        for step, batch in enumerate(loader):
            loss = model(batch)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"training loss is {float(loss.detach())} at epoch {epoch + 1}, step {step + 1}; "
                    "stopped (the last finished epoch is kept for --resume). Lower the learning rate or check the inputs."
                )
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            if cfg.grad_clip is not None:
                accelerator.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            total += float(loss.detach())
            n += 1
        scheduler.step()
        status: dict[str, float] = {"epoch": epoch + 1, "train_loss": total / max(n, 1), "lr": optimizer.param_groups[0]["lr"]}
        if val is not None and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs):
            status.update(evaluate_known(method, _loader(val, cfg, None, shuffle=False)))
            if _is_better(status, best, cfg.select_metric):
                best, best_epoch = dict(status), epoch + 1
                best_state = copy.deepcopy(method.trainable_state_dict())
        elif val is None:
            best, best_epoch, best_state = dict(status), epoch + 1, None
        history.append(status)
        if run_dir is not None and accelerator.is_main_process:
            _save_last(run_dir, method, {
                "epoch": epoch, "history": history, "best": best, "best_state": best_state, "best_epoch": best_epoch,
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "config": cfg.to_dict(),
            })
        if progress is not None:
            progress(epoch + 1, cfg.epochs, status)

    if best_state is not None:
        method.load_state_dict(best_state, strict=False)
    method.eval()
    method.finalize(_loader(train, cfg, 0, shuffle=False))
    method.mark_fitted()
    if run_dir is not None and accelerator.is_main_process:
        (run_dir / "metrics.json").write_text(json.dumps(
            {"select_metric": cfg.select_metric, "best_epoch": best_epoch, "history": history},
            indent=2, default=lambda x: None if isinstance(x, float) and math.isnan(x) else x) + "\n")
    accelerator.wait_for_everyone()
    return TrainResult(best_epoch=best_epoch, history=history, select_metric=cfg.select_metric)
