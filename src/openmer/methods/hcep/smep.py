"""SMEP: Semantic-level Multimodal Emotion-aligning Prompting (HCEP Sec. 3.3, Eq. 1-3).

m learnable text prompt tokens ``P_T`` (m, w_T), initialised from the token embeddings of
"facial expression", are the anchor; learnable layers ``N_V`` and ``N_A`` project them into the
visual prompts (m, w_V) and the audio prompts (m, L samples) (Eq. 2). Each modality's prompts
enter its frozen encoder with the sample's input (Eq. 3); F_M = [F_T, F_V, F_A] (Eq. 3).

Ablations (HCEP Table 6 bottom, Fig. 4; see ``docs/interpretation.md``, "Ablation options"):
the text tokens can be fixed (``learnable_text=False``), and the anchor can be the video or
audio prompt (projected into text tokens and the remaining modality) or absent (``"none"``:
every modality has its own independent prompts, nothing is projected).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from openmer.backbones.base import PromptSpec

Anchor = Literal["text", "video", "audio", "none"]

#: initial noise of a learnable non-text prompt that is not a projection (anchor or ``"none"``),
#: in the encoder's input units: CoOp's context std for tokens and pixels, small waveform samples
#: so that they do not drown the speech.
OWN_PROMPT_STD = {"tokens": 0.02, "pixels": 0.02, "samples": 0.01}


class PromptProjection(nn.Module):
    """A learnable layer N_x mapping the anchor's prompts to another modality's prompts.

    When source and target have the same number of rows (tokens or waveform segments), each row
    is mapped by one shared ``Linear(prod(source[1:]), prod(target[1:]))``; otherwise the source
    is flattened and mapped by ``Linear(prod(source), prod(target))`` (e.g. FER's single additive
    pixel prompt, 1 x 64 x 64).

    Args:
        source_shape: shape of the anchor prompt, e.g. ``(m, w_T)`` text tokens.
        target_shape: ``spec.shape`` of the receiving encoder.
        out_scale: constant factor on the output (0.1 for waveform samples).

    Shapes: ``source_shape`` -> ``target_shape``.
    """

    def __init__(self, source_shape: tuple[int, ...], target_shape: tuple[int, ...], *, out_scale: float = 1.0):
        super().__init__()
        self.source_shape = tuple(source_shape)
        self.shape = tuple(target_shape)
        self.per_token = len(self.source_shape) >= 2 and len(self.shape) >= 2 and self.shape[0] == self.source_shape[0]
        in_dim = math.prod(self.source_shape[1:]) if self.per_token else math.prod(self.source_shape)
        out_dim = math.prod(self.shape[1:]) if self.per_token else math.prod(self.shape)
        self.linear = nn.Linear(in_dim, out_dim)
        self.out_scale = out_scale

    def forward(self, source: Tensor) -> Tensor:
        x = source.reshape(self.source_shape[0], -1) if self.per_token else source.reshape(1, -1)
        return (self.out_scale * self.linear(x)).reshape(self.shape)


class SMEP(nn.Module):
    """The SMEP prompts.

    Args:
        init_embeddings: (n, w_T) token embeddings of the initialisation phrase (its first m rows
            are used; missing rows are filled with small noise).
        n_tokens: m, the number of text prompt tokens (paper: 2).
        specs: prompt specs of the non-text encoders that receive prompts
            (``{"video": spec, "audio": spec}``); modalities whose spec kind is ``"none"`` are skipped.
        anchor: whose prompts are the learnable source (HCEP Fig. 4). ``"text"`` (paper): P_T,
            projected by N_V, N_A. ``"video"`` / ``"audio"``: a learnable prompt of that encoder's
            ``spec.shape``, projected to the m text tokens and to the remaining modality.
            ``"none"``: independent learnable prompts per modality, no projection.
        learnable_text: ``False`` (Table 6, "fixed"): the text tokens are the fixed embeddings of
            the initialisation phrase (a buffer, never trained); the projections stay learnable.
            Only with ``anchor`` ``"text"`` or ``"none"``.
        generator: for the noise.

    Attributes:
        text_prompt: ``P_T`` (m, w_T): a parameter, or a buffer when fixed; ``None`` when the
            text tokens are projected from a video/audio anchor.
        own_prompts: ``ParameterDict`` modality -> learnable non-text prompt (the anchor's, or
            every modality's with ``anchor="none"``).
        projections: ``ModuleDict`` target modality -> :class:`PromptProjection` from the anchor.

    Raises:
        ValueError: an anchor without a prompt entry, or fixed text tokens with a non-text anchor.
    """

    def __init__(self, init_embeddings: Tensor, n_tokens: int, specs: dict[str, PromptSpec],
                 *, anchor: Anchor = "text", learnable_text: bool = True, generator: torch.Generator | None = None):
        super().__init__()
        specs = {m: s for m, s in specs.items() if s.kind != "none"}
        if anchor in ("video", "audio") and anchor not in specs:
            raise ValueError(f"anchor={anchor!r} needs the {anchor} modality with a prompt entry")
        if not learnable_text and anchor not in ("text", "none"):
            raise ValueError(f"fixed text prompts need anchor 'text' or 'none', not {anchor!r}")
        self.anchor = anchor
        width = init_embeddings.shape[1]
        text_shape = (n_tokens, width)
        self.text_prompt: Tensor | None
        if anchor in ("text", "none"):
            init = torch.randn(n_tokens, width, generator=generator) * 0.02
            k = min(n_tokens, init_embeddings.shape[0])
            init[:k] = init_embeddings[:k].detach().float()
            if learnable_text:
                self.text_prompt = nn.Parameter(init)
            else:
                self.register_buffer("text_prompt", init)
        else:
            self.text_prompt = None
        own = [anchor] if anchor in specs else (list(specs) if anchor == "none" else [])
        self.own_prompts = nn.ParameterDict({
            m: nn.Parameter(OWN_PROMPT_STD.get(specs[m].kind, 0.02) * torch.randn(specs[m].shape, generator=generator))
            for m in own
        })
        source = text_shape if anchor == "text" else (tuple(specs[anchor].shape) if anchor in specs else None)
        projections: dict[str, PromptProjection] = {}
        if source is not None:  # (a video/audio anchor is in specs, checked above)
            targets = {m: tuple(s.shape) for m, s in specs.items() if m != anchor}
            if anchor in ("video", "audio"):
                targets = {"text": text_shape, **targets}
            # Audio prompts are raw samples: start small so they do not drown the speech.
            projections = {
                m: PromptProjection(source, shape, out_scale=0.1 if m in specs and specs[m].kind == "samples" else 1.0)
                for m, shape in targets.items()
            }
        self.projections = nn.ModuleDict(projections)

    def prompts(self) -> dict[str, Tensor]:
        """Every modality's prompts: ``{"text": (m, w_T), "video": spec.shape, "audio": spec.shape}``."""
        if self.anchor == "none":
            assert self.text_prompt is not None  # set for anchors "text" and "none" (constructor)
            return {"text": self.text_prompt, **dict(self.own_prompts.items())}
        source = self.text_prompt if self.anchor == "text" else self.own_prompts[self.anchor]
        assert source is not None  # set for anchors "text" and "none" (constructor)
        out: dict[str, Tensor] = {self.anchor: source}
        out.update({m: proj(source) for m, proj in self.projections.items()})
        return out
