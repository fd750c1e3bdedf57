"""Frozen CLIP text and vision towers with prompt entry points (HCEP Sec. 3.3-3.4, 4.1.4).

* :class:`ClipTextEncoder`: CoOp-style learnable context tokens inserted right after the
  start-of-text token; the feature is pooled at the end-of-text token, whose position shifts by
  the number of prompt tokens (Zhou et al., CoOp; the pattern of HESP ``prompt/prompt.py``).
* :class:`ClipVisionEncoder`: shallow VPT, learnable tokens inserted right after the class token
  (Jia et al., VPT); the feature is pooled at the class token. Videos are encoded frame by frame
  and the frame features are averaged.

Both wrap the submodules of a transformers ``CLIPModel`` (they never copy or re-implement the
layers) and never read files: :mod:`openmer.backbones.pretrained` loads them.

Outputs are the *projected* CLIP features (``text_projection`` / ``visual_projection``), not
L2-normalised: methods normalise where their equations say so.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from openmer.backbones.base import PromptSpec, TextEncoder, VisionEncoder

#: CLIP's pixel statistics (OpenAI CLIP ``_transform``; ``CLIPImageProcessor`` defaults).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def expand_prompts(prompts: Tensor, batch_size: int, *, name: str = "prompts") -> Tensor:
    """Broadcast prompts shared by the batch, ``(n, w)``, to ``(B, n, w)``; check ``(B, n, w)``.

    Raises:
        ValueError: wrong rank, or a per-sample batch size that differs from ``batch_size``.
    """
    if prompts.dim() == 2:
        return prompts.unsqueeze(0).expand(batch_size, -1, -1)
    if prompts.dim() == 3:
        if prompts.shape[0] != batch_size:
            raise ValueError(f"{name} batch size {prompts.shape[0]} does not match the input batch size {batch_size}")
        return prompts
    raise ValueError(f"{name} must be (n, width) or (B, n, width), got shape {tuple(prompts.shape)}")


def causal_masks(text_model: nn.Module, hidden: Tensor, mask: Tensor) -> dict[str, Any]:
    """The attention arguments ``CLIPTextModel.forward`` gives its encoder, for embeddings ``hidden``.

    What transformers' own CLIP text model does in each supported version:

    - transformers 5.x: one causal + padding mask from ``masking_utils.create_causal_mask`` (its
      cache argument is ``cache`` from 5.x on; ``past_key_values``, deprecated, before) and
      ``is_causal=True``;
    - transformers 4.57: a 4-D padding mask (``_prepare_4d_attention_mask``) and a separate 4-D
      causal mask (``_create_4d_causal_attention_mask``) passed as ``causal_attention_mask``.

    Args:
        hidden: (B, L, width) input embeddings (prompts and positions included).
        mask: (B, L) 0/1 padding mask.
    """
    encoder: Any = text_model.encoder
    encoder_args = inspect.signature(encoder.forward).parameters
    if "causal_attention_mask" in encoder_args:  # transformers 4.x
        from transformers.modeling_attn_mask_utils import _create_4d_causal_attention_mask, _prepare_4d_attention_mask

        return {
            "attention_mask": _prepare_4d_attention_mask(mask, hidden.dtype),
            "causal_attention_mask": _create_4d_causal_attention_mask(hidden.shape[:2], hidden.dtype, hidden.device),
        }

    from transformers.masking_utils import create_causal_mask

    cache_arg = "cache" if "cache" in inspect.signature(create_causal_mask).parameters else "past_key_values"
    attn = create_causal_mask(config=text_model.config, inputs_embeds=hidden, attention_mask=mask, **{cache_arg: None})
    return {"attention_mask": attn, "is_causal": True}


def _check_width(prompts: Tensor, width: int, what: str) -> None:
    if prompts.shape[-1] != width:
        raise ValueError(f"{what} prompts must have width {width} (last dim), got shape {tuple(prompts.shape)}")


class ClipTextEncoder(TextEncoder):
    """CLIP text tower with CoOp context tokens after the start-of-text token.

    The token-embedding sequence ``[SOT, t_1..t_k, EOT, pad...]`` becomes
    ``[SOT, p_1..p_m, t_1..t_k, EOT, pad...]``; position embeddings are added *after* the
    insertion, the causal and padding masks cover the new sequence, and the output is the
    projected final-layer-norm state at the (shifted) end-of-text position. A sequence longer
    than ``max_position_embeddings`` (77 for CLIP) keeps its first content tokens and its EOT.

    Args:
        text_model: a transformers ``CLIPTextModel`` (``CLIPModel.text_model``).
        text_projection: ``CLIPModel.text_projection`` (``width -> embed_dim``, no bias).
        tokenizer: the CLIP tokenizer saved with the model.
        name_or_path: hub id or folder the weights came from (recorded in checkpoints).
        n_prompt_tokens: ``m`` reported by :meth:`prompt_spec` (``forward`` takes any ``m``).

    Attributes:
        width: token-embedding width (512 for ViT-B/16).
        embed_dim: projection dimension of the output (512 for ViT-B/16).
        max_length: ``max_position_embeddings`` (77).
    """

    modality = "text"
    kind = "clip-text"

    # text_model: CLIPModel.text_model, whose class differs between transformers 4.x and 5.x (duck-typed)
    def __init__(
        self, text_model: Any, text_projection: nn.Linear, tokenizer: Any, *,
        name_or_path: str = "", n_prompt_tokens: int = 2,
    ) -> None:
        super().__init__()
        if n_prompt_tokens < 0:
            raise ValueError(f"n_prompt_tokens must be >= 0, got {n_prompt_tokens}")
        self.text_model = text_model
        self.text_projection = text_projection
        self.tokenizer = tokenizer
        self.name_or_path = name_or_path
        self.n_prompt_tokens = int(n_prompt_tokens)
        cfg = text_model.config
        self.width = int(cfg.hidden_size)
        self.embed_dim = int(text_projection.out_features)
        self.max_length = int(text_model.embeddings.position_embedding.num_embeddings)
        # transformers' pooling rule (CLIPTextModel.forward): a legacy config with
        # eos_token_id == 2 pools at argmax(input_ids) (EOT has the largest id); otherwise at
        # the first occurrence of config.eos_token_id.
        self._legacy_eos = cfg.eos_token_id == 2
        tok_eos = getattr(tokenizer, "eos_token_id", None)
        self.eos_token_id = int(tok_eos if (self._legacy_eos and tok_eos is not None) else cfg.eos_token_id)
        self.freeze()

    def prompt_spec(self) -> PromptSpec:
        return PromptSpec(
            kind="tokens", shape=(self.n_prompt_tokens, self.width), whole_input_shape=None,
            description=f"{self.n_prompt_tokens} CLIP token embeddings of width {self.width}, inserted after the "
            "start-of-text token (CoOp)",
        )

    # ----------------------------------------------------------------------------- tokens
    def tokenize(self, texts: Sequence[str]) -> dict[str, Tensor]:
        """Tokenize a batch, padded to the longest and truncated to ``max_length`` (77).

        Returns:
            ``{"input_ids": (B, L) int64, "attention_mask": (B, L) int64}`` on the encoder's device.
        """
        if isinstance(texts, str):
            texts = [texts]
        enc = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt",
        )
        return {"input_ids": enc["input_ids"].to(self.device), "attention_mask": enc["attention_mask"].to(self.device)}

    def token_embeddings(self, text: str) -> Tensor:
        """Token embeddings of ``text``'s content tokens (no SOT/EOT), e.g. to initialise SMEP prompts.

        Returns:
            ``(n, width)`` detached copy of the rows of the token-embedding table.

        Raises:
            ValueError: if ``text`` has no content token.
        """
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) == 0:
            raise ValueError(f"text {text!r} has no tokens")
        ids_t = torch.as_tensor(ids, dtype=torch.long, device=self.device)
        return self.text_model.embeddings.token_embedding(ids_t).detach().clone()

    def eos_positions(self, input_ids: Tensor) -> Tensor:
        """(B,) index of the end-of-text token of each row, as transformers' CLIP pools."""
        ids = input_ids.to(torch.int)
        if self._legacy_eos:
            return ids.argmax(dim=-1).long()
        return (ids == self.eos_token_id).int().argmax(dim=-1).long()

    def _as_ids(self, inputs: Sequence[str] | Mapping[str, Tensor] | Tensor) -> tuple[Tensor, Tensor]:
        if isinstance(inputs, Tensor):
            ids = inputs
            mask = torch.ones_like(ids)
        elif isinstance(inputs, Mapping):
            ids = inputs["input_ids"]
            given = inputs.get("attention_mask")
            mask = torch.ones_like(ids) if given is None else given
        else:
            enc = self.tokenize(inputs)
            ids, mask = enc["input_ids"], enc["attention_mask"]
        if ids.dim() != 2:
            raise ValueError(f"input_ids must be (B, L), got shape {tuple(ids.shape)}")
        return ids.to(self.device, torch.long), mask.to(self.device, torch.long)

    def _fit_length(self, ids: Tensor, mask: Tensor, m: int) -> tuple[Tensor, Tensor]:
        """Shorten rows so that ``L + m <= max_length``, keeping the EOT token (as truncation does)."""
        limit = self.max_length - m
        if limit < 2:
            raise ValueError(f"{m} prompt tokens leave no room for SOT/EOT within {self.max_length} positions")
        if ids.shape[1] <= limit:
            return ids, mask
        eos = self.eos_positions(ids)
        ids, mask = ids[:, :limit].clone(), mask[:, :limit].clone()
        cut = eos >= limit
        ids[cut, limit - 1] = self.eos_token_id
        mask[cut, limit - 1] = 1
        return ids, mask

    # ----------------------------------------------------------------------------- forward
    def forward(
        self, inputs: Sequence[str] | Mapping[str, Tensor] | Tensor, prompts: Tensor | None = None,
    ) -> Tensor:
        """Encode texts, optionally with context tokens after the start-of-text token.

        Args:
            inputs: ``B`` strings, a :meth:`tokenize` dict, or ``(B, L)`` input ids.
            prompts: ``(m, width)`` shared by the batch, or ``(B, m, width)`` per sample; ``None``
                gives exactly ``CLIPModel.get_text_features``.

        Returns:
            ``(B, embed_dim)`` projected, *unnormalised* text features.
        """
        ids, mask = self._as_ids(inputs)
        m = 0 if prompts is None else int(prompts.shape[-2])
        ids, mask = self._fit_length(ids, mask, m)
        pool_at = self.eos_positions(ids)
        emb = self.text_model.embeddings
        tokens = emb.token_embedding(ids)  # (B, L, width)
        batch = tokens.shape[0]
        if prompts is not None:
            _check_width(prompts, self.width, "text")
            ctx = expand_prompts(prompts.to(tokens.device, tokens.dtype), batch)
            tokens = torch.cat([tokens[:, :1], ctx, tokens[:, 1:]], dim=1)  # (B, 1 + m + L-1, width)
            mask = torch.cat([mask[:, :1], mask.new_ones(batch, m), mask[:, 1:]], dim=1)
            pool_at = pool_at + m
        length = tokens.shape[1]
        hidden = tokens + emb.position_embedding(emb.position_ids[:, :length])
        hidden = self.text_model.encoder(inputs_embeds=hidden, **causal_masks(self.text_model, hidden, mask))
        hidden = hidden.last_hidden_state
        hidden = self.text_model.final_layer_norm(hidden)
        pooled = hidden[torch.arange(batch, device=hidden.device), pool_at]  # (B, width)
        return self.text_projection(pooled)


class ClipVisionEncoder(VisionEncoder):
    """CLIP vision tower with shallow VPT tokens after the class token; videos are frame-averaged.

    Order (as ``CLIPVisionModel.forward``): patch + class embeddings + position embeddings ->
    **insert prompts after the class token** -> ``pre_layrnorm`` -> encoder -> ``post_layernorm``
    on the class token -> ``visual_projection``.

    Args:
        vision_model: a transformers ``CLIPVisionModel`` (``CLIPModel.vision_model``).
        visual_projection: ``CLIPModel.visual_projection`` (``width -> embed_dim``, no bias).
        image_processor: the ``CLIPImageProcessor`` saved with the model, or ``None`` (then
            :meth:`preprocess` resizes, centre-crops and normalises in torch with CLIP's statistics).
        name_or_path: hub id or folder the weights came from.
        n_prompt_tokens: ``n`` reported by :meth:`prompt_spec` (``forward`` takes any ``n``).
        num_frames: frames per clip the data pipeline should sample (HCEP: 8); ``forward``
            accepts any ``N``.

    Attributes:
        width: ViT width (768 for ViT-B/16). ``image_size``: ``S`` (224).
    """

    modality = "video"
    kind = "clip-vision"

    # vision_model: CLIPModel.vision_model, whose class differs between transformers versions (duck-typed)
    def __init__(
        self, vision_model: Any, visual_projection: nn.Linear, image_processor: Any = None, *,
        name_or_path: str = "", n_prompt_tokens: int = 2, num_frames: int = 8,
    ) -> None:
        super().__init__()
        if n_prompt_tokens < 0 or num_frames < 1:
            raise ValueError(f"need n_prompt_tokens >= 0 and num_frames >= 1, got {n_prompt_tokens}, {num_frames}")
        self.vision_model = vision_model
        self.visual_projection = visual_projection
        self.image_processor = image_processor
        self.name_or_path = name_or_path
        self.n_prompt_tokens = int(n_prompt_tokens)
        self.num_frames = int(num_frames)
        self.width = int(vision_model.config.hidden_size)
        self.image_size = int(vision_model.config.image_size)
        self.embed_dim = int(visual_projection.out_features)
        self.freeze()

    def prompt_spec(self) -> PromptSpec:
        s = self.image_size
        return PromptSpec(
            kind="tokens", shape=(self.n_prompt_tokens, self.width), whole_input_shape=(3, s, s),
            description=f"{self.n_prompt_tokens} ViT tokens of width {self.width} after the class token (shallow VPT); "
            f"whole prompts are normalised 3x{s}x{s} images",
        )

    def preprocess(self, frames: np.ndarray | Tensor, path: object = None) -> Tensor:
        """RGB frames to normalised CLIP pixels.

        Args:
            frames: ``(N, H, W, 3)`` uint8 RGB (numpy or torch).
            path: the source file (unused; the vision-preprocess signature of every encoder).

        Returns:
            ``(N, 3, S, S)`` float32 on the encoder's device: the model's ``CLIPImageProcessor``
            when it was saved with it; otherwise resize of the short side to ``S`` (bicubic,
            antialiased), centre crop ``S x S``, scale to [0, 1] and CLIP mean/std.
        """
        arr = frames.cpu().numpy() if isinstance(frames, Tensor) else np.asarray(frames)
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise ValueError(f"frames must be (N, H, W, 3) RGB, got shape {arr.shape}")
        if self.image_processor is not None:
            out = self.image_processor(images=list(arr), return_tensors="pt")["pixel_values"]
            return out.to(self.device, torch.float32)
        x = torch.from_numpy(np.ascontiguousarray(arr)).to(self.device).permute(0, 3, 1, 2).float()
        h, w = x.shape[-2:]
        s = self.image_size
        scale = s / min(h, w)
        size = (max(s, round(h * scale)), max(s, round(w * scale)))
        x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 255)
        top, left = (size[0] - s) // 2, (size[1] - s) // 2
        x = x[..., top:top + s, left:left + s] / 255.0
        mean = torch.tensor(CLIP_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def patch_embeddings(self, pixels: Tensor) -> Tensor:
        """``(B, 3, S, S)`` images -> ``(B, width, S / patch, S / patch)``: the patch embedding (conv1)."""
        conv = self.vision_model.embeddings.patch_embedding
        return conv(pixels.to(self.device, conv.weight.dtype))

    def encode_frames(self, pixels: Tensor, prompts: Tensor | None = None) -> Tensor:
        """``(B, 3, S, S)`` images (+ ``(n, width)`` / ``(B, n, width)`` prompts) -> ``(B, embed_dim)``."""
        vm = self.vision_model
        hidden = vm.embeddings(pixels.to(self.device, vm.embeddings.patch_embedding.weight.dtype))  # (B, 1+P, width)
        if prompts is not None:
            _check_width(prompts, self.width, "vision")
            ctx = expand_prompts(prompts.to(hidden.device, hidden.dtype), hidden.shape[0])
            hidden = torch.cat([hidden[:, :1], ctx, hidden[:, 1:]], dim=1)  # (B, 1+n+P, width)
        hidden = vm.pre_layrnorm(hidden)
        hidden = vm.encoder(inputs_embeds=hidden).last_hidden_state
        pooled = vm.post_layernorm(hidden[:, 0])  # class token
        return self.visual_projection(pooled)

    def forward(self, inputs: Tensor, prompts: Tensor | None = None) -> Tensor:
        """Encode images or videos.

        Args:
            inputs: ``(B, 3, S, S)`` images or ``(B, N, 3, S, S)`` videos, already normalised
                (:meth:`preprocess`).
            prompts: ``(n, width)`` shared, or ``(B, n, width)`` per sample (shared by its frames).

        Returns:
            ``(B, embed_dim)`` projected, unnormalised features; for videos, the mean over the
            ``N`` frame features.
        """
        if inputs.dim() == 4:
            return self.encode_frames(inputs, prompts)
        if inputs.dim() != 5:
            raise ValueError(f"inputs must be (B, 3, S, S) or (B, N, 3, S, S), got shape {tuple(inputs.shape)}")
        b, n = inputs.shape[:2]
        if prompts is not None and prompts.dim() == 3:
            prompts = expand_prompts(prompts, b).repeat_interleave(n, dim=0)  # (B*N, n_tok, width)
        feats = self.encode_frames(inputs.flatten(0, 1), prompts)  # (B*N, D)
        return feats.view(b, n, -1).mean(dim=1)
