"""Frozen wav2vec 2.0 with prompt entry points (HCEP Sec. 3.3-3.4, 4.1.4).

Input: raw 16 kHz waveforms. Each utterance is normalised to zero mean and unit variance over
its valid samples, as ``Wav2Vec2FeatureExtractor(do_normalize=True)`` does for
``facebook/wav2vec2-base`` (``(x - mean) / sqrt(var + 1e-7)``; padding stays 0).

Two prompt entry points (loader option ``prompt_entry``):

* ``"waveform"`` (default, HCEP): ``n`` learnable segments of ``L`` samples, flattened and
  concatenated *in front of* the normalised waveform; they are part of the input, so the
  pooled feature averages the frames of the whole ``prompt + utterance`` signal.
* ``"features"``: ``n`` learnable tokens of width ``hidden_size`` prepended to the projected
  convolutional features (cheaper: the conv front end runs once per clip); their output
  states are left out of the average, as VPT discards its prompt outputs.

The output is the mean of the last hidden states over the valid frames; frame counts come
from the model's own ``_get_feat_extract_output_lengths``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor, nn

from openmer.backbones.base import AudioEncoder, PromptSpec
from openmer.backbones.clip import expand_prompts

if TYPE_CHECKING:
    from transformers import Wav2Vec2Model

PromptEntry = Literal["waveform", "features"]


def normalize_waveforms(x: Tensor, lengths: Tensor, eps: float = 1e-7) -> Tensor:
    """Per-utterance zero mean / unit variance over the first ``lengths[i]`` samples; padding -> 0.

    Same formula as ``Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm``.

    Args:
        x: ``(B, T)`` waveforms. lengths: ``(B,)`` valid samples.

    Returns:
        ``(B, T)`` normalised waveforms.
    """
    valid = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]  # (B, T)
    n = lengths.to(x.dtype)[:, None]
    xm = x * valid
    mean = xm.sum(dim=1, keepdim=True) / n
    var = (((x - mean) * valid) ** 2).sum(dim=1, keepdim=True) / n
    return ((x - mean) / torch.sqrt(var + eps)) * valid


class Wav2Vec2AudioEncoder(AudioEncoder):
    """wav2vec 2.0 (``Wav2Vec2Model``) with waveform or feature-token prompts, mean-pooled.

    Args:
        model: a transformers ``Wav2Vec2Model`` without adapter.
        name_or_path: hub id or folder the weights came from.
        prompt_entry: ``"waveform"`` or ``"features"`` (see the module docstring).
        n_prompt_segments: ``n`` of :meth:`prompt_spec` (segments or tokens).
        prompt_segment_samples: ``L``, samples per waveform segment (8000 = 0.5 s at 16 kHz).
        whole_input_samples: length of one whole learnable waveform (CUEP), 80000 = 5 s.
        normalize: per-utterance normalisation (True for wav2vec2-base).

    Attributes:
        embed_dim: ``hidden_size`` (768 for wav2vec2-base). ``sampling_rate``: 16000 Hz.
    """

    modality = "audio"
    kind = "wav2vec2"
    sampling_rate: int = 16_000

    def __init__(
        self, model: Wav2Vec2Model, *, name_or_path: str = "", prompt_entry: PromptEntry = "waveform",
        n_prompt_segments: int = 2, prompt_segment_samples: int = 8000, whole_input_samples: int = 80_000,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        if prompt_entry not in ("waveform", "features"):
            raise ValueError(f"prompt_entry must be 'waveform' or 'features', got {prompt_entry!r}")
        if getattr(model.config, "add_adapter", False):
            raise ValueError("wav2vec2 models with an adapter are not supported (the adapter changes frame counts)")
        if n_prompt_segments < 0 or prompt_segment_samples < 1 or whole_input_samples < 1:
            raise ValueError("n_prompt_segments must be >= 0 and the sample counts >= 1")
        self.model = model
        self.name_or_path = name_or_path
        self.prompt_entry: PromptEntry = prompt_entry
        self.n_prompt_segments = int(n_prompt_segments)
        self.prompt_segment_samples = int(prompt_segment_samples)
        self.whole_input_samples = int(whole_input_samples)
        self.normalize = bool(normalize)
        self.hidden_size = int(model.config.hidden_size)
        self.embed_dim = self.hidden_size
        self.freeze()

    def prompt_spec(self) -> PromptSpec:
        whole = (self.whole_input_samples,)
        if self.prompt_entry == "features":
            return PromptSpec(
                kind="tokens", shape=(self.n_prompt_segments, self.hidden_size), whole_input_shape=whole,
                description=f"{self.n_prompt_segments} tokens of width {self.hidden_size} before the projected "
                "conv features of wav2vec 2.0",
            )
        return PromptSpec(
            kind="samples", shape=(self.n_prompt_segments, self.prompt_segment_samples), whole_input_shape=whole,
            description=f"{self.n_prompt_segments} x {self.prompt_segment_samples} waveform samples (16 kHz) "
            "concatenated in front of the waveform",
        )

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """(B,) frames the conv front end yields for ``lengths`` samples."""
        # transformers annotates the legacy torch.LongTensor; any integer tensor is what it takes
        return self.model._get_feat_extract_output_lengths(lengths).long()  # type: ignore[arg-type]

    def _front_end(self, x: Tensor, lengths: Tensor) -> Tensor:
        """Conv features ``(B, F, C)`` with ``F`` frames for the full ``T``, padding frames zero.

        With ``feat_extract_norm == "group"`` (wav2vec2-base) the first conv layer's GroupNorm
        normalises over time, so padding would leak into valid frames: padded rows then run
        one by one on their valid samples, which makes a padded batch equal per-sample results.
        """
        fe = self.model.feature_extractor
        t = x.shape[1]
        if self.model.config.feat_extract_norm != "group" or bool((lengths == t).all()):
            return fe(x).transpose(1, 2)
        n_frames = int(self.output_lengths(torch.tensor([t]))[0])
        rows = []
        for i in range(x.shape[0]):
            row = fe(x[i:i + 1, : int(lengths[i])]).transpose(1, 2)  # (1, F_i, C)
            rows.append(nn.functional.pad(row, (0, 0, 0, n_frames - row.shape[1])))
        return torch.cat(rows, dim=0)

    def forward(self, inputs: Tensor, prompts: Tensor | None = None, lengths: Tensor | None = None) -> Tensor:
        """Encode a batch of waveforms.

        Args:
            inputs: ``(B, T)`` 16 kHz waveforms, zero-padded at the end (or ``(T,)`` for one).
            prompts: ``"waveform"`` entry: ``(n, L)`` shared or ``(B, n, L)`` per sample;
                ``"features"`` entry: ``(n, hidden)`` or ``(B, n, hidden)``.
            lengths: ``(B,)`` valid samples per row; ``None`` means all ``T``.

        Returns:
            ``(B, hidden_size)`` mean of the last hidden states over the valid frames.

        Raises:
            ValueError: bad shapes, or a length outside ``[1, T]``.
        """
        x = inputs.unsqueeze(0) if inputs.dim() == 1 else inputs
        if x.dim() != 2:
            raise ValueError(f"inputs must be (B, T) waveforms, got shape {tuple(inputs.shape)}")
        dtype = self.model.feature_projection.projection.weight.dtype
        x = x.to(self.device, dtype)
        b, t = x.shape
        if lengths is None:
            lengths = torch.full((b,), t, dtype=torch.long, device=x.device)
        else:
            lengths = torch.as_tensor(lengths, device=x.device).long().reshape(-1)
            if lengths.shape[0] != b or bool((lengths < 1).any()) or bool((lengths > t).any()):
                raise ValueError(f"lengths must be (B,) = ({b},) values in [1, {t}], got {lengths.tolist()}")
        if self.normalize:
            x = normalize_waveforms(x, lengths)
        n_tok = 0
        if prompts is not None and self.prompt_entry == "waveform":
            seg = expand_prompts(prompts.to(x.device, dtype), b, name="audio prompts").reshape(b, -1)  # (B, n*L)
            x = torch.cat([seg, x], dim=1)
            lengths = lengths + seg.shape[1]
        frames = self.output_lengths(lengths)  # (B,)
        if bool((frames < 1).any()):
            raise ValueError(f"waveforms too short for the conv front end: lengths {lengths.tolist()}")
        feats = self._front_end(x, lengths)  # (B, F, C)
        hidden, _ = self.model.feature_projection(feats)  # (B, F, hidden)
        if prompts is not None and self.prompt_entry == "features":
            if prompts.shape[-1] != self.hidden_size:
                raise ValueError(f"feature prompts must have width {self.hidden_size}, got {tuple(prompts.shape)}")
            tok = expand_prompts(prompts.to(hidden.device, hidden.dtype), b, name="audio prompts")
            n_tok = tok.shape[1]
            hidden = torch.cat([tok, hidden], dim=1)  # (B, n + F, hidden)
        pos = torch.arange(hidden.shape[1], device=x.device)[None, :]
        valid = pos < (frames + n_tok)[:, None]  # (B, n + F) bool
        mask = None if bool(valid.all()) else valid
        out = self.model.encoder(hidden, attention_mask=mask).last_hidden_state  # (B, n + F, hidden)
        keep = (valid & (pos >= n_tok)).to(out.dtype).unsqueeze(-1)  # audio frames only
        return (out * keep).sum(dim=1) / keep.sum(dim=1)
