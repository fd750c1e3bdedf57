"""HESP: Hinting the unknown with Expression-Sensitive Prompts (Liu et al., ACM MM 2024), HCEP's predecessor.

Source: Liu et al., ACM MM 2024 (HCEP's reference [3]); reference code GoldExperiencejojo/HESP
(``prompt/prompt.py:PromptLearner``, ``core/train.py:train``, ``core/test.py:test``,
``loss/MYARPLoss.py``, ``loss/ConLoss.py``), read as ``shared/specs/comparison-methods.md`` Sec. 1.

Frozen CLIP text and vision encoders; what is learned:

- class-specific CoOp context tokens ``C`` (K, M, w_T) before each class name: ``F_T`` (K, D);
- the expression-sensitive visual prompt ``delta`` (C, p, p), added to every frame inside a
  p x p window (mask M): ``F_V = mean_t phi_V(x_t + M delta)`` (:func:`add_visual_prompt`);
- negative visual prompts ``V-`` (K, C, S, S), whole images encoded by the same tower, whose
  features ``F_V-`` are the reciprocal points (HCEP's CUEP negative prompts, reused);
- ARPL's radius R.

Logits: ``z_KN = 100 cos(F_V, F_T)``, ``z_NE = ||F_V - F_V-||^2 / D - F_V . F_V-`` (ARPL's composite
distance), ``z_H = (z_KN + z_NE) / 2``. Loss (:meth:`HESP.training_step`, all weights 1):
``CE(z_KN) + tau SupCon(F_V; tau = 0.5) + [CE(z_NE) + 0.1 max(0, ||F_V - F_V-_y||^2 / D - R + 1)]
+ CE(100 cos(F_V-_i, F_T-_j), i) + CE(z_H)``, with ``F_T-`` the fixed sentences "This video is
not {class}.". The prompts ``delta`` and ``V-`` also take the reference's normalised-gradient
steps (:meth:`HESP.before_optimizer_step`). Inference: ``confidence = max z_H``.

On encoders whose text and vision widths differ (the offline profile: MiniLM 384-d, FER 128-d)
a learnable linear map ``align`` (D_V -> D_T) brings the vision features to the text space for
the two cosine terms; with CLIP there is none. See ``docs/methods.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal, Self, cast

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from openmer.backbones.base import Encoder, TextEncoder, VisionEncoder
from openmer.backbones.factory import ProfileConfig, load_encoder
from openmer.data.clips import modality_present
from openmer.errors import ConfigError, MissingModalityError
from openmer.methods.arpl import arpl_loss
from openmer.methods.base import (
    Batch,
    LossOutput,
    MethodConfig,
    OpenSetMethod,
    OpenSetScores,
    frozen,
    parameter_version,
)
from openmer.methods.distance import composite_distance
from openmer.methods.hcep.cuep import CUEP, class_sentences
from openmer.methods.hcep.dpol import emotion_logits, loss_emo
from openmer.methods.hcep.smep import OWN_PROMPT_STD
from openmer.methods.registry import register


class HESPConfig(MethodConfig):
    """HESP options (reference defaults; ``comparison-methods.md`` Sec. 1).

    Attributes:
        profile: the frozen encoders (text + vision; recorded so a checkpoint can rebuild them).
        modalities: the data's modalities; HESP reads ``"video"`` only (and needs it).
        n_context: M, context tokens per class (16).
        class_template: the sentence after the context, ``{}`` = class name (``"{}."``).
        negative_template: the fixed negative sentences (``"This video is not {}."``).
        patch_fraction: the window's side as a fraction of the input size (56 / 224).
        patch_position: ``"center"`` (HESP's inputs are aligned face crops), ``(row, col)`` of the
            window centre as fractions of the input size (clamped so the window fits), or
            ``"cam"``: the reference's placement (``core/train.py``), chosen once in :meth:`HESP.setup`
            on frame 0 of the first training batch: the argmax of a class activation map, the row of
            CLIP's zero-shot top class of a random (seeded) ``Linear(width, K)`` applied to the
            patch embeddings, upsampled to the input size (:func:`cam_centre`). It needs a vision
            encoder with patch embeddings (CLIP).
        prompt_step: the norm of the normalised-gradient steps of delta and V- (50, in the
            encoder's input units: normalised pixels).
        negative_init_std: V-'s initial N(0, std^2) noise (1, in normalised-pixel units).
        logit_scale: CLIP's ``logit_scale.exp()`` (100), for z_KN and the negative-text term.
        supcon_temperature: tau of the supervised contrastive term (0.5; the term is scaled by tau).
        weight_pl / margin: ARPL's radius term (0.1, 1).
        train_text_context: ``True`` (the paper) trains C; ``False`` reproduces the reference code,
            where C never receives a gradient step.
        fuse: ``"logits"`` (reference ``core/test.py``: confidence = max z_H) or ``"probs"`` (the
            paper's Eq. 13: the mean of softmax(z_KN) and softmax(z_NE), confidence = its max).
        seed: initial context tokens and V-.
    """

    method: str = "hesp"
    profile: ProfileConfig
    modalities: tuple[Literal["text", "video", "audio"], ...] = ("video",)
    n_context: int = Field(default=16, ge=1)
    class_template: str = "{}."
    negative_template: str = "This video is not {}."
    patch_fraction: float = Field(default=0.25, gt=0, le=1)
    patch_position: Literal["center", "cam"] | tuple[float, float] = "center"
    prompt_step: float = Field(default=50.0, ge=0)
    negative_init_std: float = Field(default=1.0, gt=0)
    logit_scale: float = Field(default=100.0, gt=0)
    supcon_temperature: float = Field(default=0.5, gt=0)
    weight_pl: float = Field(default=0.1, ge=0)
    margin: float = 1.0
    train_text_context: bool = True
    fuse: Literal["logits", "probs"] = "logits"
    seed: int = 0


def patch_window(size: int, fraction: float, position: Literal["center"] | tuple[float, float]) -> tuple[int, int, int]:
    """``(top, left, p)``: the p x p window of the visual prompt in an S x S input.

    Args:
        size: S, the input's side in pixels.
        fraction: p / S (rounded, at least 1 pixel).
        position: ``"center"`` or ``(row, col)`` of the window centre as fractions of S; the
            centre is clamped to ``[p / 2, S - p / 2]`` (the reference clamps to [28, 195] at 224).
    """
    p = max(1, min(size, round(fraction * size)))
    row, col = (0.5, 0.5) if position == "center" else position
    top = int(min(max(round(row * size - p / 2), 0), size - p))
    left = int(min(max(round(col * size - p / 2), 0), size - p))
    return top, left, p


def cam_centre(patches: Tensor, class_weights: Tensor, size: int) -> tuple[float, float]:
    """The window centre of HESP's ``"cam"`` placement: where the class activation map peaks.

    Args:
        patches: (W, h, w) patch embeddings of one frame.
        class_weights: (W,) the weights of the class whose map is drawn.
        size: S, the input's side; the map is upsampled (bilinear) to S x S before the argmax.

    Returns:
        ``(row, col)`` of the peak as fractions of S (pixel centres), for :func:`patch_window`.
    """
    cam = torch.einsum("c,chw->hw", class_weights.to(patches.dtype), patches)
    cam = F.interpolate(cam[None, None], size=(size, size), mode="bilinear", align_corners=False)[0, 0]
    peak = int(cam.argmax())
    return ((peak // size) + 0.5) / size, ((peak % size) + 0.5) / size


def add_visual_prompt(inputs: Tensor, patch: Tensor, top: int, left: int) -> Tensor:
    """``x + M delta``: the patch added inside its window of every frame (HESP's expression-sensitive prompt).

    Args:
        inputs: (..., C, S, S) frames, e.g. (B, N, C, S, S) videos, in the encoder's input units.
        patch: (C, p, p) delta.
        top, left: the window's corner (:func:`patch_window`).

    Returns:
        the same shape; unchanged outside the window, ``+ delta`` inside.
    """
    _, p, _ = patch.shape  # (C, p, p)
    s_h, s_w = inputs.shape[-2:]
    full = F.pad(patch, (left, s_w - left - p, top, s_h - top - p))  # (C, S, S), zero outside M
    return inputs + full.to(inputs.dtype)


def supcon_loss(features: Tensor, labels: Tensor, temperature: float) -> Tensor:
    """Supervised contrastive loss (Khosla et al., NeurIPS 2020; HESP ``loss/ConLoss.py``), one view.

    ``-mean_i mean_{p in P(i)} log softmax_{a != i}(z_i . z_a / tau)_p`` on L2-normalised features;
    anchors without a positive in the batch are skipped (0 when none has one).

    Args:
        features: (B, D).
        labels: (B,) class indices.
        temperature: tau.
    """
    z = F.normalize(features, dim=-1)
    n = len(z)
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    sim = (z @ z.t() / temperature).masked_fill(self_mask, float("-inf"))
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    positive = (labels[:, None] == labels[None, :]) & ~self_mask
    n_pos = positive.sum(1)
    has = n_pos > 0
    if not bool(has.any()):
        return features.sum() * 0.0
    mean_pos = log_prob.masked_fill(~positive, 0.0).sum(1)[has] / n_pos[has]
    return -mean_pos.mean()


@torch.no_grad()
def normalized_step(tensor: Tensor, gradient: Tensor, step: float) -> None:
    """``tensor <- tensor - step g / ||g||`` in place (HESP ``core/train.py``); nothing when g = 0.

    ``gradient`` broadcasts over ``tensor`` (V-: one mean gradient, the same step for all K images).
    """
    norm = gradient.norm()
    if bool(norm > 0):
        tensor.sub_(step * gradient / norm)


@register("hesp")
class HESP(OpenSetMethod[HESPConfig]):
    """HESP on a text + vision encoder pair (CLIP on the ``paper`` profile).

    Input batch: ``"video"`` (B, N, C, S, S) frames as the vision encoder expects them,
    ``"video_present"`` (B,) bool (optional), ``"label"`` (B,). Other modalities are ignored.

    Raises:
        ConfigError: no text or vision encoder, or ``"video"`` not among ``modalities``
            (:meth:`unavailable`).
        MissingModalityError: a sample without video.
    """

    config_class = HESPConfig
    config: HESPConfig
    window_corner: Tensor
    text_neg: Tensor

    def __init__(self, config: HESPConfig, known_classes: Sequence[str], encoders: dict[str, Encoder]):
        super().__init__(config, known_classes)
        reason = self.unavailable(config, encoders=encoders)
        text, vision = encoders.get("text"), encoders.get("video")
        # (unavailable() checks the encoder types too; the isinstance tests tell the type checker)
        if reason or not isinstance(text, TextEncoder) or not isinstance(vision, VisionEncoder):
            raise ConfigError(f"hesp {reason}")
        shape = vision.prompt_spec().whole_input_shape  # (C, S, S)
        if shape is None:
            raise ConfigError("hesp needs a vision encoder with whole-image inputs (its negative visual prompts)")
        self.encoders = nn.ModuleDict({"text": frozen(text), "video": frozen(vision)})
        gen = torch.Generator().manual_seed(config.seed)
        k, d_t, d_v = self.num_classes, int(text.embed_dim), int(vision.embed_dim)
        position = config.patch_position
        start: Literal["center"] | tuple[float, float] = "center" if position == "cam" else position  # "cam": setup()
        top, left, p = patch_window(int(shape[-1]), config.patch_fraction, start)
        #: the window's corner (top, left), a buffer: "cam" chooses it from data, and it is saved
        self.register_buffer("window_corner", torch.tensor([top, left], dtype=torch.long))
        self._patch_side = p
        self.text_context = nn.Parameter(
            OWN_PROMPT_STD["tokens"] * torch.randn(k, config.n_context, text.width, generator=gen),
            requires_grad=config.train_text_context)
        self.visual_prompt = nn.Parameter(torch.zeros(shape[0], p, p))
        # V-: the negative whole-image prompts of HCEP's CUEP, N(0, 1) in normalised-pixel units
        self.cuep = CUEP(k, {"video": vision}, init_std=config.negative_init_std, generator=gen, with_positive=False)
        self.radius = nn.Parameter(torch.zeros(()))
        self.align = nn.Linear(d_v, d_t, bias=False) if d_v != d_t else None
        self._class_sentences, self._negative_sentences = class_sentences(
            self.known_classes, config.class_template, config.negative_template)
        self.register_buffer("text_neg", torch.zeros(k, d_t), persistent=False)
        self._text_neg_ready = False
        self._class_cache: tuple[tuple, tuple[Tensor, Tensor]] | None = None

    @property
    def vision_encoder(self) -> VisionEncoder:
        """The frozen vision encoder (a :class:`VisionEncoder`, checked at construction)."""
        return cast(VisionEncoder, self.encoders["video"])

    @property
    def window(self) -> tuple[int, int, int]:
        """``(top, left, p)`` of the visual prompt's window (:func:`patch_window`)."""
        top, left = (int(v) for v in self.window_corner)
        return top, left, self._patch_side

    @torch.no_grad()
    def setup(self, train: Iterable[Batch]) -> None:
        """``patch_position="cam"``: place the window on frame 0 of the first training batch
        (:func:`cam_centre`, the reference's ``core/train.py``); otherwise nothing."""
        if self.config.patch_position != "cam":
            return
        batch = next(iter(train))
        vision = self.vision_encoder
        frame = torch.as_tensor(batch["video"])[0]
        frame = (frame[0] if frame.dim() == 4 else frame)[None].to(self.radius.device)  # (1, C, S, S)
        patches = vision.patch_embeddings(frame)
        if patches is None:
            raise ConfigError(f"hesp patch_position='cam' needs a vision encoder with patch embeddings; "
                              f"{type(vision).__name__} has none")
        text = F.normalize(self.encoders["text"](self._class_sentences), dim=-1)
        top_class = int((F.normalize(vision(frame), dim=-1) @ text.t()).argmax())
        # an untrained Linear(width, K), as the reference: U(-1/sqrt(width), 1/sqrt(width)), seeded
        width = patches.shape[1]
        gen = torch.Generator().manual_seed(self.config.seed)
        weights = (2 * torch.rand(self.num_classes, width, generator=gen) - 1) / width ** 0.5
        size = frame.shape[-1]
        top, left, _ = patch_window(size, self.config.patch_fraction, cam_centre(patches[0], weights[top_class], size))
        self.window_corner.copy_(torch.tensor([top, left]))

    # ---------------------------------------------------------------- construction
    @classmethod
    def unavailable(cls, config: HESPConfig, *, encoders: dict[str, Encoder] | None = None, **_: Any) -> str | None:
        """Why HESP cannot run: no video among the data's modalities, or (with ``encoders``) no
        token-prompted text encoder or no vision encoder with whole-image inputs."""
        if "video" not in config.modalities:
            return f"reads video (an O-ER method); the data has {', '.join(config.modalities)}"
        if encoders is None:
            return None
        if not isinstance(encoders.get("text"), TextEncoder):
            return "needs a text encoder that takes context tokens (its class prompts)"
        vision = encoders.get("video")
        if not isinstance(vision, VisionEncoder) or vision.prompt_spec().whole_input_shape is None:
            return "needs a vision encoder with whole-image inputs (its negative visual prompts)"
        return None

    @classmethod
    def build(cls, config: HESPConfig, known_classes: Sequence[str], *, encoders: dict[str, Encoder] | None = None,
              device: str | torch.device = "cpu", **_: Any) -> Self:
        """Construct, loading the profile's text and video encoders unless ``encoders`` are given."""
        if encoders is None:
            specs = config.profile.specs()
            missing = [m for m in ("text", "video") if m not in specs]
            if missing:
                raise ConfigError(
                    f"hesp needs {' and '.join(missing)} encoders; profile {config.profile.name!r} has none")
            encoders = {m: load_encoder(specs[m], device=device) for m in ("text", "video")}
        return cls(config, known_classes, encoders)

    # ---------------------------------------------------------------- features
    @property
    def negative_prompts(self) -> nn.Parameter:
        """V- (K, C, S, S)."""
        return self.cuep.negative["video"]

    def _to_text(self, f: Tensor) -> Tensor:
        return f if self.align is None else self.align(f)

    def negative_text_features(self) -> Tensor:
        """F_T- (K, D_T): the fixed negative sentences, encoded once per model."""
        if not self._text_neg_ready:
            with torch.no_grad():
                self.text_neg.copy_(self.encoders["text"](self._negative_sentences))
            self._text_neg_ready = True
        return self.text_neg

    def class_features(self) -> tuple[Tensor, Tensor]:
        """``(F_T (K, D_T), F_V- (K, D_V))`` from the context tokens and the negative visual prompts.

        In eval mode cached with the parameter version they were computed from (recomputed after
        any change of a parameter or buffer, e.g. a training step or a load).
        """
        version = None if self.training else parameter_version(self)
        if version is not None and self._class_cache is not None and self._class_cache[0] == version:
            return self._class_cache[1]
        f_t = self.encoders["text"](self._class_sentences, prompts=self.text_context)  # CoOp, per class
        f_neg = self.vision_encoder.encode_whole_prompts(self.negative_prompts)
        if version is not None:
            self._class_cache = (version, (f_t.detach(), f_neg.detach()))
        return f_t, f_neg

    def video_features(self, batch: Batch) -> Tensor:
        """F_V (B, D_V): the frames with the expression-sensitive prompt, through the vision tower.

        Raises:
            MissingModalityError: no video, or samples without it.
        """
        if batch.get("video") is None:
            raise MissingModalityError(f"hesp reads video; the batch has {sorted(batch)}")
        present = modality_present(batch, "video")
        if not bool(present.all()):
            absent = (~present).nonzero().squeeze(1).tolist()
            raise MissingModalityError(f"hesp reads video; samples {absent} have none")
        enc = self.encoders["video"]
        video = torch.as_tensor(batch["video"]).to(self.radius.device)
        top, left, _ = self.window
        return enc(add_visual_prompt(video, self.visual_prompt, top, left))

    def logits(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(z_KN, z_NE, F_V, F_V-)``: (B, K), (B, K), (B, D_V), (K, D_V)."""
        f_v = self.video_features(batch)
        f_t, f_neg = self.class_features()
        z_kn = emotion_logits(self._to_text(f_v), f_t, self.config.logit_scale)
        z_ne = composite_distance(f_v, f_neg)
        return z_kn, z_ne, f_v, f_neg

    # ---------------------------------------------------------------- training
    def training_step(self, batch: Batch) -> LossOutput:
        """The five terms of HESP's loss (module docstring); logits = z_H."""
        c = self.config
        y = torch.as_tensor(batch["label"], device=self.radius.device)
        z_kn, z_ne, f_v, f_neg = self.logits(batch)
        z_h = (z_kn + z_ne) / 2
        k = torch.arange(self.num_classes, device=y.device)
        terms = {
            "loss_kn": F.cross_entropy(z_kn, y),
            "loss_supcon": c.supcon_temperature * supcon_loss(f_v, y, c.supcon_temperature),
            "loss_ne": arpl_loss(f_v, y, f_neg, self.radius, weight_pl=c.weight_pl, margin=c.margin),
            "loss_neg_text": loss_emo(self._to_text(f_neg), self.negative_text_features(), k, c.logit_scale),
            "loss_h": F.cross_entropy(z_h, y),
        }
        return LossOutput(terms, z_h)

    def loss(self, batch: Batch) -> Tensor:
        return self.training_step(batch).total

    def before_optimizer_step(self) -> None:
        """The reference's prompt steps: ``delta <- delta - s g / ||g||`` (then no optimiser step
        for delta), ``V- <- V- - s g_mean / ||g_mean||`` with g_mean the gradient averaged over the
        K images, the same step for all (V- keeps its gradient for the optimiser step); s = ``prompt_step``."""
        step = self.config.prompt_step
        if self.visual_prompt.grad is not None:
            normalized_step(self.visual_prompt, self.visual_prompt.grad, step)
            self.visual_prompt.grad = None
        v = self.negative_prompts
        if v.grad is not None:
            normalized_step(v, v.grad.mean(dim=0), step)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``text_context`` (C), ``visual_prompt`` (delta), ``negative_prompts`` (V-) and ``head``
        (R and, on unequal widths, ``align``)."""
        head = [self.radius] + ([] if self.align is None else list(self.align.parameters()))
        groups = {"text_context": [self.text_context], "visual_prompt": [self.visual_prompt],
                  "negative_prompts": [self.negative_prompts], "head": head}
        groups = {n: [p for p in ps if p.requires_grad] for n, ps in groups.items()}
        return {n: ps for n, ps in groups.items() if ps}

    # ---------------------------------------------------------------- scores
    @torch.no_grad()
    def score(self, batch: Batch) -> OpenSetScores:
        """``confidence = max z_H``, ``prediction = argmax z_H`` (``fuse="logits"``, reference
        ``core/test.py``); or the max of the mean of softmax(z_KN) and softmax(z_NE) (``"probs"``, Eq. 13)."""
        z_kn, z_ne, _, _ = self.logits(batch)
        z_h = (z_kn + z_ne) / 2
        if self.config.fuse == "logits":
            conf, pred = z_h.max(dim=1)
            return OpenSetScores(conf, pred, torch.softmax(z_h, dim=1))
        probs = (torch.softmax(z_kn, dim=1) + torch.softmax(z_ne, dim=1)) / 2
        conf, pred = probs.max(dim=1)
        return OpenSetScores(conf, pred, probs)

    def input_encoders(self) -> dict[str, nn.Module]:
        """The frozen text and video encoders HESP runs its clips through."""
        return dict(self.encoders.items())

    @torch.no_grad()
    def features(self, batch: Batch) -> Tensor:
        """F_V (B, D_V), the prompted video features (for t-SNE)."""
        return self.video_features(batch)
