"""MSP: maximum softmax probability of a closed-set classifier (Hendrycks & Gimpel, ICLR 2017)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from openmer.methods.base import Batch, OpenSetScores
from openmer.methods.feature_method import FeatureMethod, FeatureMethodConfig
from openmer.methods.posthoc import HeadOutputs
from openmer.methods.registry import register


class MSPConfig(FeatureMethodConfig):
    method: str = "msp"


@register("msp")
class MSP(FeatureMethod[MSPConfig]):
    """Softmax classifier on features; confidence = max softmax probability.

    Input: ``batch["features"]`` (B, D). Training: cross-entropy on known classes.
    Source: Hendrycks & Gimpel, "A Baseline for Detecting Misclassified and Out-of-Distribution
    Examples in Neural Networks", ICLR 2017.
    """

    config_class = MSPConfig
    own_score = "msp"

    def __init__(self, config: MSPConfig, known_classes: Sequence[str]):
        super().__init__(config, known_classes)
        self.classifier = nn.Linear(config.embed_dim, self.num_classes)

    def head(self, batch: Batch) -> HeadOutputs:
        z = self.embedding(self.input_features(batch))
        return HeadOutputs(self.classifier(z), z)

    def class_parameters(self) -> tuple[str, ...]:
        """One row per known class: a new class adds one (:mod:`openmer.discovery.enrol`)."""
        return ("classifier.weight", "classifier.bias")

    def logits(self, batch: Batch) -> Tensor:
        """(B, K) classifier logits."""
        return self.head(batch).logits

    def linear_head(self) -> tuple[Tensor, Tensor]:
        return self.classifier.weight, self.classifier.bias

    def loss(self, batch: Batch) -> Tensor:
        return F.cross_entropy(self.logits(batch), self.labels(batch))

    @torch.no_grad()
    def own_scores(self, batch: Batch) -> OpenSetScores:
        probs = torch.softmax(self.logits(batch), dim=1)
        conf, pred = probs.max(dim=1)
        return OpenSetScores(conf, pred, probs)
