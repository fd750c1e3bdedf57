"""Rows of HCEP's ablation tables that no :class:`HCEPConfig` option gives, built from HCEP's public pieces.

- :class:`SMEPPromptedARPL`: Table 5 "Baseline+SMEP", the ARPL baseline's head on SMEP-prompted
  features (:meth:`HCEP.sample_features`), prompts and head trained together by the ARPL loss.
- :class:`LearnableCUEPText`: Table 6 bottom, CUEP's text class features F_T+ / F_T- from learnable
  tokens, with or without the class name, instead of the fixed templates (an :class:`HCEP` whose
  :meth:`~HCEP.class_text_features` is replaced).

Both are built like HCEP, ``build(config, known_classes, encoders)``
(:data:`openmer.benchmarks.media.PromptedBuilder`), so the media benchmark trains and scores them
in its one HCEP trial loop. They are ablation models for ``openmer ablate``, not registered
methods; ``docs/interpretation.md`` ("Ablation options") gives the reading of each row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from openmer.methods.arpl import ARPL, ARPLConfig
from openmer.methods.base import Batch, OpenSetMethod, OpenSetScores
from openmer.methods.hcep import HCEP, HCEPConfig

__all__ = ["LearnableCUEPText", "SMEPPromptedARPL", "cuep_text_tokens", "smep_prompted_arpl"]


class SMEPPromptedARPL(OpenSetMethod):
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
        self.head = head
        self._dims = [hcep.block_dims[m] for m in hcep.modalities]

    def _prompted(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """(B, sum D_m) prompted F_M with gradients to SMEP, and (B, sum D_m) bool presence."""
        blocks, present = self.hcep.sample_features(batch)
        x = torch.cat([blocks[m] for m in self.hcep.modalities], dim=1)
        mask = torch.repeat_interleave(present, torch.tensor(self._dims, device=present.device), dim=1)
        return x, mask

    def _head_input(self, batch: Batch) -> Tensor:
        x, mask = self._prompted(batch)
        return torch.where(mask, x, self.head.embedding.mean)  # absent block -> training mean

    @torch.no_grad()
    def setup(self, train: Iterable[Batch]) -> None:
        """HCEP's setup, then the head's statistics on the initial prompted training features."""
        batches = list(train)
        self.hcep.setup(batches)
        stats = []
        for b in batches:
            x, mask = self._prompted(b)
            stats.append({"features": x, "features_present": mask})
        self.head.setup(stats)

    def forward(self, batch: Batch) -> Tensor:
        return self.loss(batch)

    def loss(self, batch: Batch) -> Tensor:
        """ARPL's loss on the prompted features (gradients reach SMEP's prompts)."""
        return self.head.loss({"features": self._head_input(batch), "label": batch["label"]})

    @torch.no_grad()
    def score(self, batch: Batch) -> OpenSetScores:
        return self.head.score({"features": self._head_input(batch)})

    @torch.no_grad()
    def features(self, batch: Batch) -> Tensor:
        """F_M (B, sum D_m) as the head sees it (for t-SNE, Figs. 6 and 8)."""
        return self._head_input(batch)


def smep_prompted_arpl(config: HCEPConfig, known_classes: Sequence[str], encoders: dict[str, Any]) -> SMEPPromptedARPL:
    """A :class:`SMEPPromptedARPL` on ``encoders`` (the HCEP part from ``config``, ARPL defaults)."""
    hcep = HCEP(config, known_classes, encoders)
    head = ARPL(ARPLConfig(input_dim=sum(hcep.block_dims.values())), known_classes)
    return SMEPPromptedARPL(hcep, head)


class LearnableCUEPText(HCEP):
    """HCEP Table 6 bottom: CUEP's text class features from learnable tokens.

    The paper's choice (the default :class:`HCEP`, "Fixed templates w/ labels") encodes the fixed
    sentences "This video is {k}" / "This video is not {k}" (CUEP, Sec. 3.4). Here F_T+ and F_T-
    come from learnable token embeddings entered at the text encoder's prompt entry (after the
    start token):

    - ``with_labels=True``, "Learnable tokens w/ labels" (CoOp's ``[V]_1 .. [V]_n [CLASS]``): one
      learnable context for the positive and one for the negative stream, shared by the classes,
      followed by the class name. They start at the token embeddings of the templates' words
      ("This video is", "This video is not"), so training starts from the paper's sentences.
    - ``with_labels=False``, "Learnable tokens w/o labels": per class and stream, n learnable
      tokens and no class name (an empty text); n = the negative template's token count; they
      start as N(0, 0.02^2) (CoOp's random context), drawn from ``config.seed``.

    Gradients reach the tokens through L_emo (F_T+) and the text block of L_osr (F_T+, F_T-);
    the features are recomputed at each call and cached with the other class features in eval
    mode by :meth:`HCEP.class_features`.

    Args:
        config, known_classes, encoders: as :class:`HCEP`.
        with_labels: keep the class names after the learnable tokens.
    """

    def __init__(self, config: HCEPConfig, known_classes: Sequence[str], encoders: dict[str, Any], *,
                 with_labels: bool):
        super().__init__(config, known_classes, encoders)
        text = self.encoders["text"]
        words = [t.replace("{}", " ").strip() for t in (config.positive_template, config.negative_template)]
        pos_init, neg_init = (text.token_embeddings(w) for w in words)  # (n, width) each
        k = self.num_classes
        self.with_labels = with_labels
        if with_labels:
            self.cuep_text_pos = nn.Parameter(pos_init.clone())
            self.cuep_text_neg = nn.Parameter(neg_init.clone())
            self._cuep_texts = list(self.known_classes)
        else:
            gen = torch.Generator().manual_seed(config.seed)
            n, width = neg_init.shape
            self.cuep_text_pos = nn.Parameter(0.02 * torch.randn(k, n, width, generator=gen))
            self.cuep_text_neg = nn.Parameter(0.02 * torch.randn(k, n, width, generator=gen))
            self._cuep_texts = [""] * k

    def class_text_features(self, prompts: dict[str, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """F_T+ and F_T- (K, D_T) from the learnable tokens (``prompts``, SMEP's, are not used here)."""
        enc = self.encoders["text"]
        k = self.num_classes

        def tokens(p: Tensor) -> Tensor:  # (K, n, width): shared context repeated per class
            return p if p.dim() == 3 else p.unsqueeze(0).expand(k, -1, -1)

        return (enc(self._cuep_texts, prompts=tokens(self.cuep_text_pos)),
                enc(self._cuep_texts, prompts=tokens(self.cuep_text_neg)))


def cuep_text_tokens(with_labels: bool):
    """The builder of a :class:`LearnableCUEPText` row, ``build(config, known_classes, encoders)``."""

    def build(config: HCEPConfig, known_classes: Sequence[str], encoders: dict[str, Any]) -> LearnableCUEPText:
        return LearnableCUEPText(config, known_classes, encoders, with_labels=with_labels)

    build.__qualname__ = f"LearnableCUEPText(with_labels={with_labels})"
    return build
