"""SMEP: Semantic-level Multimodal Emotion-aligning Prompting (HCEP Sec. 3.3, Eq. 1-3).

m learnable text prompt tokens ``P_T`` (m, w_T), initialised from the token embeddings of
"facial expression", are the anchor; learnable layers ``N_V`` and ``N_A`` project them into the
visual prompts (m, w_V) and the audio prompts (m, L samples) (Eq. 2). Each modality's prompts
enter its frozen encoder with the sample's input (Eq. 3); F_M = [F_T, F_V, F_A] (Eq. 3).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from openmer.backbones.base import PromptSpec


class PromptProjection(nn.Module):
    """A learnable layer N_x mapping the m text prompt tokens to another modality's prompts.

    When the target prompt has m rows (tokens or waveform segments), each token is mapped by one
    shared ``Linear(w_T, prod(shape[1:]))``; otherwise the m tokens are flattened and mapped by
    ``Linear(m * w_T, prod(shape))`` (e.g. FER's single additive pixel prompt, 1 x 64 x 64).

    Shapes: (m, w_T) -> ``spec.shape``.
    """

    def __init__(self, n_tokens: int, text_width: int, spec: PromptSpec, *, out_scale: float = 1.0):
        super().__init__()
        self.shape = tuple(spec.shape)
        self.per_token = self.shape[0] == n_tokens
        in_dim = text_width if self.per_token else n_tokens * text_width
        out_dim = math.prod(self.shape[1:]) if self.per_token else math.prod(self.shape)
        self.linear = nn.Linear(in_dim, out_dim)
        self.out_scale = out_scale

    def forward(self, prompt_tokens: Tensor) -> Tensor:
        x = prompt_tokens if self.per_token else prompt_tokens.reshape(1, -1)
        return (self.out_scale * self.linear(x)).reshape(self.shape)


class SMEP(nn.Module):
    """The learnable SMEP prompts.

    Args:
        init_embeddings: (n, w_T) token embeddings of the initialisation phrase (its first m rows
            are used; missing rows are filled with small noise).
        n_tokens: m, the number of prompt tokens (paper: 2).
        specs: prompt specs of the non-text encoders that receive projected prompts
            (``{"video": spec, "audio": spec}``); modalities whose spec kind is ``"none"`` are skipped.
        generator: for the noise rows.

    Attributes:
        text_prompt: ``P_T`` (m, w_T), learnable.
        projections: ``N_V``, ``N_A`` as a ``ModuleDict`` keyed by modality.
    """

    def __init__(self, init_embeddings: Tensor, n_tokens: int, specs: dict[str, PromptSpec],
                 *, generator: torch.Generator | None = None):
        super().__init__()
        width = init_embeddings.shape[1]
        init = torch.randn(n_tokens, width, generator=generator) * 0.02
        k = min(n_tokens, init_embeddings.shape[0])
        init[:k] = init_embeddings[:k].detach().float()
        self.text_prompt = nn.Parameter(init)
        # Audio prompts are raw samples: start small so they do not drown the speech.
        self.projections = nn.ModuleDict({
            m: PromptProjection(n_tokens, width, s, out_scale=0.1 if s.kind == "samples" else 1.0)
            for m, s in specs.items() if s.kind != "none"
        })

    def prompts(self) -> dict[str, Tensor]:
        """Every modality's prompts: ``{"text": (m, w_T), "video": spec.shape, "audio": spec.shape}``."""
        out = {"text": self.text_prompt}
        out.update({m: proj(self.text_prompt) for m, proj in self.projections.items()})
        return out
