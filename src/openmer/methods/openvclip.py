"""Open-VCLIP: interpolated weight optimisation between zero-shot and fine-tuned weights, on frozen features.

Source: Weng, Yang, Li, Wu, Jiang, "Open-VCLIP: Transforming CLIP to an Open-vocabulary Video
Model via Interpolated Weight Optimization", ICML 2023; reference code wengzejia1/Open-VCLIP
(``slowfast/models/temporalclip_video_model.py``: ``TemporalClipVideo.forward`` / ``text_prompt``,
``tools/train_net.py:train_epoch`` with ``LINEAR_CONNECT_CLIMB``, ``weight_average_tool.py``,
``tools/test_net.py`` with ``PATCHING_RATIO``).

The paper fine-tunes every visual weight theta of CLIP. openmer keeps encoders frozen, so theta
is a (D, D) linear map applied to the cached, projected clip features of the vision encoder
(``block``): theta_0 = identity is zero-shot CLIP exactly, and ``theta @ P`` is a fine-tuned
visual projection (P = CLIP's ``visual_projection``). Because the interpolation is linear,
interpolating theta is interpolating that projection. What the paper does to theta is done here:

- classifier: per class, the mean of the L2-normalised embeddings of the class sentences
  (``templates``), renormalised (:func:`zero_shot_weights`); logits ``100 cos(theta f, w_k)``;
- training (Eq. 6-7, ``LINEAR_CONNECT_CLIMB``): ``L = CE(f_theta) + 0.5 CE(f_theta_alpha)`` with
  ``theta_alpha = alpha theta_0 + (1 - alpha) theta``, ``alpha ~ U(0, 0.6)`` each step, and the
  second term's gradient taken at theta_alpha (not scaled by ``1 - alpha``);
- SWA: the mean of theta at the end of epochs 2..E (:meth:`OpenVCLIP.on_epoch_end`);
- test weights (weight patching): ``theta* = 0.5 theta_0 + 0.5 theta_SWA``.

Deviations (``docs/methods.md``): no temporal attention over neighbouring frames (the cached
features are the mean of the frame features of the frozen tower), so the logits are those of
the clip feature, not the mean of per-frame logits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Self

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from openmer.errors import ConfigError
from openmer.methods.base import Batch, LossOutput, OpenSetScores
from openmer.methods.feature_method import FeatureMethod, FeatureMethodConfig
from openmer.methods.posthoc import HeadOutputs
from openmer.methods.registry import register

#: emotion wordings of CLIP's video prompt templates (the reference's 28 are Kinetics action templates)
DEFAULT_TEMPLATES = (
    "a photo of a person feeling {}.",
    "a video of a person feeling {}.",
    "a face showing {}.",
    "a video of {}.",
    "a photo of {}.",
)


class OpenVCLIPConfig(FeatureMethodConfig):
    """Open-VCLIP options (reference defaults of ``train_tclip_interpolation_0.0-0.6_ratio0.5.sh``).

    Attributes:
        block: the feature block that holds the vision encoder's projected clip features (its
            width must equal the text encoder's embedding width); ``None`` = the whole vector.
        templates: class sentences, ``{}`` = class name; their mean embedding is the class's
            zero-shot weight.
        logit_scale: CLIP's ``logit_scale.exp()`` (100).
        alpha_max: theta_alpha's alpha is drawn from U(0, alpha_max) each step (0.6).
        weight_interp: weight of the interpolated cross-entropy (0.5).
        swa_start_epoch: theta enters the running average from this epoch on (1-based; 2 = the
            reference's epochs 2..E).
        patch_ratio: theta* = patch_ratio theta_0 + (1 - patch_ratio) theta_SWA (0.5).
        ``hidden_dim``, ``embed_dim`` and ``dropout`` are not used: theta is the only learned tensor.
    """

    method: str = "openvclip"
    block: str | None = "video"
    templates: tuple[str, ...] = DEFAULT_TEMPLATES
    logit_scale: float = Field(default=100.0, gt=0)
    alpha_max: float = Field(default=0.6, ge=0, le=1)
    weight_interp: float = Field(default=0.5, ge=0)
    swa_start_epoch: int = Field(default=2, ge=1)
    patch_ratio: float = Field(default=0.5, ge=0, le=1)


@torch.no_grad()
def zero_shot_weights(text_encoder: Any, classes: Sequence[str], templates: Sequence[str]) -> Tensor:
    """CLIP's zero-shot classifier: per class, the renormalised mean of its normalised sentence embeddings.

    Args:
        text_encoder: callable ``list[str] -> (N, D_T)`` (a :class:`~openmer.backbones.base.TextEncoder`).
        classes: the K class names.
        templates: T sentences with ``{}`` for the class name.

    Returns:
        (K, D_T) unit rows.

    Source: Open-VCLIP ``TemporalClipVideo.achieve_csf_matrix`` (CLIP's prompt ensembling).
    """
    sentences = [t.format(c) for c in classes for t in templates]
    emb = F.normalize(text_encoder(sentences).float(), dim=-1).view(len(classes), len(templates), -1)
    return F.normalize(emb.mean(dim=1), dim=-1)


def interpolate(theta_zero: Tensor, theta: Tensor, alpha: float | Tensor) -> Tensor:
    """``alpha theta_0 + (1 - alpha) theta`` (Open-VCLIP Eq. 6; weight patching with ``alpha = 0.5``)."""
    return alpha * theta_zero + (1 - alpha) * theta


def cosine_logits(features: Tensor, theta: Tensor, class_weights: Tensor, scale: float) -> tuple[Tensor, Tensor]:
    """``scale cos(theta f, w_k)`` (N, K), and the mapped features ``theta f`` (N, D).

    Args:
        features: (N, D) clip features.
        theta: (D, D) the linear map on them.
        class_weights: (K, D) zero-shot class weights.
    """
    mapped = features @ theta.t()
    return scale * F.normalize(mapped, dim=-1) @ F.normalize(class_weights, dim=-1).t(), mapped


@register("openvclip")
class OpenVCLIP(FeatureMethod[OpenVCLIPConfig]):
    """Open-VCLIP's interpolated weight optimisation on a linear map of cached CLIP video features.

    Built with :meth:`build` (``text_encoder=`` gives the zero-shot class weights, kept in a
    buffer, so a loaded model needs no text encoder). :meth:`unavailable` says when it cannot run.
    """

    config_class = OpenVCLIPConfig
    config: OpenVCLIPConfig
    own_score = "msp"
    theta_zero: Tensor
    class_weights: Tensor
    swa_sum: Tensor
    swa_count: Tensor

    def __init__(self, config: OpenVCLIPConfig, known_classes: Sequence[str]):
        super().__init__(config, known_classes)
        layout = dict(config.block_layout())
        if config.block is not None and config.block not in layout:
            raise ConfigError(f"openvclip reads the {config.block!r} feature block; the features have {sorted(layout)}")
        start = 0
        for name, width in config.block_layout():
            if name == config.block:
                break
            start += width
        self._cols = (start, layout[config.block]) if config.block is not None else (0, config.input_dim)
        d = self._cols[1]
        self.theta = nn.Parameter(torch.eye(d))
        self.register_buffer("theta_zero", torch.eye(d), persistent=False)
        self.register_buffer("class_weights", torch.zeros(self.num_classes, d))
        self.register_buffer("swa_sum", torch.zeros(d, d))
        self.register_buffer("swa_count", torch.zeros(()))

    def build_embedding(self, config: FeatureMethodConfig) -> nn.Module:
        return nn.Identity()  # zero-shot CLIP needs the encoder's features as they are

    def block_mean(self) -> Tensor:
        """Zeros (input_dim,): the method keeps no training statistics (its features are used as they
        are), so an absent block is zeros, whose cosine with every class weight is 0."""
        return torch.zeros(self.config.input_dim, device=self.theta.device)

    @classmethod
    def unavailable(cls, config: OpenVCLIPConfig, *, text_encoder: Any = None, **_: Any) -> str | None:
        """Why Open-VCLIP cannot run: no text encoder for the zero-shot weights, no ``block`` in the
        features, or class embeddings of another width than the video features (not one space)."""
        if text_encoder is None:
            return "needs a text encoder for its zero-shot class weights"
        layout = dict(config.block_layout())
        if config.block is not None and config.block not in layout:
            return f"reads the {config.block!r} feature block; these features have {', '.join(layout)}"
        width = layout[config.block] if config.block is not None else config.input_dim
        d_t = int(text_encoder.embed_dim)
        if width != d_t:
            return (f"its {config.block or 'feature'} features ({width}-d) and the text encoder's class embeddings "
                    f"({d_t}-d) are not one embedding space "
                    "(Open-VCLIP needs a vision-language pair: the paper profile's CLIP)")
        return None

    @classmethod
    def build(cls, config: OpenVCLIPConfig, known_classes: Sequence[str], *, text_encoder: Any = None,
              extra: Mapping[str, Any] | None = None, **kwargs: Any) -> Self:
        """Construct; with ``text_encoder``, its zero-shot class weights (:func:`zero_shot_weights`)."""
        method = super().build(config, known_classes, extra=extra)
        if text_encoder is not None:
            reason = cls.unavailable(config, text_encoder=text_encoder)
            if reason:
                raise ConfigError(f"openvclip {reason}")
            method.class_weights.copy_(zero_shot_weights(text_encoder, method.known_classes, config.templates))
        return method

    def setup(self, train: Iterable[Batch]) -> None:
        """Check the zero-shot weights are set; start a new weight average.

        Raises:
            ConfigError: built without a text encoder (no zero-shot class weights).
        """
        if not bool(self.class_weights.abs().sum() > 0):
            raise ConfigError(
                "openvclip has no zero-shot class weights: build it with OpenVCLIP.build(..., text_encoder=...)")
        self.swa_sum.zero_()
        self.swa_count.zero_()
        self.reset_posthoc()

    def video_features(self, batch: Batch) -> Tensor:
        """(B, D) the ``block`` columns of ``batch["features"]``."""
        start, width = self._cols
        return self.input_features(batch)[:, start:start + width]

    def test_theta(self) -> Tensor:
        """theta* = patch_ratio theta_0 + (1 - patch_ratio) theta_SWA (theta itself before any epoch is averaged)."""
        theta = self.swa_sum / self.swa_count if bool(self.swa_count > 0) else self.theta
        return interpolate(self.theta_zero, theta, self.config.patch_ratio)

    def on_epoch_end(self, epoch: int, num_epochs: int) -> None:
        """Add theta to the running average (SWA) from epoch ``swa_start_epoch`` on."""
        if epoch + 1 >= self.config.swa_start_epoch:
            with torch.no_grad():
                self.swa_sum.add_(self.theta)
                self.swa_count.add_(1)

    def head(self, batch: Batch) -> HeadOutputs:
        """Logits with theta* (eval) or theta (training) and the mapped features."""
        theta = self.theta if self.training else self.test_theta()
        logits, mapped = cosine_logits(self.video_features(batch), theta, self.class_weights, self.config.logit_scale)
        return HeadOutputs(logits, mapped)

    def training_step(self, batch: Batch) -> LossOutput:
        """``CE(f_theta) + weight_interp CE(f_theta_alpha)``, the second gradient taken at theta_alpha."""

        c = self.config
        x, y = self.video_features(batch), self.labels(batch)
        logits, _ = cosine_logits(x, self.theta, self.class_weights, c.logit_scale)
        alpha = c.alpha_max * torch.rand((), device=x.device)
        # value theta_alpha; gradient with respect to theta = the gradient at theta_alpha (LINEAR_CONNECT_CLIMB)
        theta_alpha = self.theta + (interpolate(self.theta_zero, self.theta, alpha) - self.theta).detach()
        logits_alpha, _ = cosine_logits(x, theta_alpha, self.class_weights, c.logit_scale)
        return LossOutput({"loss_ce": F.cross_entropy(logits, y),
                           "loss_interp": c.weight_interp * F.cross_entropy(logits_alpha, y)}, logits)

    def loss(self, batch: Batch) -> Tensor:
        return self.training_step(batch).total

    @torch.no_grad()
    def own_scores(self, batch: Batch) -> OpenSetScores:
        """confidence = max softmax of the logits with theta*, prediction = argmax."""
        probs = torch.softmax(self.head(batch).logits, dim=1)
        conf, pred = probs.max(dim=1)
        return OpenSetScores(conf, pred, probs)
