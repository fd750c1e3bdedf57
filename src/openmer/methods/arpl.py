"""ARPL: adversarial reciprocal points learning, without the adversarial generator.

This is HCEP's multimodal "Baseline" when the input is the concatenation of the modalities'
frozen features (HCEP Sec. 4.1.3).

Source: Chen et al., "Adversarial Reciprocal Points Learning for Open Set Recognition",
TPAMI 2021; reference code iCGY96/ARPL ``loss/ARPLoss.py`` and ``loss/Dist.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from openmer.methods.base import Batch, OpenSetScores
from openmer.methods.distance import composite_distance
from openmer.methods.feature_method import FeatureMethod, FeatureMethodConfig
from openmer.methods.posthoc import HeadOutputs
from openmer.methods.registry import register


class ARPLConfig(FeatureMethodConfig):
    method: str = "arpl"
    temperature: float = Field(default=1.0, gt=0)
    weight_pl: float = Field(default=0.1, ge=0)  # weight of the radius margin term
    margin: float = 1.0
    #: the own score: "logit" = max composite distance, as ARPL's core/test.py (reported as
    #: ``max_logit``); "softmax" = max softmax of it over the temperature (reported as ``msp``)
    confidence: Literal["logit", "softmax"] = "logit"


def arpl_loss(embedding: Tensor, labels: Tensor, reciprocal_points: Tensor, radius: Tensor, *,
              temperature: float = 1.0, weight_pl: float = 0.1, margin: float = 1.0) -> Tensor:
    """ARPL's training loss (reference ``ARPLoss.forward``).

    ``CE(d(z, P) / T, y) + weight_pl * max(0, ||z - P_y||^2 / E - R + margin)``, where ``d`` is
    :func:`~openmer.methods.distance.composite_distance` and ``R`` the learnable radius.

    Args:
        embedding: (B, E).
        labels: (B,) known-class indices.
        reciprocal_points: (K, E).
        radius: scalar tensor.
    """
    logits = composite_distance(embedding, reciprocal_points)
    loss = F.cross_entropy(logits / temperature, labels)
    dist_known = (embedding - reciprocal_points[labels]).pow(2).mean(dim=1)
    loss_r = F.margin_ranking_loss(radius.expand_as(dist_known), dist_known, torch.ones_like(dist_known), margin=margin)
    return loss + weight_pl * loss_r


@register("arpl")
class ARPL(FeatureMethod[ARPLConfig]):
    """Reciprocal points on a learned embedding of the features.

    Logits = composite distance of the embedding to each class's reciprocal point (far from the
    reciprocal point = that class). Confidence = max logit (``confidence="logit"``, as the
    reference test code) or max softmax; any post-hoc score with ``score=``.
    """

    config_class = ARPLConfig
    config: ARPLConfig
    scores: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "max_logit": {"confidence": "logit", "score": None}, "msp": {"confidence": "softmax", "score": None},
    }

    def __init__(self, config: ARPLConfig, known_classes: Sequence[str]):
        super().__init__(config, known_classes)
        self.reciprocal_points = nn.Parameter(0.1 * torch.randn(self.num_classes, config.embed_dim))
        self.radius = nn.Parameter(torch.zeros(()))

    @property
    def own_score(self) -> str:  # type: ignore[override]
        return "max_logit" if self.config.confidence == "logit" else "msp"

    def head(self, batch: Batch) -> HeadOutputs:
        z = self.embedding(self.input_features(batch))
        return HeadOutputs(composite_distance(z, self.reciprocal_points), z)

    def class_parameters(self) -> tuple[str, ...]:
        """One row per known class: a new class adds one (:mod:`openmer.discovery.enrol`)."""
        return ("reciprocal_points",)

    def logits(self, batch: Batch) -> Tensor:
        """(B, K) composite distances to the reciprocal points."""
        return self.head(batch).logits

    def loss(self, batch: Batch) -> Tensor:
        c = self.config
        return arpl_loss(self.embedding(self.input_features(batch)), self.labels(batch), self.reciprocal_points,
                         self.radius, temperature=c.temperature, weight_pl=c.weight_pl, margin=c.margin)

    @torch.no_grad()
    def own_scores(self, batch: Batch) -> OpenSetScores:
        logits = self.logits(batch)
        probs = torch.softmax(logits / self.config.temperature, dim=1)
        if self.config.confidence == "logit":
            conf, pred = logits.max(dim=1)
        else:
            conf, pred = probs.max(dim=1)
        return OpenSetScores(conf, pred, probs)
