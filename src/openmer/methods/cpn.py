"""CPN*: convolutional prototype network trained one-versus-all, Dempster-Shafer unknown probability.

HCEP's CPN* row [34]: Cheng, Zhang, Liu, "Unified classification and rejection: a one-versus-all
framework", Machine Intelligence Research 2024; reference code zhen-cheng121/CPN_OVA_unified
(``CIFAR/models/wideresnet_cpn_ova.py``: ``disatance`` and the thresholds;
``CIFAR/train_cifar_ova.py``: the hybrid OVA + CE loss, PL, temperature warm-up;
``CIFAR/eval_cifar_ova.py``: ``get_ood_scores`` with ``--score ova``). The original CPN loss
(``training="dce"``: Yang, Zhang, Yin, Liu, "Convolutional prototype network for open set
recognition", TPAMI 2020) follows the same repository's ``train_cifar_dce.py`` / ``eval_cifar_dce.py``.

On frozen features the convolutional backbone is replaced by the :class:`FeatureEmbedding` MLP of
the concatenated modality features (HCEP Sec. 4.1.4: only the feature extractor changes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from openmer.methods.base import Batch, OpenSetScores
from openmer.methods.distance import squared_euclidean
from openmer.methods.feature_method import FeatureMethod, FeatureMethodConfig
from openmer.methods.posthoc import HeadOutputs
from openmer.methods.registry import register

#: reference defaults that differ between the modes (``cifar_wrn_ova.sh`` / ``cifar_wrn_dce.sh``)
MODE_DEFAULTS = {
    "ova": {"temperature": 3.0, "pl_normalized": True}, "dce": {"temperature": 2.0, "pl_normalized": False},
}


class CPNConfig(FeatureMethodConfig):
    """CPN* options (reference: ``cifar_wrn_ova.sh`` / ``cifar_wrn_dce.sh``, the CIFAR-10 WRN-28-10 runs).

    ``temperature`` and ``pl_normalized`` default to the reference value of the chosen ``training``
    mode (:data:`MODE_DEFAULTS`) when not given.

    Attributes:
        training: ``"ova"`` (CPN*, default) or ``"dce"`` (the original CPN: distance-based CE + PL).
        temperature: T of the logits ``-T (d - tau)`` (reference 3.0, DCE 2.0; ImageNet 1.5).
        warmup_fraction: T rises linearly over this fraction of the epochs (reference: 40 of 200
            epochs, ``T_e = min(e / 40 * T, T)``); scoring always uses the full T.
        alpha: weight of the OVA (binary) term against the Dempster-Shafer CE term (reference 0.98).
        weight_pl: weight of the prototype loss PL (reference 0.05).
        pl_normalized: PL on L2-normalised features and prototypes (reference ``--pl_normalized`` in
            the OVA runs; the DCE runs pull the raw features to their prototypes).
        margin: ``m`` in ``min(1 - p(unk), max_k p(k) - m)`` (``mix_thres``; CIFAR-10 -0.95, ImageNet 0).
    """

    method: str = "cpn"
    training: Literal["ova", "dce"] = "ova"
    temperature: float = Field(default=3.0, gt=0)
    warmup_fraction: float = Field(default=0.2, ge=0, le=1)
    alpha: float = Field(default=0.98, ge=0, le=1)
    weight_pl: float = Field(default=0.05, ge=0)
    pl_normalized: bool = True
    margin: float = -0.95

    @model_validator(mode="before")
    @classmethod
    def _mode_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            mode = data.get("training", "ova")
            data = {**MODE_DEFAULTS.get(mode, {}), **data}
        return data


def ova_logits(dist: Tensor, thresholds: Tensor, temperature: float) -> Tensor:
    """One-versus-all logits ``l_k = -T (d_k - tau_k)``: class k's binary classifier says "k" when d_k < tau_k.

    Args:
        dist: (B, K) squared Euclidean distances to the prototypes, not divided by the dimension
            (reference ``disatance``; :func:`~openmer.methods.distance.squared_euclidean`).
        thresholds: (K,) per-class rejection thresholds tau.
        temperature: T.

    Returns:
        (B, K).
    """
    return -(dist - thresholds) * temperature


def dempster_shafer_probabilities(logits: Tensor) -> Tensor:
    """``p(k|x) = e^{l_k} / (1 + sum_j e^{l_j})`` and ``p(unk|x) = 1 / (1 + sum_j e^{l_j})``.

    The K binary (sigmoid) classifiers combined by Dempster's rule, i.e. ``softmax([l, 0])``
    (Cheng et al. 2024, Sec. 3; reference ``logits_ce = cat(logits, zeros)``).

    Args:
        logits: (B, K) :func:`ova_logits`.

    Returns:
        (B, K + 1): the K known-class probabilities, then p(unk); rows sum to 1.
    """
    return torch.softmax(torch.cat([logits, logits.new_zeros(len(logits), 1)], dim=1), dim=1)


def ova_confidence(logits: Tensor, margin: float = -0.95) -> Tensor:
    """``min(1 - p(unk|x), max_k p(k|x) - m)`` (reference ``score_mix``, ``--score ova``).

    With ``m = 0`` this is ``max_k p(k|x)``, since ``max_k p(k) <= sum_k p(k) = 1 - p(unk)``.

    Args:
        logits: (B, K).
        margin: m (``mix_thres``).

    Returns:
        (B,) float64; in [0, 1] for ``m <= 0``; tends to 0 far from every prototype.

    Computed in float64 and in log space, ``1 - p(unk) = sigmoid(logsumexp(l))`` and
    ``p(k) = exp(l_k - softplus(logsumexp(l)))``: the reference's float32
    ``1 / (1 + sum(exp(l)))`` rounds p(unk) to exactly 1 once ``sum_k exp(l_k) < 2^-24``
    (``1 + s`` rounds to 1), i.e. once every logit is below about ``-16.6 - log K`` (-18.4 for
    K = 6; measured, not -88, where ``exp`` itself underflows), and those samples then tie at
    confidence 0 (same values otherwise).
    """
    lse = torch.logsumexp(logits.double(), dim=1)
    p_max = torch.exp(logits.double().max(dim=1).values - F.softplus(lse))
    return torch.minimum(torch.sigmoid(lse), p_max - margin)


def prototype_loss(features: Tensor, prototypes: Tensor, labels: Tensor, *, normalized: bool) -> Tensor:
    """PL ``(1 / 2B) sum_i ||f_i - c_{y_i}||^2`` (reference, ``pl_loss`` before its weight).

    Args:
        features: (B, E).
        prototypes: (K, E).
        labels: (B,).
        normalized: L2-normalise features and prototypes first (``--pl_normalized``).
    """
    if normalized:
        features, prototypes = F.normalize(features, dim=1), F.normalize(prototypes, dim=1)
    return (features - prototypes[labels]).pow(2).sum() / (2 * len(features))


def cpn_ova_loss(logits: Tensor, features: Tensor, prototypes: Tensor, labels: Tensor, *, alpha: float,
                 weight_pl: float, pl_normalized: bool) -> Tensor:
    """``alpha sum_k BCE(l_k, 1[y=k]) + (1 - alpha) CE([l, 0], y) + weight_pl PL`` (batch means).

    Reference ``train_cifar_ova.py``: ``BCEWithLogitsLoss(logits, one_hot) * num_classes`` (the sum
    over classes of the mean binary loss), the CE over the K + 1 Dempster-Shafer outputs, and PL.
    (The reference also divides the first two terms by K for its ResNet-18 CIFAR-10 run only; not here.)

    Args:
        logits: (B, K) :func:`ova_logits`.
        features: (B, E).
        prototypes: (K, E).
        labels: (B,) known-class indices.
    """
    k = logits.shape[1]
    one_hot = F.one_hot(labels, k).to(logits.dtype)
    ova = F.binary_cross_entropy_with_logits(logits, one_hot) * k
    ce = F.cross_entropy(torch.cat([logits, logits.new_zeros(len(logits), 1)], dim=1), labels)
    pl = prototype_loss(features, prototypes, labels, normalized=pl_normalized)
    return alpha * ova + (1.0 - alpha) * ce + weight_pl * pl


def warmup_temperature(epoch: int, num_epochs: int, temperature: float, fraction: float) -> float:
    """``T_e = min((e + 1) / W, 1) T`` with ``W = max(1, round(fraction * num_epochs))`` warm-up epochs.

    The reference's ``min(epoch / 40 * T, T)`` with 1-based epochs, for a run of any length.

    Args:
        epoch: 0-based epoch.
        num_epochs: total epochs.
        temperature: the full T.
        fraction: warm-up length as a fraction of ``num_epochs`` (0 = no warm-up).
    """
    warm = max(1, round(fraction * num_epochs))
    return min((epoch + 1) / warm, 1.0) * temperature


@register("cpn")
class CPN(FeatureMethod[CPNConfig]):
    """Prototypes + per-class thresholds on a learned embedding, trained one-versus-all (CPN*).

    ``training="ova"``: confidence :func:`ova_confidence`; ``training="dce"``: the original CPN,
    ``CE(-T d, y) + weight_pl PL``, confidence ``max_k -T d_k`` (``eval_cifar_dce.py --score dist``).
    Prediction = argmax logit = the nearest prototype (thresholds shift it in OVA mode).
    """

    config_class = CPNConfig
    config: CPNConfig

    def __init__(self, config: CPNConfig, known_classes: Sequence[str]):
        super().__init__(config, known_classes)
        self.prototypes = nn.Parameter(torch.rand(self.num_classes, config.embed_dim))  # reference: torch.rand
        if config.training == "ova":
            self.thresholds = nn.Parameter(torch.ones(self.num_classes))  # thres_type "multi"
        #: T of the current epoch (loss only; scores use the full T)
        self.train_temperature = config.temperature

    @property
    def own_score(self) -> str:  # type: ignore[override]
        return "ova" if self.config.training == "ova" else "max_logit"

    def on_epoch_start(self, epoch: int, num_epochs: int) -> None:
        c = self.config
        self.train_temperature = warmup_temperature(epoch, num_epochs, c.temperature, c.warmup_fraction)

    def _logits(self, z: Tensor, temperature: float) -> Tensor:
        dist = squared_euclidean(z, self.prototypes)
        if self.config.training == "ova":
            return ova_logits(dist, self.thresholds, temperature)
        return -dist * temperature

    def head(self, batch: Batch) -> HeadOutputs:
        z = self.embedding(self.input_features(batch))
        return HeadOutputs(self._logits(z, self.config.temperature), z)

    def loss(self, batch: Batch) -> Tensor:
        c = self.config
        z, y = self.embedding(self.input_features(batch)), self.labels(batch)
        logits = self._logits(z, self.train_temperature)
        if c.training == "ova":
            return cpn_ova_loss(logits, z, self.prototypes, y, alpha=c.alpha, weight_pl=c.weight_pl,
                                pl_normalized=c.pl_normalized)
        pl = prototype_loss(z, self.prototypes, y, normalized=c.pl_normalized)
        return F.cross_entropy(logits, y) + c.weight_pl * pl

    @torch.no_grad()
    def own_scores(self, batch: Batch) -> OpenSetScores:
        logits = self.head(batch).logits
        pred = logits.argmax(dim=1)
        if self.config.training == "ova":
            probs = dempster_shafer_probabilities(logits)[:, :-1]
            return OpenSetScores(ova_confidence(logits, self.config.margin), pred, probs)
        return OpenSetScores(logits.max(dim=1).values, pred, torch.softmax(logits, dim=1))
