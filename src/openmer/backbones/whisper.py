"""Whisper-base audio encoder with waveform prompts (``offline`` profile, kind ``"whisper"``).

Input: raw mono waveforms at **16 kHz** (resample first; the encoder cannot check the rate).
The log-mel features are computed in torch (:mod:`openmer.backbones.logmel`), so learnable
waveform prompts stay differentiable.

Two modes:

- ``"short"`` (default): only the mel frames the clip needs are computed (``2 * ceil(samples /
  320)`` plus 2 for the convolution edge) and the encoder's own submodules (conv1, conv2, the
  first positional embeddings, the layers, the final layer norm) run on that length. A 2 s clip
  costs ~1/15 of the padded path. Within a batch, frames past a clip's own length are masked
  out of the attention keys, so a clip's feature does not depend on its batch.
- ``"padded"``: the reference path of transformers/OpenAI Whisper: pad to 30 s (3000 mel
  frames), run ``WhisperEncoder.forward``, keep the real frames.

The two differ only in attention: in the padded path the real frames also attend to the
(silent) padding frames. This is not negligible (EmoDB speech: pooled cosine ~0.96 to the
padded feature, per-frame cosine down to ~0.15 near the clip's end); ``context_frames`` adds
silent frames to attend to (400: pooled cosine ~0.995). Numbers in ``docs/encoders.md``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Self

import torch
from torch import Tensor, nn

from openmer.backbones.base import AudioEncoder, PromptSpec
from openmer.backbones.logmel import HOP_LENGTH, N_FFT, N_MELS, SAMPLE_RATE, log_mel_spectrogram
from openmer.backbones.prefix import PrefixCache, tensor_key

if TYPE_CHECKING:
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

#: where the prompts enter (see :class:`WhisperAudioEncoder`)
PROMPT_ENTRIES = ("waveform", "features", "late")
#: samples per encoder output frame (conv2 has stride 2 over 10 ms mel frames: 20 ms)
SAMPLES_PER_FRAME = 2 * HOP_LENGTH


def output_frames(n_samples: Tensor) -> Tensor:
    """Encoder output frames belonging to ``n_samples`` samples of audio: ``ceil(n / 320)`` (>= 1)."""
    return torch.clamp((n_samples + SAMPLES_PER_FRAME - 1) // SAMPLES_PER_FRAME, min=1)


class WhisperAudioEncoder(AudioEncoder):
    """Frozen Whisper encoder; a clip's feature is the mean of its real output frames.

    Args:
        encoder: a loaded ``transformers`` ``WhisperEncoder`` (its weights are used, not copied).
        name_or_path: where it came from (recorded in checkpoints).
        mode: ``"short"`` (default) or ``"padded"`` (30 s reference path), see the module doc.
        n_prompt_segments: n, waveform prompt segments (default 2).
        prompt_segment_samples: L, samples per segment (default 8000 = 0.5 s).
        whole_prompt_samples: length of a whole learnable waveform (default 80000 = 5 s).
        context_frames: short mode only: silent output frames (20 ms each) the clip may attend to
            after its own frames (default 0). More context brings short mode closer to the padded
            path at a higher cost (see ``docs/encoders.md``); 1500 - frames is the padded path.
        prompt_entry: ``"waveform"`` (default, the paper's: n x L samples in front of the
            waveform), ``"features"`` (cheaper: n learnable tokens of width d_model put in front
            of the conv front end's output frames, after its positional embeddings; they take part
            in attention but are left out of the mean, so the cost grows by n frames, not n*L/320)
            or ``"late"`` (late prompt tuning: the n tokens enter at layer ``prompt_layer``; the
            hidden states entering that layer are computed once per clip and kept in a
            :class:`~openmer.backbones.prefix.PrefixCache`, so training runs only the layers from
            ``prompt_layer`` on; CUEP's whole prompts are then learnable hidden-state sequences at
            that depth, ``(ceil(whole_prompt_samples / 320), d_model)``). Short mode only.
        prompt_layer: first layer (0-based) that sees the prompts with ``prompt_entry="late"``
            (default: the last layer).
        prefix_cache_mb: memory for the cached hidden states of ``"late"`` (MiB).

    Raises:
        ValueError: unknown ``mode`` or ``prompt_entry``, ``"late"`` with the padded mode, or a
            ``prompt_layer`` outside the encoder's layers.
    """

    modality = "audio"
    kind = "whisper"
    sample_rate: ClassVar[int] = SAMPLE_RATE
    starts_prompts_from_inputs: ClassVar[bool] = True

    def __init__(self, encoder: WhisperEncoder, name_or_path: str = "", *, mode: str = "short",
                 n_prompt_segments: int = 2, prompt_segment_samples: int = 8000,
                 whole_prompt_samples: int = 80000, context_frames: int = 0, prompt_entry: str = "waveform",
                 prompt_layer: int | None = None, prefix_cache_mb: int = 4096):
        super().__init__()
        if prompt_entry not in PROMPT_ENTRIES:
            raise ValueError(f"prompt_entry must be one of {PROMPT_ENTRIES}, got {prompt_entry!r}")
        if prompt_entry == "late" and mode != "short":
            raise ValueError("prompt_entry='late' needs mode='short'")
        n_layers = len(encoder.layers)
        self.prompt_layer = n_layers - 1 if prompt_layer is None else int(prompt_layer)
        if not 0 <= self.prompt_layer < n_layers:
            raise ValueError(f"prompt_layer must be in 0..{n_layers - 1} (the encoder has {n_layers} layers), "
                             f"got {prompt_layer}")
        self.prefix_cache = PrefixCache(prefix_cache_mb << 20)
        self.prompt_entry = prompt_entry
        if mode not in ("short", "padded"):
            raise ValueError(f"mode must be 'short' or 'padded', got {mode!r}")
        if context_frames < 0:
            raise ValueError(f"context_frames must be >= 0, got {context_frames}")
        self.context_frames = int(context_frames)
        self.encoder = encoder
        self.name_or_path = name_or_path
        self.mode = mode
        self.embed_dim = int(encoder.config.d_model)
        self.max_frames = int(encoder.config.max_source_positions)  # 1500 output frames = 30 s
        self.n_prompt_segments = n_prompt_segments
        self.prompt_segment_samples = prompt_segment_samples
        self.whole_prompt_samples = whole_prompt_samples
        self.freeze()

    @property
    def max_audio_seconds(self) -> float:
        """The longest clip (seconds) this encoder takes: its 1500 output frames (30 s) less the
        room its waveform prompts take in front of the clip (n x L samples; none for token prompts)."""
        prompt = self.n_prompt_segments * self.prompt_segment_samples if self.prompt_entry == "waveform" else 0
        return (self.max_frames * SAMPLES_PER_FRAME - prompt) / SAMPLE_RATE

    def _apply(self, fn: Callable[[Tensor], Tensor], *args: Any, **kwargs: Any) -> Self:
        # device/dtype moves: cached states no longer match
        self.prefix_cache.clear()
        return super()._apply(fn, *args, **kwargs)

    @property
    def whole_prompt_frames(self) -> int:
        """Output frames of a whole learnable waveform: ``ceil(whole_prompt_samples / 320)``."""
        return int(output_frames(torch.tensor(self.whole_prompt_samples)))

    def prompt_spec(self) -> PromptSpec:
        if self.prompt_entry == "late":
            return PromptSpec(
                "tokens", (self.n_prompt_segments, self.embed_dim), (self.whole_prompt_frames, self.embed_dim),
                f"{self.n_prompt_segments} learnable tokens of width {self.embed_dim} entering layer "
                f"{self.prompt_layer}; whole prompts are {self.whole_prompt_frames}-frame hidden-state sequences "
                f"at that layer (the depth of {self.whole_prompt_samples}-sample waveforms)",
            )
        if self.prompt_entry == "features":
            return PromptSpec(
                "tokens", (self.n_prompt_segments, self.embed_dim), (self.whole_prompt_samples,),
                f"{self.n_prompt_segments} learnable tokens of width {self.embed_dim} after the conv front end; "
                f"whole prompts are {self.whole_prompt_samples}-sample waveforms",
            )
        return PromptSpec(
            "samples", (self.n_prompt_segments, self.prompt_segment_samples), (self.whole_prompt_samples,),
            f"{self.n_prompt_segments} learnable waveform segments of {self.prompt_segment_samples} samples "
            f"(16 kHz) in front of the waveform; whole prompts are {self.whole_prompt_samples}-sample waveforms",
        )

    # -- inputs ------------------------------------------------------------------------------
    def _with_prompts(self, waveforms: Tensor, prompts: Tensor | None, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        if waveforms.dim() != 2:
            raise ValueError(f"waveforms must be (B, T) samples at 16 kHz, got shape {tuple(waveforms.shape)}")
        b, t = waveforms.shape
        if lengths is None:
            lengths = torch.full((b,), t, dtype=torch.long, device=waveforms.device)
        else:
            lengths = torch.as_tensor(lengths, device=waveforms.device).long().reshape(-1)
            if lengths.numel() != b:
                raise ValueError(f"lengths must be (B,) = ({b},) samples, got {tuple(lengths.shape)}")
            lengths = lengths.clamp(max=t)
        if prompts is None:
            return waveforms, lengths
        if prompts.dim() == 2:
            prompts = prompts.reshape(1, -1).expand(b, -1)
        elif prompts.dim() == 3:
            if prompts.shape[0] != b:
                raise ValueError(f"prompts (B, n, L) must have B = {b}, got {tuple(prompts.shape)}")
            prompts = prompts.reshape(b, -1)
        else:
            raise ValueError(f"prompts must be (n, L) or (B, n, L) samples, got shape {tuple(prompts.shape)}")
        prompts = prompts.to(waveforms.dtype)
        return torch.cat([prompts, waveforms], dim=1), lengths + prompts.shape[1]

    # -- encoder paths -----------------------------------------------------------------------
    def encode_mel(self, mel: Tensor, n_out: int | None = None, n_keys: Tensor | None = None,
                   prompt_tokens: Tensor | None = None) -> Tensor:
        """Run the encoder's own submodules on log-mel frames of any (even) length.

        Args:
            mel: (B, 80, M) log-mel frames (M even; M = 3000 reproduces ``WhisperEncoder.forward``).
            n_out: output frames to keep (default M // 2, at most 1500).
            n_keys: (B,) frames each clip may attend to (keys past it are masked); default all.
            prompt_tokens: (B, n, 512) tokens put in front of the frames (``prompt_entry="features"``);
                every clip attends to them; their outputs are dropped.

        Returns:
            (B, n_out, 512) last hidden states of the frames (after the final layer norm).
        """
        h = self.front_end(mel, n_out)
        return self.run_layers(h, n_keys, 0, None, prompt_tokens)

    def front_end(self, mel: Tensor, n_out: int | None = None) -> Tensor:
        """conv1, conv2 and the positional embeddings: (B, 80, M) log-mel -> (B, n_out, 512)."""
        enc = self.encoder
        n_out = mel.shape[-1] // 2 if n_out is None else int(n_out)
        if n_out > self.max_frames:
            raise ValueError(
                f"audio longer than Whisper's 30 s window ({n_out} frames > {self.max_frames}); cut it into clips"
            )
        mel = mel.to(next(enc.parameters()).dtype)
        h = nn.functional.gelu(enc.conv1(mel))
        h = nn.functional.gelu(enc.conv2(h))[..., :n_out]  # (B, 512, n_out)
        return h.permute(0, 2, 1) + enc.embed_positions.weight[:n_out]

    def run_layers(self, h: Tensor, n_keys: Tensor | None, start: int, stop: int | None,
                   prompt_tokens: Tensor | None = None) -> Tensor:
        """Layers ``start:stop`` of the encoder on frames ``h`` (B, T, 512), with optional prompt tokens.

        Args:
            h: (B, T, 512) hidden states entering layer ``start``.
            n_keys: (B,) frames each clip may attend to (keys past it are masked); ``None`` = all.
            start, stop: the layer slice; ``stop=None`` runs to the end and applies the final
                layer norm.
            prompt_tokens: (B, n, 512) tokens put in front of the frames; every frame attends to
                them; their outputs are dropped.

        Returns:
            (B, T, 512) the frames' hidden states after the layers.
        """
        enc = self.encoder
        n_p = 0
        if prompt_tokens is not None:
            n_p = prompt_tokens.shape[1]
            h = torch.cat([prompt_tokens.to(h.dtype), h], dim=1)
            n_keys = None if n_keys is None else n_keys + n_p
        total = h.shape[1]
        mask = None
        if n_keys is not None and bool((n_keys < total).any()):  # mask keys past each clip's own frames
            keys = torch.arange(total, device=h.device)[None, :] < n_keys[:, None]
            mask = torch.zeros(keys.shape, dtype=h.dtype, device=h.device).masked_fill(~keys, torch.finfo(h.dtype).min)
            mask = mask[:, None, None, :].expand(-1, 1, total, -1)
        layers: Any = enc.layers
        # transformers 4.x layers take a head mask
        head_mask = "layer_head_mask" in inspect.signature(layers[0].forward).parameters
        extra = {"layer_head_mask": None} if head_mask else {}
        for layer in layers[start:stop]:
            h = layer(h, mask, **extra)
            if isinstance(h, tuple):  # older transformers return (hidden, attn)
                h = h[0]
        if stop is None:
            h = enc.layer_norm(h)
        return h[:, n_p:]

    def _short(self, wave: Tensor, lengths: Tensor, n_real: Tensor, prompt_tokens: Tensor | None = None) -> Tensor:
        n_keys = (n_real + self.context_frames).clamp(max=self.max_frames)
        n_out = int(n_keys.max())
        if int(n_real.max()) > self.max_frames:
            raise ValueError(
                f"audio longer than Whisper's 30 s window ({int(n_real.max())} frames > {self.max_frames}); "
                "cut it into clips"
            )
        # +2 mel frames: conv1/conv2 of the last output frame read mel frame 2 * n_out.
        mel = log_mel_spectrogram(wave, N_FFT, HOP_LENGTH, N_MELS, SAMPLE_RATE, lengths=lengths, n_frames=2 * n_out + 2)
        return self.encode_mel(mel, n_out, n_keys, prompt_tokens)

    def _padded(self, wave: Tensor, lengths: Tensor) -> Tensor:
        mel = log_mel_spectrogram(wave, N_FFT, HOP_LENGTH, N_MELS, SAMPLE_RATE, lengths=lengths, pad_to_seconds=30.0)
        mel = mel.to(next(self.encoder.parameters()).dtype)
        return self.encoder(mel).last_hidden_state

    def frame_features(self, waveforms: Tensor, prompts: Tensor | None = None, lengths: Tensor | None = None,
                       *, mode: str | None = None) -> tuple[Tensor, Tensor]:
        """Per-frame encoder outputs (20 ms each) and how many of them belong to the input.

        Args: as :meth:`forward`, plus ``mode`` overriding the encoder's mode for this call.

        Returns:
            ``(hidden, n_real)``: (B, F, 512) last hidden states and (B,) int64 real frames
            (``ceil(samples / 320)`` of prompt + audio). F is ``n_real.max()`` in short mode, 1500
            in padded mode.
        """
        mode = self.mode if mode is None else mode
        if mode not in ("short", "padded"):
            raise ValueError(f"mode must be 'short' or 'padded', got {mode!r}")
        if self.prompt_entry == "late":
            if mode != "short":
                raise ValueError("prompt_entry='late' runs in short mode only")
            return self._late(waveforms, prompts, lengths)
        tokens = None
        if self.prompt_entry == "features" and prompts is not None:
            tokens = self._prompt_tokens(prompts, waveforms.shape[0])
            prompts = None
        wave, lengths = self._with_prompts(waveforms, prompts, lengths)
        n_real = output_frames(lengths)
        if mode == "padded":
            n_real = n_real.clamp(max=self.max_frames)
            if tokens is not None:
                mel = log_mel_spectrogram(wave, N_FFT, HOP_LENGTH, N_MELS, SAMPLE_RATE, lengths=lengths,
                                          pad_to_seconds=30.0)
                return self.encode_mel(mel, prompt_tokens=tokens), n_real
        hidden = self._short(wave, lengths, n_real, tokens) if mode == "short" else self._padded(wave, lengths)
        return hidden, n_real

    # -- late prompt entry -------------------------------------------------------------------
    def layer_input(self, waveforms: Tensor, lengths: Tensor | None = None) -> list[Tensor]:
        """Hidden states entering layer ``prompt_layer``, one (F_i, 512) tensor per clip (cached).

        F_i = the clip's own frames plus ``context_frames``; these do not depend on any prompt.
        """
        wave, lengths = self._with_prompts(waveforms, None, lengths)
        keys = [tensor_key(wave[i, : int(n)]) for i, n in enumerate(lengths.tolist())]

        def compute(idx: list[int]) -> list[Tensor]:
            sel = torch.as_tensor(idx, device=wave.device)
            return self._layer_input(wave[sel], lengths[sel])

        return self.prefix_cache.get(keys, compute)

    def _layer_input(self, wave: Tensor, lengths: Tensor) -> list[Tensor]:
        n_real = output_frames(lengths)
        n_keys = (n_real + self.context_frames).clamp(max=self.max_frames)
        n_out = int(n_keys.max())
        if int(n_real.max()) > self.max_frames:
            raise ValueError(f"audio longer than Whisper's 30 s window ({int(n_real.max())} frames > "
                             f"{self.max_frames}); cut it into clips")
        mel = log_mel_spectrogram(wave[:, : int(lengths.max())], N_FFT, HOP_LENGTH, N_MELS, SAMPLE_RATE,
                                  lengths=lengths, n_frames=2 * n_out + 2)
        h = self.run_layers(self.front_end(mel, n_out), n_keys, 0, self.prompt_layer)
        return [h[j, : int(n_keys[j])] for j in range(len(wave))]

    # -- CUEP's whole prompts -------------------------------------------------------------------
    def init_whole_prompts(self, n: int, std: float, generator: torch.Generator | None = None, *,
                           length: int | None = None) -> Tensor:
        """Noise waveforms of ``length`` samples (default ``whole_prompt_samples``; std in waveform
        amplitude), or, with ``prompt_entry="late"``, the hidden states such waveforms have at
        ``prompt_layer``: (n, length) or (n, ceil(length / 320), 512)."""
        noise = std * torch.randn(n, length or self.whole_prompt_samples, generator=generator)
        if self.prompt_entry != "late":
            return noise
        return self.whole_prompts_from(noise.to(self.device), length=noise.shape[1])

    def whole_prompts_from(self, inputs: Tensor, lengths: Tensor | None = None, *,
                           length: int | None = None) -> Tensor:
        """Waveforms cut or zero-padded to ``length`` samples (default ``whole_prompt_samples``), or
        their states at ``prompt_layer`` with ``prompt_entry="late"``: (B, length) or
        (B, ceil(length / 320), 512)."""
        inputs, lengths = self._with_prompts(inputs, None, lengths)
        n = int(length or self.whole_prompt_samples)
        out = torch.zeros(len(inputs), n, dtype=inputs.dtype, device=inputs.device)
        for i, real in enumerate(lengths.tolist()):
            k = min(int(real), n)
            out[i, :k] = inputs[i, :k]
        if self.prompt_entry != "late":
            return out
        with torch.no_grad():
            frames = int(output_frames(torch.tensor(n)))
            states = self._layer_input(out, torch.full((len(out),), n, device=out.device))
        return torch.stack([s[:frames] for s in states])

    def encode_whole_prompts(self, prompts: Tensor) -> Tensor:
        if self.prompt_entry != "late":
            return self(prompts)
        return self.hidden_from_layer_input(prompts).mean(1)

    def _late(self, waveforms: Tensor, prompts: Tensor | None, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        _, lengths = self._with_prompts(waveforms, None, lengths)
        states = self.layer_input(waveforms, lengths)
        return self.hidden_from_layer_input(states, prompts), output_frames(lengths)

    def hidden_from_layer_input(self, states: list[Tensor] | Tensor, prompts: Tensor | None = None) -> Tensor:
        """Layers from ``prompt_layer`` on, on hidden states entering it (``prompt_entry="late"``).

        Args:
            states: one (F_i, 512) tensor per clip, or a (B, F, 512) batch (every frame real).
            prompts: ``None``, (n, 512) tokens shared by the batch, or (B, n, 512).

        Returns:
            (B, max F_i, 512) last hidden states of the frames (prompt outputs dropped).
        """
        if isinstance(states, Tensor):
            h, n_keys = states, None
        else:
            n_keys = torch.tensor([len(t) for t in states], device=states[0].device)
            h = nn.utils.rnn.pad_sequence(list(states), batch_first=True)
        tokens = None if prompts is None else self._prompt_tokens(prompts, h.shape[0])
        return self.run_layers(h, n_keys, self.prompt_layer, None, tokens)

    def _prompt_tokens(self, prompts: Tensor, b: int) -> Tensor:
        if prompts.dim() == 2:
            prompts = prompts[None].expand(b, -1, -1)
        if prompts.dim() != 3 or prompts.shape[0] != b or prompts.shape[2] != self.embed_dim:
            raise ValueError(f"feature prompts must be (n, {self.embed_dim}) or ({b}, n, {self.embed_dim}), "
                             f"got {tuple(prompts.shape)}")
        return prompts

    def forward(self, waveforms: Tensor, prompts: Tensor | None = None, lengths: Tensor | None = None) -> Tensor:
        """Encode 16 kHz waveforms.

        Args:
            waveforms: (B, T) float mono samples at 16 kHz, right-padded with zeros when the clips
                differ in length.
            prompts: ``None``; (n, L) waveform segments shared by the batch; or (B, n, L). They are
                flattened to n * L samples and put in front of each waveform before the log-mel.
            lengths: (B,) real lengths in samples (default T); shifted by n * L with prompts.

        Returns:
            (B, 512) mean of the output frames that belong to prompt + audio (``ceil(samples / 320)``).

        Raises:
            ValueError: wrong dimensions, or (short mode) more than 30 s of prompt + audio.
        """
        hidden, n_real = self.frame_features(waveforms, prompts, lengths)
        keep = (torch.arange(hidden.shape[1], device=hidden.device)[None, :] < n_real[:, None]).to(hidden.dtype)
        return (hidden * keep[..., None]).sum(1) / keep.sum(1, keepdim=True)

