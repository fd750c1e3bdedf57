"""The one interface every open-set method implements.

Modelled on pytorch-ood's ``Detector`` and OpenOOD's ``(pred, conf)`` pair:

- a method is an ``nn.Module`` built from a :class:`MethodConfig` and the ordered
  ``known_classes`` (class index ``k`` = ``known_classes[k]``);
- :meth:`OpenSetMethod.loss` gives the training loss of a batch (the engine calls it), and the
  engine's hooks :meth:`OpenSetMethod.on_epoch_start` (schedules inside a loss, e.g. CPN's
  temperature warm-up), :meth:`OpenSetMethod.before_optimizer_step` (HESP's prompt steps),
  :meth:`OpenSetMethod.on_epoch_end` (Open-VCLIP's weight averaging) and
  :meth:`OpenSetMethod.finalize` (statistics of the trained model on
  the training data, e.g. LPL's logit prototypes, post-hoc score fits) let a method do more
  without a second loop;
- :meth:`OpenSetMethod.score` gives :class:`OpenSetScores`: ``confidence`` (higher = more
  likely a known class) and ``prediction`` (a known-class index), without gradients;
- :func:`openmer.training.fit` (the layer above) trains any method; the method only gives it its
  loss, its parameter groups and the hooks above, so this module imports nothing from training;
- :meth:`OpenSetMethod.describe`, :meth:`OpenSetMethod.save_weights` and
  :meth:`OpenSetMethod.from_description` are what the one run-folder format (:mod:`openmer.runs`:
  ``run.json`` + ``model.safetensors``) writes and rebuilds a method from. Frozen encoders are
  referenced by their profile, never copied.

A *batch* is a ``dict``: modality keys (``"video"``, ``"audio"``, ``"text"``, or
``"features"`` for precomputed feature vectors) and ``"label"`` ((B,) int64, ``-1`` =
unknown). A missing modality key means the modality is absent.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, NamedTuple, Self, TypeVar

import torch
from torch import Tensor, nn

from openmer.config import OpenmerConfig
from openmer.errors import (
    CheckpointError,
    ConfigError,
    NotFittedError,
    NotSupportedError,
)
from openmer.methods.posthoc import HeadOutputs

Batch = Mapping[str, Any]
#: what a method reads (:attr:`OpenSetMethod.consumes`): ``"clips"`` (media batches through encoders
#: it holds) or ``"features"`` (cached unprompted encoder features); the one question callers ask
#: about a method's input (:mod:`openmer.methods.inputs` has one pipeline per value)
Consumes = Literal["features", "clips"]


class LossOutput(NamedTuple):
    """What a training step of a method returns (:meth:`openmer.methods.base.OpenSetMethod.training_step`).

    Attributes:
        terms: named scalar losses; the training loss is their sum (e.g. HCEP's ``loss_emo`` and
            ``loss_osr``, Eq. 9). The engine logs each term's epoch mean.
        logits: (B, K) the logits the method predicts with, when it has them; the engine turns
            them into the training closed-set accuracy.
    """

    terms: dict[str, Tensor]
    logits: Tensor | None = None

    @property
    def total(self) -> Tensor:
        """The training loss: the sum of the terms."""
        return torch.stack(list(self.terms.values())).sum()


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


#: the config class of a method (:class:`OpenSetMethod` is generic in it)
ConfigT = TypeVar("ConfigT", bound=MethodConfig)


class OpenSetMethod(nn.Module, ABC, Generic[ConfigT]):
    """Base class of the open-set methods (see the module docstring)."""

    name: ClassVar[str]
    config_class: ClassVar[type[MethodConfig]]
    config: ConfigT
    #: what the method reads: ``"clips"`` (media batches through encoders it holds) or
    #: ``"features"`` (cached encoder features, ``batch["features"]``); every caller reads this
    #: (:func:`openmer.methods.inputs.method_inputs`), none tests the class
    consumes: ClassVar[Consumes] = "clips"
    #: a 0-d bool buffer: fitted (or loaded) or not
    _fitted: Tensor
    #: the confidence scores the method can report (``--score NAME``): name -> the config fields
    #: that select it; the first is the method's own (its paper's). Empty: one fixed score.
    scores: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    def __init__(self, config: ConfigT, known_classes: Sequence[str]):
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

    def train(self, mode: bool = True) -> OpenSetMethod:
        """Train mode for what learns; submodules marked :func:`frozen` (the encoders) stay in
        eval mode (no dropout, fixed normalisation statistics)."""
        super().train(mode)
        for m in self.modules():
            if getattr(m, "_openmer_frozen", False):
                m.train(False)
        return self

    # ---------------------------------------------------------------- training
    def setup(self, train: Iterable[Batch]) -> None:
        """Hook run once before training with the training data (e.g. feature statistics)."""

    def on_epoch_start(self, epoch: int, num_epochs: int) -> None:
        """Hook run by the engine before each training epoch (``epoch`` counts from 0)."""

    def before_optimizer_step(self) -> None:
        """Hook run by the engine after each backward pass (and gradient clipping), before the
        optimiser step: gradients are in ``.grad`` (e.g. HESP's normalised-gradient prompt steps)."""

    def on_epoch_end(self, epoch: int, num_epochs: int) -> None:
        """Hook run by the engine after each training epoch's last step, before validation
        (``epoch`` counts from 0; e.g. Open-VCLIP's running weight average). State it keeps must
        live in buffers, so that model selection and checkpoints carry it."""

    def finalize(self, train: Iterable[Batch]) -> None:
        """Hook run by the engine once after training, on the training data, once the selected
        epoch's weights are loaded. State it computes must live in buffers, so that it is saved."""

    @abstractmethod
    def loss(self, batch: Batch) -> Tensor:
        """Scalar training loss of a batch of known-class samples."""

    def training_step(self, batch: Batch) -> LossOutput:
        """The loss of a training batch with its named terms (default: one term, ``loss``).

        Methods whose loss has several parts, or that have logits to report a training accuracy
        with, override this; :meth:`forward` (what the engine calls) returns it.
        """
        return LossOutput({"loss": self.loss(batch)})

    def forward(self, batch: Batch) -> LossOutput | Tensor:
        return self.training_step(batch)

    @torch.no_grad()
    def evaluate_batch(self, batch: Batch) -> tuple[Tensor | None, OpenSetScores]:
        """The training loss over the batch's known samples (``None`` when it has none) and the
        scores of all its samples, for validation. Methods that can share one forward pass between
        the two override this."""
        y = torch.as_tensor(batch["label"])
        known = y >= 0
        loss = None
        if bool(known.any()):
            kb = {k: (v[known] if isinstance(v, Tensor) and v.shape[:1] == y.shape else
                      [x for x, m in zip(v, known.tolist(), strict=True) if m] if isinstance(v, list) else v)
                  for k, v in batch.items()}
            loss = self.training_step(kb).total
        return loss, self.score(batch)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters by group name, for per-group learning rates and gradient norms.

        Default: one group ``"all"``. Every trainable parameter must be in exactly one group.
        """
        return {"all": [p for p in self.parameters() if p.requires_grad]}

    @torch.no_grad()
    def diagnostics(self) -> dict[str, float]:
        """Per-epoch numbers about the fitted state that the engine logs (default: none)."""
        return {}

    @abstractmethod
    def score(self, batch: Batch) -> OpenSetScores:
        """Open-set scores of a batch (no gradients, eval mode)."""

    @torch.no_grad()
    def score_all(self, batches: Iterable[Batch]) -> OpenSetScores:
        """:meth:`score` over several batches, concatenated (on CPU)."""
        return self.score_all_with_features(batches, features=False)[0]

    def score_with_features(self, batch: Batch) -> tuple[OpenSetScores, Tensor | None]:
        """:meth:`score` and the (B, E) features the scores come from (for t-SNE, HCEP Figs. 6
        and 8), or ``None`` for a method without features (:meth:`features`). Methods whose scores
        and features come from one encoder pass override this so that a test clip is encoded once."""
        return self.score(batch), self.features(batch)

    # ---------------------------------------------------------------- optional capabilities
    # Callers (post-hoc scores, t-SNE, evaluate/predict, discovery, a service) call these members;
    # none probes a method with getattr. A method that has a capability overrides its member.
    def features(self, batch: Batch) -> Tensor | None:
        """(B, E) the features the method's scores come from (for t-SNE, HCEP Figs. 6 and 8), or
        ``None`` (the default) for a method that has none."""
        return None

    @classmethod
    def has_head(cls) -> bool:
        """Whether the method has a classifier :meth:`head` (so post-hoc scores apply to it):
        true when the class overrides :meth:`head`."""
        return cls.head is not OpenSetMethod.head

    def head(self, batch: Batch) -> HeadOutputs:
        """The classifier head post-hoc scores read (:mod:`openmer.methods.posthoc`): (B, K) logits
        whose argmax is the prediction and (B, E) the penultimate features they come from.

        Raises:
            NotSupportedError: the method has no classifier head (the default; :meth:`has_head`).
        """
        raise NotSupportedError(f"{type(self).__name__} ({self.name!r}) has no classifier head, "
                                "so post-hoc scores do not apply to it")

    def linear_head(self) -> tuple[Tensor, Tensor] | None:
        """``(W (K, E), b (K,))`` when the :meth:`head` logits are a linear layer of its features
        (ViM's origin), else ``None`` (the default)."""
        return None

    def text_query(self, features: Tensor) -> Tensor:
        """(B, D_T) :meth:`features` (B, E) brought into the text encoder's space through the
        alignment the method learned (HCEP: L_emo's query, Eq. 5), compared with the features of
        emotion words' sentences to name what clips resemble (:mod:`openmer.discovery`).

        Raises:
            NotSupportedError: the method learned no alignment with text (the default).
        """
        raise NotSupportedError(f"{type(self).__name__} ({self.name!r}) learned no alignment with text")

    def class_parameters(self) -> tuple[str, ...] | None:
        """Names (as in :meth:`trainable_state_dict`) of the tensors indexed by known class on their
        first dimension (K, ...): a class enrolled later (:mod:`openmer.discovery.enrol`) adds one row
        to each and tunes only that row. ``()``: a new class needs no new tensor (e.g. HCEP on text,
        whose class features are the class sentences). ``None`` (the default): the method cannot
        take a new class without retraining."""
        return None

    def encode_samples_once(self, batch: Batch) -> Batch:
        """``batch`` with the samples' encodings that depend on no class-indexed tensor computed once
        and carried in it, for a loop that changes only :meth:`class_parameters` (enrolment tunes
        one new class row for many steps, :mod:`openmer.discovery.enrol`): :meth:`loss`,
        :meth:`score` and :meth:`features` of the returned batch equal those of ``batch`` for this
        method and for any method enrolled from it, as long as no other tensor changes. Calling it
        again on its result returns that unchanged. Default: ``batch`` itself (a method whose
        per-sample cost is small, e.g. a head on cached features)."""
        return batch

    def hold_classes_fixed(self, n: int) -> None:
        """Declare that, until called again with 0, every tensor stays as it is except the rows of
        the classes from ``n`` on of :meth:`class_parameters` (enrolment tunes only the new class's
        rows): the method may compute what depends only on the first ``n`` classes once and reuse it
        (HCEP: their CUEP whole-input prompts through the encoders). Default: nothing to reuse."""

    def input_encoders(self) -> dict[str, nn.Module]:
        """The frozen encoders the method runs its clips through, modality -> encoder (a method
        with ``consumes = "clips"``); empty (the default) for a method that holds none, e.g. one
        reading cached features (its encoders come from the run's profile)."""
        return {}

    def score_all_with_features(self, batches: Iterable[Batch], *,
                                features: bool = True) -> tuple[OpenSetScores, Tensor | None]:
        """:meth:`score_with_features` over several batches, concatenated (on CPU); the features
        are ``None`` when not asked for or when the method has none.

        Raises:
            NotFittedError: before fit or load.
        """
        self.check_fitted()
        was_training = self.training
        self.eval()
        parts = [self.score_with_features(b) if features else (self.score(b), None) for b in batches]
        self.train(was_training)
        scores = [p[0] for p in parts]
        probs = [s.probabilities for s in scores if s.probabilities is not None]
        feats = [p[1] for p in parts if p[1] is not None]
        return OpenSetScores(
            torch.cat([p.confidence.cpu() for p in scores]),
            torch.cat([p.prediction.cpu() for p in scores]),
            torch.cat([p.cpu() for p in probs]) if len(probs) == len(parts) else None,
        ), (torch.cat([f.cpu() for f in feats]) if feats and len(feats) == len(parts) else None)

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

    def describe(self) -> dict[str, Any]:
        """What defines this method besides its tensors: name, config, known classes, threshold, extra state."""
        return {
            "method": self.name,
            "config": self.config.to_dict(),
            "known_classes": self.known_classes,
            "threshold": self.threshold,
            "extra": self.extra_state(),
        }

    def save_weights(self, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
        """Write :meth:`trainable_state_dict` to a safetensors file (with ``metadata`` in its header),
        atomically (temporary name, then rename)."""
        from safetensors.torch import save_file

        from openmer.files import atomic_path

        tensors = {k: v.detach().cpu().contiguous() for k, v in self.trainable_state_dict().items()}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)
        return Path(path)

    @classmethod
    def from_description(cls, meta: Mapping[str, Any], state: Mapping[str, Tensor], *, weights: str | Path,
                         source: str | Path, device: str | torch.device = "cpu", **kwargs: Any) -> OpenSetMethod:
        """Rebuild a fitted method from :meth:`describe`'s dict and its trainable tensors
        (:func:`openmer.runs.load_method` reads both from a run folder; it is the one caller).

        Args:
            meta: ``{"method", "config", "known_classes", "threshold", "extra"}``.
            state: the tensors of :meth:`trainable_state_dict`, as read from ``weights``.
            weights: the safetensors file ``state`` comes from, named in errors.
            source: the file ``meta`` was read from, named in errors.
            device: where the rebuilt method goes.
            **kwargs: passed to :meth:`build` (e.g. ``encoders=``).

        Raises:
            CheckpointError: ``meta`` lacks a field or does not validate, or the tensors do not
                match the rebuilt model (missing, unexpected or of another shape).
        """
        from openmer.methods.registry import get_method

        missing_keys = [k for k in ("method", "config", "known_classes") if k not in meta]
        if missing_keys:
            raise CheckpointError(f"{source}: missing field(s) {missing_keys}")
        try:
            method_cls: type[OpenSetMethod[Any]] = get_method(meta["method"]) if cls is OpenSetMethod else cls
            config = method_cls.config_class.from_dict(meta["config"])
            method = method_cls.build(config, meta["known_classes"], extra=meta.get("extra", {}), **kwargs)
        except ConfigError as exc:
            raise CheckpointError(f"{source}: {exc}") from exc
        expected = method.trainable_state_dict()
        missing = set(expected) - set(state)
        unexpected = set(state) - set(expected)
        bad = [k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape)]
        if missing or unexpected or bad:
            raise CheckpointError(
                f"{weights}: does not match the rebuilt {method_cls.__name__} (missing {sorted(missing)[:3]}, "
                f"unexpected {sorted(unexpected)[:3]}, shape mismatch {bad[:3]}); were other encoders used?"
            )
        method.load_state_dict(dict(state), strict=False)
        method.threshold = meta.get("threshold")
        method.load_extra_state(meta.get("extra", {}))
        method.mark_fitted()
        return method.to(device).eval()

    @classmethod
    def unavailable(cls, config: ConfigT, **context: Any) -> str | None:
        """Why the method cannot run with ``config`` and what the caller has, or ``None`` when it can.

        A runner calls this before :meth:`build` with the same keyword arguments it would pass to
        :meth:`build` (e.g. ``text_encoder=``) and leaves the method out of a run, recording the
        reason, instead of asking the method's name. Default: always available.
        """
        return None

    @property
    def score_name(self) -> str:
        """The name of the confidence :meth:`score` reports: the entry of :attr:`scores` whose
        fields the config has, else the method's name (its one score)."""
        for name, fields in self.scores.items():
            if all(getattr(self.config, k, None) == v for k, v in fields.items()):
                return name
        return self.name

    @classmethod
    def score_choices(cls) -> tuple[str, ...]:
        """The names :meth:`score_options` accepts."""
        return tuple(cls.scores)

    @classmethod
    def score_options(cls, score: str) -> dict[str, Any]:
        """The config fields that make the method report confidence ``score`` (``openmer train
        --score``), e.g. ``{"confidence": "energy"}`` for HCEP's ``"energy"``.

        Raises:
            ConfigError: a score the method cannot report (the message lists its choices).
        """
        if score not in cls.scores:
            choices = list(cls.score_choices())
            raise ConfigError(f"method {cls.name!r} cannot report score {score!r}; "
                              f"its scores: {choices or 'only its own (no --score)'}")
        return dict(cls.scores[score])

    @classmethod
    def build(cls, config: ConfigT, known_classes: Sequence[str], **kwargs: Any) -> Self:
        """Construct from a config (hook for methods that need more, e.g. encoders)."""
        return cls(config, known_classes)


def parameter_version(module: nn.Module, exclude: str = "encoders.") -> tuple:
    """Identity of the current values of a method's own parameters and buffers (not its encoders').

    A tensor's ``_version`` counter grows with every in-place change (optimiser steps,
    ``load_state_dict``'s copies) and a move to another device makes a new tensor, so a cache
    stored with this key is reused only while nothing it was computed from has changed.

    Args:
        module: the method.
        exclude: name prefix of the submodules left out (the frozen encoders).
    """
    own: list[Tensor] = [t for n, t in module.named_parameters() if not n.startswith(exclude)]
    own += [t for n, t in module.named_buffers() if not n.startswith(exclude)]
    return tuple((t.data_ptr(), t._version) for t in own)


def frozen(module: nn.Module) -> nn.Module:
    """Mark a submodule (e.g. an encoder) as frozen: not saved in checkpoints, never trained."""
    for p in module.parameters():
        p.requires_grad_(False)
    setattr(module, "_openmer_frozen", True)  # noqa: B010  (a plain attribute, not a submodule or tensor)
    return module
