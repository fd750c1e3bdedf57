"""Rows of HCEP's ablation tables that no :class:`HCEPConfig` option gives, built from HCEP's public pieces.

- :class:`SMEPPromptedARPL`: Table 5 "Baseline+SMEP", the ARPL baseline's head on SMEP-prompted
  features (:meth:`HCEP.sample_features`), prompts and head trained together by the ARPL loss.

(Table 6 bottom, CUEP's learnable text tokens, is the HCEP option ``cuep_text``.) It is built like
HCEP, ``build(config, known_classes, encoders)`` (:data:`openmer.benchmarks.media.PromptedBuilder`),
so the media benchmark trains and scores it in its one trial loop. It is an ablation model for ``openmer ablate``,
not registered method; ``docs/interpretation.md`` ("Ablation options") gives the reading of each row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

from openmer.methods.arpl import ARPL, ARPLConfig
from openmer.methods.base import Batch, OpenSetMethod, OpenSetScores
from openmer.methods.hcep import HCEP, HCEPConfig

__all__ = ["SMEPPromptedARPL", "smep_prompted_arpl"]


class SMEPPromptedARPL(OpenSetMethod[ARPLConfig]):
    """HCEP Table 5 "Baseline+SMEP": the ARPL head on SMEP-prompted multimodal features.

    F_M = [F_T, F_V, F_A] are HCEP's SMEP-prompted, per-block L2-normalised encoder outputs
    (HCEP Sec. 3.3, Eq. 1-3; :meth:`HCEP.sample_features`); the head is the multimodal ARPL
    baseline's (:class:`~openmer.methods.arpl.ARPL`: standardisation, embedding, reciprocal
    points). The row has no CUEP, no L_emo and no L_osr, so the only loss is ARPL's, and it trains
    the prompts and the head together. The standardisation statistics are those of the training
    clips' prompted features at the start (present values only); a clip's absent block is filled
    with the head's training mean, the rule of every feature head
    (:func:`openmer.data.feature_blocks.fill_absent_blocks`).

    Args:
        hcep: supplies SMEP and the frozen encoders; built with ``use_cuep``, ``use_loss_emo`` and
            ``use_loss_osr`` off (its class features are never used).
        head: the ARPL head, ``input_dim`` = sum of the block dimensions.
    """

    name = "smep_arpl"
    config_class = ARPLConfig

    def __init__(self, hcep: HCEP, head: ARPL):
        super().__init__(head.config, hcep.known_classes)
        self.hcep = hcep
        self.arpl = head
        self._dims = [hcep.block_dims[m] for m in hcep.modalities]

    def _prompted(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """(B, sum D_m) prompted F_M with gradients to SMEP, and (B, sum D_m) bool presence."""
        blocks, present = self.hcep.sample_features(batch)
        x = torch.cat([blocks[m] for m in self.hcep.modalities], dim=1)
        mask = torch.repeat_interleave(present, torch.tensor(self._dims, device=present.device), dim=1)
        return x, mask

    def _head_input(self, batch: Batch) -> Tensor:
        x, mask = self._prompted(batch)
        return torch.where(mask, x, self.arpl.block_mean())  # absent block -> training mean

    @torch.no_grad()
    def setup(self, train: Iterable[Batch]) -> None:
        """HCEP's setup, then the head's statistics on the initial prompted training features."""
        batches = list(train)
        self.hcep.setup(batches)
        stats = []
        for b in batches:
            x, mask = self._prompted(b)
            stats.append({"features": x, "features_present": mask})
        self.arpl.setup(stats)

    def forward(self, batch: Batch) -> Tensor:
        return self.loss(batch)

    def loss(self, batch: Batch) -> Tensor:
        """ARPL's loss on the prompted features (gradients reach SMEP's prompts)."""
        return self.arpl.loss({"features": self._head_input(batch), "label": batch["label"]})

    @torch.no_grad()
    def score(self, batch: Batch) -> OpenSetScores:
        return self.arpl.score({"features": self._head_input(batch)})

    @torch.no_grad()
    def features(self, batch: Batch) -> Tensor:
        """F_M (B, sum D_m) as the head sees it (for t-SNE, Figs. 6 and 8)."""
        return self._head_input(batch)


def smep_prompted_arpl(config: HCEPConfig, known_classes: Sequence[str], encoders: dict[str, Any]) -> SMEPPromptedARPL:
    """A :class:`SMEPPromptedARPL` on ``encoders`` (the HCEP part from ``config``, ARPL defaults)."""
    hcep = HCEP(config, known_classes, encoders)
    head = ARPL(ARPLConfig(input_dim=sum(hcep.block_dims.values())), known_classes)
    return SMEPPromptedARPL(hcep, head)
