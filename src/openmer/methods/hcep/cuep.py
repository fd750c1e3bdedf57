"""CUEP: Class-level Unimodal Emotion-opposing Prompting (HCEP Sec. 3.4, Eq. 4).

For each known class k: a positive and a negative prompt per modality. Text: the fixed sentences
"This video is {k}" / "This video is not {k}" (templates configurable), encoded once. Vision and
audio: learnable whole inputs (an image at the encoder's input size, a waveform of 80000 samples
= 5 s at 16 kHz), initialised with noise and encoded by the same frozen encoders as the samples.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from openmer.backbones.base import Encoder


class CUEP(nn.Module):
    """Learnable positive/negative whole-input prompts for the non-text modalities.

    Args:
        n_classes: K.
        encoders: ``{"video": encoder, "audio": encoder}``; each encoder's
            ``prompt_spec().whole_input_shape`` gives the shape of one learnable input (e.g.
            (3, 224, 224), (80000,)) and its :meth:`~openmer.backbones.base.Encoder.init_whole_prompts`
            the initial noise.
        lengths: per modality, the whole prompt's length in the encoder's input units (samples
            for audio; HCEPConfig ``cuep_audio_samples``), default the encoder's own.
        init_std: standard deviation of the initial noise (in the encoder's input units:
            normalised pixels, waveform amplitude).
        generator: seeds the noise.
        with_positive: ``False`` for the negative-only DPOL ablation (Table 6,
            ``HCEPConfig.dpol_streams="negative_only"``): no positive prompts are created.

    Attributes:
        positive / negative: ``ParameterDict`` modality -> (K, *whole_input_shape); ``positive``
            is empty without positives.
    """

    def __init__(self, n_classes: int, encoders: dict[str, Encoder], *, init_std: float = 0.1,
                 generator: torch.Generator | None = None, with_positive: bool = True,
                 lengths: dict[str, int] | None = None):
        super().__init__()
        self.positive = nn.ParameterDict()
        self.negative = nn.ParameterDict()
        self.lengths = dict(lengths or {})
        for m, enc in encoders.items():
            if enc.prompt_spec().whole_input_shape is None:
                continue
            length = self.lengths.get(m)
            # the positive is drawn first either way, so the negatives do not depend on with_positive
            pos = enc.init_whole_prompts(n_classes, init_std, generator, length=length)
            if with_positive:
                self.positive[m] = nn.Parameter(pos)
            self.negative[m] = nn.Parameter(enc.init_whole_prompts(n_classes, init_std, generator, length=length))

    @torch.no_grad()
    def start_from(self, modality: str, positive: Tensor | None, negative: Tensor) -> None:
        """Overwrite the initial prompts of ``modality`` (a data-informed start, ``cuep_init="clips"``).

        Args:
            positive: (K, *whole_input_shape), or ``None`` without positives.
            negative: (K, *whole_input_shape).
        """
        if positive is not None and modality in self.positive:
            self.positive[modality].copy_(positive)
        self.negative[modality].copy_(negative)

    def inputs(self, modality: str) -> Tensor:
        """(2K, *shape): the K positive then the K negative inputs of ``modality`` ((K, *shape),
        the negatives only, without positives)."""
        if modality not in self.positive:
            return self.negative[modality]
        return torch.cat([self.positive[modality], self.negative[modality]], dim=0)


def class_sentences(classes: list[str], positive_template: str, negative_template: str) -> tuple[list[str], list[str]]:
    """The fixed CUEP texts: ``(["This video is anger", ...], ["This video is not anger", ...])``."""
    return [positive_template.format(c) for c in classes], [negative_template.format(c) for c in classes]
