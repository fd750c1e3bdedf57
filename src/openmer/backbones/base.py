"""The frozen-encoder interface and where prompts enter (HCEP Sec. 3.3-3.4, Table 1).

Every encoder maps a batch of one modality to one feature vector per sample, ``(B, D)`` with
``D == embed_dim``. Its weights are frozen at construction (``requires_grad_(False)``, eval
mode, and :meth:`Encoder.train` cannot undo it); gradients flow only to the prompts handed in.
Learnable prompts belong to the *method* (SMEP, CUEP), never to the encoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn

Modality = Literal["video", "audio", "text"]
PromptKind = Literal["tokens", "samples", "pixels", "none"]


@dataclass(frozen=True)
class PromptSpec:
    """How prompts enter an encoder.

    Attributes:
        kind: ``"tokens"`` (learnable token embeddings inserted in the input sequence: after the
            start token for text, after the class token for a ViT), ``"samples"`` (learnable
            waveform segments concatenated in front of the raw waveform), ``"pixels"`` (an
            additive learnable image, for CNNs without tokens), or ``"none"``.
        shape: the shape of one prompt set as :meth:`Encoder.forward` takes it, without batch,
            e.g. ``(2, 512)`` text tokens, ``(2, 768)`` visual tokens, ``(2, 8000)`` waveform
            segments (samples at 16 kHz), ``(1, 64, 64)`` additive pixels.
        whole_input_shape: the shape of one whole learnable input that the encoder encodes like
            a real one (CUEP): ``(3, 224, 224)`` image, ``(80000,)`` waveform; ``None`` for text,
            whose CUEP prompts are fixed sentences.
        description: one line for docs and reports.
    """

    kind: PromptKind
    shape: tuple[int, ...]
    whole_input_shape: tuple[int, ...] | None
    description: str


class Encoder(nn.Module):
    """Base class of the frozen encoders.

    Subclasses set ``modality`` and ``embed_dim`` and implement :meth:`forward` and
    :meth:`prompt_spec`. They never read files: :mod:`openmer.backbones.factory` loads them.
    """

    modality: ClassVar[Modality]
    embed_dim: int
    #: identity of the weights (hub id or folder) and kind, recorded in checkpoints
    name_or_path: str = ""
    kind: ClassVar[str] = ""

    def freeze(self) -> Encoder:
        """Freeze every parameter and switch to eval mode; returns ``self``."""
        for p in self.parameters():
            p.requires_grad_(False)
        super().train(False)
        return self

    def train(self, mode: bool = True) -> Encoder:  # noqa: D102 - frozen: always eval
        return super().train(False)

    def prompt_spec(self) -> PromptSpec:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- CUEP's whole learnable inputs (HCEP Sec. 3.4, Eq. 4) ----------------------------------
    def init_whole_prompts(self, n: int, std: float, generator: torch.Generator | None = None, *,
                           length: int | None = None) -> torch.Tensor:
        """Initial values of n whole learnable inputs: Gaussian noise of ``std`` (HCEP Sec. 3.4).

        Args:
            length: for waveform encoders, the whole prompt's length in samples (default: the
                encoder's own); ignored by the others.

        Returns:
            (n, *prompt_spec().whole_input_shape), in the encoder's input units.
        """
        shape = self.prompt_spec().whole_input_shape
        if shape is None:
            raise ValueError(f"{type(self).__name__} has no whole-input prompts")
        return std * torch.randn((n, *shape), generator=generator)

    def whole_prompts_from(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None, *,
                           length: int | None = None) -> torch.Tensor:
        """Real inputs turned into whole learnable inputs (a data-informed CUEP start).

        Args:
            inputs: a batch of this encoder's inputs (e.g. (B, T) waveforms, (B, N, C, S, S) videos).
            lengths: (B,) real lengths in samples, for waveforms.
            length: as in :meth:`init_whole_prompts`.

        Returns:
            (B, *prompt_spec().whole_input_shape).

        Raises:
            NotImplementedError: the encoder cannot make whole prompts from inputs.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot start whole prompts from real inputs")

    def encode_whole_prompts(self, prompts: torch.Tensor) -> torch.Tensor:
        """(n, *whole_input_shape) whole learnable inputs -> (n, D) features, as a real input."""
        return self(prompts)

    @property
    def device(self) -> torch.device:
        for t in list(self.parameters()) + list(self.buffers()):
            return t.device
        return torch.device("cpu")
