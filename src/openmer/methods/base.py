"""The one interface every open-set method implements.

Modelled on pytorch-ood's ``Detector`` and OpenOOD's ``(pred, conf)`` pair:

- a method is an ``nn.Module`` built from a :class:`MethodConfig` and the ordered
  ``known_classes`` (class index ``k`` = ``known_classes[k]``);
- :meth:`OpenSetMethod.loss` gives the training loss of a batch (the engine calls it), and the
  engine's hooks :meth:`OpenSetMethod.on_epoch_start` (schedules inside a loss, e.g. CPN's
  temperature warm-up) and :meth:`OpenSetMethod.finalize` (statistics of the trained model on
  the training data, e.g. LPL's logit prototypes, post-hoc score fits) let a method do more
  without a second loop;
- :meth:`OpenSetMethod.score` gives :class:`OpenSetScores`: ``confidence`` (higher = more
  likely a known class) and ``prediction`` (a known-class index), without gradients;
- :meth:`OpenSetMethod.fit` trains with :func:`openmer.training.fit` and returns ``self``;
- :meth:`OpenSetMethod.save` / :meth:`OpenSetMethod.load` round-trip through a run folder
  (``config.json`` + ``model.safetensors``), like transformers' ``save_pretrained`` /
  ``from_pretrained``. Frozen encoders are referenced by their profile, never copied.

A *batch* is a ``dict``: modality keys (``"video"``, ``"audio"``, ``"text"``, or
``"features"`` for precomputed feature vectors) and ``"label"`` ((B,) int64, ``-1`` =
unknown). A missing modality key means the modality is absent.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Self

import torch
from torch import Tensor, nn

from openmer import __version__
from openmer.config import OpenmerConfig
from openmer.errors import CheckpointError, ConfigError, NotFittedError

Batch = Mapping[str, Any]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class OpenSetScores(NamedTuple):
    """Scores of N samples.

    Attributes:
        confidence: (N,) float, higher = more likely a known class.
        prediction: (N,) int64 index into ``known_classes``.
        probabilities: (N, K) class probabilities, or ``None`` when the method has none.
    """

    confidence: Tensor
    prediction: Tensor
    probabilities: Tensor | None = None


class MethodConfig(OpenmerConfig):
    """Base of every method's configuration; ``method`` names the registered method."""

    method: str


class OpenSetMethod(nn.Module, ABC):
    """Base class of the open-set methods (see the module docstring)."""

    name: ClassVar[str]
    config_class: ClassVar[type[MethodConfig]]
    #: what the method reads: ``"clips"`` (media batches through encoders it holds) or
    #: ``"features"`` (cached encoder features, ``batch["features"]``); benchmarks read this
    consumes: ClassVar[str] = "clips"

    def __init__(self, config: MethodConfig, known_classes: Sequence[str]):
        super().__init__()
        if len(known_classes) < 2:
            raise ConfigError(f"an open-set method needs at least 2 known classes, got {list(known_classes)}")
        if len(set(known_classes)) != len(known_classes):
            raise ConfigError(f"known classes must be distinct: {list(known_classes)}")
        self.config = config
        self.known_classes = list(known_classes)
        self.register_buffer("_fitted", torch.zeros((), dtype=torch.bool))
        #: deployable threshold on ``confidence`` (HCEP Sec. 4.4.6); ``None`` until chosen
        self.threshold: float | None = None

    @property
    def num_classes(self) -> int:
        return len(self.known_classes)

    @property
    def is_fitted(self) -> bool:
        return bool(self._fitted)

    def mark_fitted(self) -> None:
        self._fitted.fill_(True)

    def check_fitted(self) -> None:
        """Raises: NotFittedError: the method was neither fitted nor loaded."""
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} must be fitted (or loaded) before scoring")

    # ---------------------------------------------------------------- training
    def setup(self, train: Iterable[Batch]) -> None:
        """Hook run once before training with the training data (e.g. feature statistics)."""

    def on_epoch_start(self, epoch: int, num_epochs: int) -> None:
        """Hook run by the engine before each training epoch (``epoch`` counts from 0)."""

    def finalize(self, train: Iterable[Batch]) -> None:
        """Hook run by the engine once after training, on the training data, once the selected
        epoch's weights are loaded. State it computes must live in buffers, so that it is saved."""

    @abstractmethod
    def loss(self, batch: Batch) -> Tensor:
        """Scalar training loss of a batch of known-class samples."""

    @abstractmethod
    def score(self, batch: Batch) -> OpenSetScores:
        """Open-set scores of a batch (no gradients, eval mode)."""

    def fit(self, train: Iterable[Batch], val: Iterable[Batch] | None = None, train_config: Any = None, **kwargs: Any) -> Self:
        """Train on known-class data, selecting on ``val`` only; returns ``self``.

        See :func:`openmer.training.fit` for ``train_config`` and keyword arguments.
        """
        from openmer.training import TrainConfig, fit

        fit(self, train, val, train_config or TrainConfig(), **kwargs)
        return self

    @torch.no_grad()
    def score_all(self, batches: Iterable[Batch]) -> OpenSetScores:
        """:meth:`score` over several batches, concatenated (on CPU)."""
        self.check_fitted()
        was_training = self.training
        self.eval()
        parts = [self.score(b) for b in batches]
        self.train(was_training)
        probs = [p.probabilities for p in parts]
        return OpenSetScores(
            torch.cat([p.confidence.cpu() for p in parts]),
            torch.cat([p.prediction.cpu() for p in parts]),
            None if any(p is None for p in probs) else torch.cat([p.cpu() for p in probs]),
        )

    # ---------------------------------------------------------------- persistence
    def trainable_state_dict(self) -> dict[str, Tensor]:
        """The tensors that define a fitted method: everything except frozen encoders."""
        frozen = {f"{n}." for n, m in self.named_modules() if getattr(m, "_openmer_frozen", False)}
        return {k: v for k, v in self.state_dict().items() if not any(k.startswith(p) for p in frozen)}

    def extra_state(self) -> dict[str, Any]:
        """JSON-serialisable state stored beside the config (override to add more)."""
        return {}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`extra_state`."""

    def save(self, run_dir: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``run_dir`` (atomically)."""
        from safetensors.torch import save_file

        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        meta = {
            "openmer_version": __version__,
            "method": self.name,
            "config": self.config.to_dict(),
            "known_classes": self.known_classes,
            "threshold": self.threshold,
            "extra": self.extra_state(),
        }
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.trainable_state_dict().items()}
        tmp = run_dir / (WEIGHTS_FILE + ".tmp")
        save_file(tensors, str(tmp))
        tmp.replace(run_dir / WEIGHTS_FILE)
        tmpc = run_dir / (CONFIG_FILE + ".tmp")
        tmpc.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmpc.replace(run_dir / CONFIG_FILE)
        return run_dir

    @classmethod
    def load(cls, run_dir: str | Path, *, device: str | torch.device = "cpu", **kwargs: Any) -> OpenSetMethod:
        """Rebuild a saved method (any registered method when called on the base class).

        Raises:
            CheckpointError: missing files, an unknown method, or tensors that do not match
                the rebuilt model (e.g. other encoders than at training time).
        """
        from safetensors.torch import load_file

        from openmer.methods.registry import get_method

        run_dir = Path(run_dir)
        cfg_path, w_path = run_dir / CONFIG_FILE, run_dir / WEIGHTS_FILE
        for p in (cfg_path, w_path):
            if not p.is_file():
                raise CheckpointError(f"{p}: not found; is {run_dir} a finished openmer run folder?")
        meta = json.loads(cfg_path.read_text(encoding="utf-8"))
        method_cls = get_method(meta["method"]) if cls is OpenSetMethod else cls
        config = method_cls.config_class.from_dict(meta["config"])
        method = method_cls.build(config, meta["known_classes"], extra=meta.get("extra", {}), **kwargs)
        state = load_file(str(w_path))
        expected = method.trainable_state_dict()
        missing = set(expected) - set(state)
        unexpected = set(state) - set(expected)
        bad = [k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape)]
        if missing or unexpected or bad:
            raise CheckpointError(
                f"{w_path}: does not match the rebuilt {method_cls.__name__} (missing {sorted(missing)[:3]}, "
                f"unexpected {sorted(unexpected)[:3]}, shape mismatch {bad[:3]}); were other encoders used?"
            )
        method.load_state_dict(state, strict=False)
        method.threshold = meta.get("threshold")
        method.load_extra_state(meta.get("extra", {}))
        method.mark_fitted()
        return method.to(device).eval()

    @classmethod
    def build(cls, config: MethodConfig, known_classes: Sequence[str], **kwargs: Any) -> OpenSetMethod:
        """Construct from a config (hook for methods that need more, e.g. encoders)."""
        return cls(config, known_classes)


def frozen(module: nn.Module) -> nn.Module:
    """Mark a submodule (e.g. an encoder) as frozen: not saved in checkpoints, never trained."""
    for p in module.parameters():
        p.requires_grad_(False)
    module._openmer_frozen = True  # type: ignore[attr-defined]
    return module
