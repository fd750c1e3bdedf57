"""CSSR: class-specific semantic reconstruction, on frozen features (RCSSR and PCSSR).

Source: Huang, Wang, Hu, Cheng, "Class-Specific Semantic Reconstruction for Open Set
Recognition", TPAMI 2023; reference code xyzedd/CSSR, ``methods/cssr_ft.py`` (the frozen-backbone
variant: ``CSSRClassifier``, ``BaselineModel.forward.pred_score``, ``CSSRCriterion``) and
``methods/cssr.py`` (``AutoEncoder``, ``CSSRClassifier.ae_error``, ``clip_len = 100``).

One autoencoder per known class reconstructs the sample's feature ``z``; the class logits are
scaled L1 reconstruction errors. PCSSR (point-to-manifold): class k = the autoencoder that
reconstructs ``z`` best, ``l_k = -gamma e_k``. RCSSR (reciprocal): autoencoder k models
everything *but* class k, so class k = the worst reconstruction, ``l_k = +gamma e_k``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from openmer.methods.base import Batch, OpenSetScores
from openmer.methods.feature_method import FeatureMethod, FeatureMethodConfig
from openmer.methods.heads import FeatureEmbedding
from openmer.methods.posthoc import HeadOutputs
from openmer.methods.registry import register

#: ``CSSRClassifier.clip_len``: logits are clamped to [-100, 100]
CLIP = 100.0


class CSSRConfig(FeatureMethodConfig):
    """CSSR options (reference defaults of ``configs/rcssr.json`` / ``configs/pcssr.json``).

    Attributes:
        variant: ``"rcssr"`` (default: the variant the frozen-backbone example runs) or ``"pcssr"``.
        latent_dim: width of each class autoencoder's code (reference 64; frozen ImageNet configs 16 / 32).
        gamma: the logit scale (reference 0.1).
        projection_dim: ``> 0`` adds the reference's ``Linear + BatchNorm + LeakyReLU`` projection of the
            standardised features before the autoencoders; ``-1`` (reference default) uses them directly.
            ``hidden_dim``, ``embed_dim`` and ``dropout`` are not used: CSSR has no other embedding.
    """

    method: str = "cssr"
    variant: Literal["rcssr", "pcssr"] = "rcssr"
    latent_dim: int = Field(default=64, gt=0)
    gamma: float = Field(default=0.1, gt=0)
    projection_dim: int = Field(default=-1, ge=-1)


def reconstruction_logits(z: Tensor, encoders: Tensor, decoders: Tensor, *, gamma: float, reciprocal: bool) -> Tensor:
    """CSSR logits ``l_k = clamp(s gamma ||z - W_k^dec tanh(W_k^enc z)||_1, -100, 100)``.

    Args:
        z: (B, D) features.
        encoders: (K, L, D) per-class encoder weights (no bias, as the reference's 1x1 convolutions).
        decoders: (K, D, L) per-class decoder weights.
        gamma: logit scale.
        reciprocal: ``True`` (RCSSR, s = +1) or ``False`` (PCSSR, s = -1).

    Returns:
        (B, K) logits; ``argmax`` = the worst (RCSSR) or best (PCSSR) reconstruction.

    Source: xyzedd/CSSR ``AutoEncoder.forward`` (``ae_hidden = []``: one tanh code layer, linear
    output) and ``CSSRClassifier.ae_error`` / ``forward`` (L1 error, ``reduction = ±gamma``, clamp).
    """
    code = torch.tanh(torch.einsum("kld,bd->bkl", encoders, z))
    recon = torch.einsum("kdl,bkl->bkd", decoders, code)
    error = (z[:, None, :] - recon).abs().sum(dim=2)
    sign = 1.0 if reciprocal else -1.0
    return torch.clamp(sign * gamma * error, -CLIP, CLIP)


def cssr_confidence(logits: Tensor, z: Tensor, *, reciprocal: bool) -> tuple[Tensor, Tensor]:
    """The reference's score of the predicted class, and the prediction.

    RCSSR: ``l_pred`` (``"score": "R[0]"``). PCSSR: ``l_pred / (mean_d |z_d|)^2``
    (``configs/pcssr.json``, ``"R[0]/R[1]/R[1]"``): the (negative) error relative to the feature's magnitude.

    Args:
        logits: (B, K) :func:`reconstruction_logits`.
        z: (B, D) the reconstructed features.
        reciprocal: RCSSR (``True``) or PCSSR.

    Returns:
        ``(confidence (B,), prediction (B,))``, prediction = ``argmax softmax(l)``.
    """
    top, pred = logits.max(dim=1)
    if reciprocal:
        return top, pred
    return top / z.abs().mean(dim=1).pow(2).clamp_min(1e-12), pred


@register("cssr")
class CSSR(FeatureMethod[CSSRConfig]):
    """K class-specific autoencoders on the standardised frozen features (CSSR, ``cssr_ft``).

    Training: cross-entropy on the reconstruction logits (``CSSRCriterion``, spatial size 1).
    Inference: :func:`cssr_confidence`; prediction = argmax logit.
    """

    config_class = CSSRConfig
    config: CSSRConfig

    def __init__(self, config: CSSRConfig, known_classes: Sequence[str]):
        super().__init__(config, known_classes)
        d = config.projection_dim if config.projection_dim > 0 else config.input_dim
        self.projection = (nn.Sequential(nn.Linear(config.input_dim, d, bias=False), nn.BatchNorm1d(d), nn.LeakyReLU())
                           if config.projection_dim > 0 else nn.Identity())
        k, latent = self.num_classes, config.latent_dim
        # nn.Conv2d's default init (kaiming uniform, a = sqrt(5)) is U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        self.encoders = nn.Parameter(torch.empty(k, latent, d).uniform_(-d ** -0.5, d ** -0.5))
        self.decoders = nn.Parameter(torch.empty(k, d, latent).uniform_(-latent ** -0.5, latent ** -0.5))

    @property
    def own_score(self) -> str:  # type: ignore[override]
        return self.config.variant

    def build_embedding(self, config: FeatureMethodConfig) -> nn.Module:
        return FeatureEmbedding(config.input_dim, learned=False)

    def head(self, batch: Batch) -> HeadOutputs:
        z = self.projection(self.embedding(self.input_features(batch)))
        c = self.config
        logits = reconstruction_logits(z, self.encoders, self.decoders, gamma=c.gamma, reciprocal=c.variant == "rcssr")
        return HeadOutputs(logits, z)

    def loss(self, batch: Batch) -> Tensor:
        return F.cross_entropy(self.head(batch).logits, self.labels(batch))

    @torch.no_grad()
    def own_scores(self, batch: Batch) -> OpenSetScores:
        logits, z = self.head(batch)
        conf, pred = cssr_confidence(logits, z, reciprocal=self.config.variant == "rcssr")
        return OpenSetScores(conf, pred, torch.softmax(logits, dim=1))
