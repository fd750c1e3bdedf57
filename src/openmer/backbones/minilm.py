"""all-MiniLM-L6-v2 sentence encoder with CoOp-style token prompts (kind ``"minilm"``).

Without prompts the output is exactly the sentence-transformers embedding: BERT last hidden
states, mean-pooled over the attention mask, L2-normalised (max 256 tokens).

With prompts, m learnable token embeddings are inserted right after ``[CLS]`` in the
word-embedding sequence; the sequence goes through BERT's own embedding layer as
``inputs_embeds`` (so position and token-type embeddings and the embedding LayerNorm are applied
to prompts like to words), the attention mask gets m ones, and the mean pooling covers the
prompt tokens too (they are part of the input, like [CLS] and [SEP], which sentence-transformers
also pools). Text is still truncated at 256 tokens, so a prompted sequence has up to 256 + m.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Self

import torch
from torch import Tensor, nn

from openmer.backbones.base import PromptSpec, TextEncoder
from openmer.backbones.prefix import PrefixCache

if TYPE_CHECKING:
    from transformers import BertModel, PreTrainedTokenizerBase

#: where the prompts enter (see :class:`MiniLMTextEncoder`)
PROMPT_ENTRIES = ("input", "late")


def mean_pool(hidden: Tensor, mask: Tensor) -> Tensor:
    """sentence-transformers mean pooling: (B, n, D), (B, n) -> (B, D)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


class MiniLMTextEncoder(TextEncoder):
    """Frozen all-MiniLM-L6-v2 (BERT) text encoder, 384-d unit-norm output.

    Args:
        model: a loaded ``transformers`` ``BertModel`` (from ``AutoModel``).
        tokenizer: its tokenizer.
        name_or_path: where they came from.
        n_prompt_tokens: m, default 2.
        max_length: token limit of the text (sentence-transformers ``max_seq_length`` 256).
        prompt_entry: ``"input"`` (default: the m tokens are inserted in the word-embedding
            sequence, see the module docstring) or ``"late"`` (late prompt tuning: they are
            inserted after [CLS] in the hidden states entering layer ``prompt_layer``; the
            states below are computed once per sentence and kept in a
            :class:`~openmer.backbones.prefix.PrefixCache`).
        prompt_layer: first layer (0-based) that sees the prompts with ``"late"`` (default: the last).
        prefix_cache_mb: memory for the cached states of ``"late"`` (MiB).

    Raises:
        ValueError: unknown ``prompt_entry`` or a ``prompt_layer`` outside the model's layers.
    """

    modality = "text"
    kind = "minilm"

    def __init__(self, model: BertModel, tokenizer: PreTrainedTokenizerBase, name_or_path: str = "", *,
                 n_prompt_tokens: int = 2, max_length: int = 256, prompt_entry: str = "input",
                 prompt_layer: int | None = None, prefix_cache_mb: int = 1024):
        super().__init__()
        if prompt_entry not in PROMPT_ENTRIES:
            raise ValueError(f"prompt_entry must be one of {PROMPT_ENTRIES}, got {prompt_entry!r}")
        n_layers = len(model.encoder.layer)
        self.prompt_layer = n_layers - 1 if prompt_layer is None else int(prompt_layer)
        if not 0 <= self.prompt_layer < n_layers:
            raise ValueError(f"prompt_layer must be in 0..{n_layers - 1}, got {prompt_layer}")
        self.prompt_entry = prompt_entry
        self.prefix_cache = PrefixCache(prefix_cache_mb << 20)
        self.model = model
        self.tokenizer = tokenizer
        self.name_or_path = name_or_path
        self.max_length = max_length
        self.n_prompt_tokens = n_prompt_tokens
        self.width = int(model.get_input_embeddings().embedding_dim)
        self.embed_dim = int(model.config.hidden_size)
        self.freeze()

    def _apply(self, fn: Callable[[Tensor], Tensor], *args: Any, **kwargs: Any) -> Self:
        # device/dtype moves: cached states no longer match
        self.prefix_cache.clear()
        return super()._apply(fn, *args, **kwargs)

    def prompt_spec(self) -> PromptSpec:
        where = "after [CLS]" if self.prompt_entry == "input" else f"after [CLS], entering layer {self.prompt_layer}"
        return PromptSpec(
            "tokens", (self.n_prompt_tokens, self.width), None,
            f"{self.n_prompt_tokens} learnable token embeddings ({self.width}-d) {where}",
        )

    def tokenize(self, texts: Sequence[str]) -> dict[str, Tensor]:
        """Tokenize a batch: ``input_ids``, ``attention_mask``, ``token_type_ids`` (B, n) on the encoder's device."""
        if isinstance(texts, str):
            raise ValueError("texts must be a sequence of strings, not one string")
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt")
        return {k: v.to(self.device) for k, v in batch.items()}

    def token_embeddings(self, text: str) -> Tensor:
        """Word-embedding rows (n, width) of the text's own tokens (no [CLS]/[SEP]), detached.

        E.g. ``"facial expression"`` -> (2, 384); used to initialise SMEP's text prompts.
        """
        if self.prompt_entry == "late":  # the phrase's own rows of the states entering prompt_layer
            return self.layer_input([text])[0][1:-1].clone()
        ids = self.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"][0]
        return self.model.get_input_embeddings().weight[ids.to(self.device)].detach().clone()

    # -- late prompt entry -------------------------------------------------------------------
    def _mask(self, hidden: Tensor, mask: Tensor) -> Any:
        """The attention mask the model's layers expect, from a (B, n) 0/1 padding mask."""
        try:
            from transformers.masking_utils import create_bidirectional_mask
        except ImportError:  # older transformers: additive 4-D mask
            return (1.0 - mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        return create_bidirectional_mask(config=self.model.config, inputs_embeds=hidden, attention_mask=mask)

    def _run_layers(self, hidden: Tensor, mask: Tensor, start: int, stop: int | None) -> Tensor:
        attn = self._mask(hidden, mask)
        for layer in self.model.encoder.layer[start:stop]:
            hidden = layer(hidden, attn)
            if isinstance(hidden, tuple):  # older transformers return (hidden, ...)
                hidden = hidden[0]
        return hidden

    def layer_input(self, texts: Sequence[str]) -> list[Tensor]:
        """Hidden states entering layer ``prompt_layer``, one (n_i, width) tensor per sentence
        ([CLS] ... [SEP], no padding), cached per sentence."""
        texts = list(texts)

        def compute(idx: list[int]) -> list[Tensor]:
            batch = self.tokenize([texts[i] for i in idx])
            emb = self.model.embeddings(input_ids=batch["input_ids"], token_type_ids=batch.get("token_type_ids"))
            h = self._run_layers(emb, batch["attention_mask"], 0, self.prompt_layer)
            return [h[j, : int(batch["attention_mask"][j].sum())] for j in range(len(idx))]

        return self.prefix_cache.get([f"{len(t)}:{t}" for t in texts], compute)

    def _late(self, texts: Sequence[str], prompts: Tensor | None) -> tuple[Tensor, Tensor]:
        states = self.layer_input(texts)
        b = len(states)
        lengths = torch.tensor([len(t) for t in states], device=states[0].device)
        h = nn.utils.rnn.pad_sequence(states, batch_first=True)
        mask = (torch.arange(h.shape[1], device=h.device)[None, :] < lengths[:, None]).long()
        if prompts is not None:
            prompts = self._batch_prompts(prompts, b).to(h.dtype)
            h = torch.cat([h[:, :1], prompts, h[:, 1:]], dim=1)
            mask = torch.cat([mask[:, :1], torch.ones(b, prompts.shape[1], dtype=mask.dtype, device=mask.device),
                              mask[:, 1:]], dim=1)
        return self._run_layers(h, mask, self.prompt_layer, None), mask

    def _batch_prompts(self, prompts: Tensor, b: int) -> Tensor:
        if prompts.dim() == 2:
            prompts = prompts.unsqueeze(0).expand(b, -1, -1)
        elif prompts.dim() != 3 or prompts.shape[0] != b:
            raise ValueError(
                f"prompts must be (m, {self.width}) or (B={b}, m, {self.width}), got {tuple(prompts.shape)}")
        if prompts.shape[-1] != self.width:
            raise ValueError(f"prompt tokens must be {self.width}-d, got {prompts.shape[-1]}")
        return prompts

    def hidden_states(self, texts: Sequence[str], prompts: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Last hidden states (B, n [+ m], 384) and the attention mask used for pooling (B, n [+ m])."""
        if self.prompt_entry == "late":
            return self._late(texts, prompts)
        batch = self.tokenize(texts)
        if prompts is None:
            out = self.model(**batch).last_hidden_state
            return out, batch["attention_mask"]
        ids, mask = batch["input_ids"], batch["attention_mask"]
        b = ids.shape[0]
        prompts = self._batch_prompts(prompts, b)
        words = self.model.get_input_embeddings()(ids)
        prompts = prompts.to(words.dtype)
        embeds = torch.cat([words[:, :1], prompts, words[:, 1:]], dim=1)
        ones = torch.ones(b, prompts.shape[1], dtype=mask.dtype, device=mask.device)
        mask = torch.cat([mask[:, :1], ones, mask[:, 1:]], dim=1)
        type_ids = torch.zeros_like(mask)
        out = self.model(inputs_embeds=embeds, attention_mask=mask, token_type_ids=type_ids).last_hidden_state
        return out, mask

    def forward(self, texts: Sequence[str], prompts: Tensor | None = None) -> Tensor:
        """Encode sentences.

        Args:
            texts: B strings.
            prompts: ``None``, (m, width) shared by the batch, or (B, m, width) token embeddings.

        Returns:
            (B, 384) L2-normalised mean-pooled embeddings.

        Raises:
            ValueError: ``texts`` is a single string, or prompts have the wrong shape.
        """
        hidden, mask = self.hidden_states(texts, prompts)
        return nn.functional.normalize(mean_pool(hidden, mask), dim=-1)
