"""Training options (HCEP Sec. 4.1.4 defaults)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from openmer.config import OpenmerConfig


class TrainConfig(OpenmerConfig):
    """How a method is trained.

    The defaults are the paper's (HCEP Sec. 4.1.4): SGD with momentum 0.9, learning rate
    5e-4, multiplied by 0.1 every 30 epochs, 150 epochs. Benchmark presets that shorten this
    say so in their reports.

    Attributes:
        select_metric: model selection on the *validation* split (known classes only):
            ``"val_acc"`` (closed-set accuracy, ties broken by lower val loss),
            ``"val_balanced_acc"`` (the mean of the per-class recalls over the classes the
            validation clips have, ties broken the same way: a validation split with 1 clip of one
            class and 18 of another does not pick an epoch that predicts the majority class for
            every clip), ``"val_loss"``, or ``"last"`` (no selection). The test split is never
            seen during training.
        lr_scales: per parameter group of the method, a multiplier of ``lr`` (groups the method
            does not have are an error). Waveform samples, pixels and token embeddings live on
            different scales, so one learning rate rarely suits all of HCEP's prompts.
    """

    epochs: int = Field(default=150, gt=0)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(default=5e-4, gt=0)
    momentum: float = Field(default=0.9, ge=0)
    weight_decay: float = Field(default=0.0, ge=0)
    step_size: int = Field(default=30, gt=0)  # epochs between learning-rate decays
    gamma: float = Field(default=0.1, gt=0)
    batch_size: int = Field(default=32, gt=0)
    seed: int = 0
    select_metric: Literal["val_acc", "val_balanced_acc", "val_loss", "last"] = "val_acc"
    eval_every: int = Field(default=1, gt=0)
    num_workers: int = Field(default=0, ge=0)
    grad_clip: float | None = Field(default=None, gt=0)
    #: learning-rate multiplier per parameter group of the method
    #: (:meth:`~openmer.methods.base.OpenSetMethod.parameter_groups`), e.g. ``{"cuep": 30}``
    lr_scales: dict[str, float] = Field(default_factory=dict)
    #: "bf16": training forward passes under bf16 autocast (CPUs with AVX-512 BF16 / AMX, GPUs),
    #: through accelerate; "no" (default): float32
    mixed_precision: Literal["no", "bf16"] = "no"

    #: what a resumed run may change: the number of epochs (resume to train longer) and the
    #: data-loading workers (the same batches either way); anything else would continue the
    #: optimiser state, schedule and seeded shuffling of a training that is not the one recorded
    RESUME_MAY_CHANGE: ClassVar[frozenset[str]] = frozenset({"epochs", "num_workers"})

    def resume_differences(self, started: Mapping[str, Any]) -> list[str]:
        """How this config differs from ``started``, the config a checkpoint was written with.

        Args:
            started: the recorded ``to_dict()`` (a field it lacks, from an older openmer, counts
                as its default).

        Returns:
            ``["lr: 0.001 -> 0.01", ...]`` for each field outside :attr:`RESUME_MAY_CHANGE` that
            differs (empty: the run may resume).
        """
        recorded = {**type(self)().to_dict(), **dict(started)}
        out = []
        for name, value in self.to_dict().items():
            now = json.loads(json.dumps(value))
            if name not in self.RESUME_MAY_CHANGE and name != "schema_version" and recorded.get(name) != now:
                out.append(f"{name}: {json.dumps(recorded.get(name))} -> {json.dumps(now)}")
        return out
