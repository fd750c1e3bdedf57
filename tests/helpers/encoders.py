"""Tiny stand-in encoders implementing the Encoder contract (for fast method tests).

They follow the same prompt entry points as the real ones: text tokens after the start token,
visual tokens after a class token, waveform samples in front of the audio.
"""

from __future__ import annotations

import zlib

import torch
from torch import Tensor, nn

from openmer.backbones.base import AudioEncoder, PromptSpec, TextEncoder, VisionEncoder


class ToyText(TextEncoder):
    modality = "text"
    kind = "toy-text"

    def __init__(self, width: int = 8, dim: int = 6, vocab: int = 97):
        super().__init__()
        self.width, self.embed_dim, self.vocab = width, dim, vocab
        self.emb = nn.Embedding(vocab, width)
        self.proj = nn.Linear(width, dim)
        self.name_or_path = "toy"
        self.freeze()

    def _ids(self, text: str) -> Tensor:
        ids = [zlib.crc32(w.encode()) % (self.vocab - 2) + 2 for w in text.lower().split()]
        return torch.tensor([1, *ids], dtype=torch.long)

    def token_embeddings(self, text: str) -> Tensor:
        return self.emb(self._ids(text)[1:])

    def prompt_spec(self) -> PromptSpec:
        return PromptSpec("tokens", (2, self.width), None, "toy")

    def forward(self, texts, prompts=None):
        out = []
        for i, t in enumerate(texts):
            e = self.emb(self._ids(t))
            if prompts is not None:  # (m, width) shared, or (B, m, width) per text
                e = torch.cat([e[:1], prompts[i] if prompts.dim() == 3 else prompts, e[1:]], 0)
            out.append(self.proj(torch.tanh(e)).mean(0))
        return torch.stack(out)


class ToyAudio(AudioEncoder):
    modality = "audio"
    kind = "toy-audio"

    def __init__(self, dim: int = 5, seg: int = 40, whole: int = 400):
        super().__init__()
        self.embed_dim, self.seg, self.whole = dim, seg, whole
        self.conv = nn.Conv1d(1, dim, kernel_size=20, stride=10)
        self.name_or_path = "toy"
        self.freeze()

    def prompt_spec(self) -> PromptSpec:
        return PromptSpec("samples", (2, self.seg), (self.whole,), "toy")

    def forward(self, waves, prompts=None, lengths=None):
        if prompts is not None:
            waves = torch.cat([prompts.reshape(1, -1).expand(len(waves), -1), waves], 1)
        return torch.relu(self.conv(waves[:, None])).mean(-1)


class ToyVision(VisionEncoder):
    modality = "video"
    kind = "toy-vision"

    def __init__(self, dim: int = 4, size: int = 8):
        super().__init__()
        self.embed_dim, self.size = dim, size
        self.lin = nn.Linear(3 * size * size, dim)
        self.name_or_path = "toy"
        self.freeze()

    def prompt_spec(self) -> PromptSpec:
        return PromptSpec("pixels", (3, self.size, self.size), (3, self.size, self.size), "toy")

    def forward(self, x, prompts=None):
        video = x.ndim == 5
        frames = x.flatten(0, 1) if video else x
        if prompts is not None:
            frames = frames + prompts
        f = self.lin(frames.flatten(1))
        return f.view(x.shape[0], x.shape[1], -1).mean(1) if video else f


def toy_encoders() -> dict[str, TextEncoder | AudioEncoder | VisionEncoder]:
    torch.manual_seed(0)
    return {"text": ToyText(), "audio": ToyAudio(), "video": ToyVision()}
