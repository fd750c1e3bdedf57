"""The frozen-encoder interface and where prompts enter (HCEP Sec. 3.3-3.4, Table 1).

Every encoder maps a batch of one modality to one feature vector per sample, ``(B, D)`` with
``D == embed_dim``. Its weights are frozen at construction (``requires_grad_(False)``, eval
mode, and :meth:`Encoder.train` cannot undo it); gradients flow only to the prompts handed in.
Learnable prompts belong to the *method* (SMEP, CUEP), never to the encoder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

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
    #: whether :meth:`whole_prompts_from` turns real inputs into whole prompts (HCEP's
    #: ``cuep_init="clips"`` starts only such modalities from clips; the others keep their noise start)
    starts_prompts_from_inputs: ClassVar[bool] = False

    def freeze(self) -> Self:
        """Freeze every parameter and switch to eval mode; returns ``self``."""
        for p in self.parameters():
            p.requires_grad_(False)
        super().train(False)
        return self

    def train(self, mode: bool = True) -> Encoder:  # frozen: always eval
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

    # -- the one batch-encoding call ------------------------------------------------------------
    def encode_batch(self, batch: Mapping[str, Any], rows: torch.Tensor | None = None,
                     prompts: torch.Tensor | None = None) -> torch.Tensor:
        """Features (n, D) of the batch's rows ``rows`` (default: all) for this encoder's modality.

        ``batch`` is a :meth:`openmer.data.clips.ClipDataset.collate_fn` batch; each typed base
        (:class:`TextEncoder`, :class:`AudioEncoder`, :class:`VisionEncoder`) reads its own keys.
        """
        raise NotImplementedError(f"{type(self).__name__} does not say how to read a batch")

    @property
    def device(self) -> torch.device:
        for t in list(self.parameters()) + list(self.buffers()):
            return t.device
        return torch.device("cpu")


def _rows(batch_size: int, rows: torch.Tensor | None) -> list[int]:
    return list(range(batch_size)) if rows is None else [int(i) for i in torch.as_tensor(rows).reshape(-1).tolist()]


class TextEncoder(Encoder):
    """A frozen text encoder: sentences -> (B, D).

    Subclasses set ``width`` (the token-embedding width of its prompt tokens) and implement
    :meth:`token_embeddings` (to initialise SMEP's tokens) and ``forward(texts, prompts=None)``.
    """

    modality: ClassVar[Modality] = "text"
    width: int

    def token_embeddings(self, text: str) -> torch.Tensor:  # pragma: no cover - abstract
        """(n, width) embeddings of the text's own tokens at the prompt entry, detached."""
        raise NotImplementedError

    def encode_batch(self, batch: Mapping[str, Any], rows: torch.Tensor | None = None,
                     prompts: torch.Tensor | None = None) -> torch.Tensor:
        """``batch["text"]`` rows -> (n, D). Identical sentences are encoded once (EmoDB has 10
        distinct sentences, RAVDESS 2) unless every row has its own prompts, (n, m, width)."""
        texts = [batch["text"][i] for i in _rows(len(batch["text"]), rows)]
        if prompts is not None and prompts.dim() == 3:
            return self(texts, prompts=prompts)
        distinct = list(dict.fromkeys(texts))
        if len(distinct) == len(texts):
            return self(texts, prompts=prompts)
        feats = self(distinct, prompts=prompts)
        index = {t: i for i, t in enumerate(distinct)}
        return feats[torch.tensor([index[t] for t in texts], device=feats.device)]


class AudioEncoder(Encoder):
    """A frozen audio encoder: (B, T) waveforms at ``sample_rate`` Hz (+ lengths in samples) -> (B, D)."""

    modality: ClassVar[Modality] = "audio"
    sample_rate: ClassVar[int] = 16000

    def encode_batch(self, batch: Mapping[str, Any], rows: torch.Tensor | None = None,
                     prompts: torch.Tensor | None = None) -> torch.Tensor:
        """``batch["audio"]`` (B, T) and ``batch["audio_lengths"]`` (B,) rows -> (n, D)."""
        x = torch.as_tensor(batch["audio"]).to(self.device)
        idx = torch.tensor(_rows(len(x), rows), device=x.device)
        lengths = batch.get("audio_lengths")
        lengths = None if lengths is None else torch.as_tensor(lengths).to(x.device)[idx]
        return self(x[idx], prompts=prompts, lengths=lengths)


class VisionEncoder(Encoder):
    """A frozen vision encoder: (B, N, C, S, S) videos of N preprocessed frames -> (B, D).

    Subclasses implement :meth:`preprocess`, which turns decoded frames into what ``forward``
    takes (face crops for a face CNN, CLIP normalisation for a ViT).
    """

    modality: ClassVar[Modality] = "video"

    def preprocess(self, frames: Any, path: Any = None) -> torch.Tensor:  # pragma: no cover - abstract
        """(N, H, W, 3) uint8 RGB frames of ``path`` -> (N, C, S, S) float, as ``forward`` takes them."""
        raise NotImplementedError

    def patch_embeddings(self, pixels: torch.Tensor) -> torch.Tensor | None:
        """(B, C, S, S) preprocessed images -> (B, W, h, w), the first layer's feature map (a
        ViT's patch embedding), or ``None`` for an encoder that has none (default)."""
        return None

    def encode_batch(self, batch: Mapping[str, Any], rows: torch.Tensor | None = None,
                     prompts: torch.Tensor | None = None) -> torch.Tensor:
        """``batch["video"]`` rows -> (n, D)."""
        x = torch.as_tensor(batch["video"]).to(self.device)
        idx = torch.tensor(_rows(len(x), rows), device=x.device)
        return self(x[idx], prompts=prompts)
