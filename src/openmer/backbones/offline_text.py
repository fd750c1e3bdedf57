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

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from openmer.backbones.base import Encoder, PromptSpec


def mean_pool(hidden: Tensor, mask: Tensor) -> Tensor:
    """sentence-transformers mean pooling: (B, n, D), (B, n) -> (B, D)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


class MiniLMTextEncoder(Encoder):
    """Frozen all-MiniLM-L6-v2 (BERT) text encoder, 384-d unit-norm output.

    Args:
        model: a loaded ``transformers`` ``BertModel`` (from ``AutoModel``).
        tokenizer: its tokenizer.
        name_or_path: where they came from.
        n_prompt_tokens: m, default 2.
        max_length: token limit of the text (sentence-transformers ``max_seq_length`` 256).
    """

    modality = "text"
    kind = "minilm"

    def __init__(self, model: nn.Module, tokenizer, name_or_path: str = "", *, n_prompt_tokens: int = 2,
                 max_length: int = 256):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.name_or_path = name_or_path
        self.max_length = max_length
        self.n_prompt_tokens = n_prompt_tokens
        self.width = int(model.get_input_embeddings().embedding_dim)
        self.embed_dim = int(model.config.hidden_size)
        self.freeze()

    def prompt_spec(self) -> PromptSpec:
        return PromptSpec(
            "tokens", (self.n_prompt_tokens, self.width), None,
            f"{self.n_prompt_tokens} learnable token embeddings ({self.width}-d) after [CLS]",
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
        ids = self.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"][0]
        return self.model.get_input_embeddings().weight[ids.to(self.device)].detach().clone()

    def hidden_states(self, texts: Sequence[str], prompts: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Last hidden states (B, n [+ m], 384) and the attention mask used for pooling (B, n [+ m])."""
        batch = self.tokenize(texts)
        if prompts is None:
            out = self.model(**batch).last_hidden_state
            return out, batch["attention_mask"]
        ids, mask = batch["input_ids"], batch["attention_mask"]
        b = ids.shape[0]
        if prompts.dim() == 2:
            prompts = prompts.unsqueeze(0).expand(b, -1, -1)
        elif prompts.dim() != 3 or prompts.shape[0] != b:
            raise ValueError(f"prompts must be (m, {self.width}) or (B={b}, m, {self.width}), got {tuple(prompts.shape)}")
        if prompts.shape[-1] != self.width:
            raise ValueError(f"prompt tokens must be {self.width}-d, got {prompts.shape[-1]}")
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
