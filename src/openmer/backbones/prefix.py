"""Late prompt entry: the frozen layers below the prompts run once per input, then are reused.

With ``prompt_entry="late"`` an encoder's prompts enter at layer L (late prompt tuning). The
hidden states that enter layer L do not depend on any prompt, so they are a pure function of the
input and the frozen weights: :class:`PrefixCache` keeps them per input, keyed by a hash of the
input's content (the waveform's samples, the sentence's text), so every training epoch after the
first runs only the layers from L on. Nothing derived from learnable parameters is cached here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor


def tensor_key(x: Tensor) -> str:
    """Content hash of a tensor (dtype, shape and values)."""
    x = x.detach().contiguous()
    h = hashlib.sha1(f"{x.dtype}|{tuple(x.shape)}|".encode())
    h.update(x.cpu().numpy().tobytes())
    return h.hexdigest()


class PrefixCache:
    """Per-input hidden states at the prompt entry layer, kept in memory.

    Args:
        max_bytes: stop adding entries once the stored tensors reach this size (the states are
            then recomputed for inputs beyond it; nothing is evicted, so a training set that fits
            stays cached). 0 disables the cache.

    The cache belongs to one encoder with frozen weights; it is emptied whenever the encoder
    moves to another device or dtype (:meth:`clear`).
    """

    def __init__(self, max_bytes: int = 4 << 30):
        self.max_bytes = int(max_bytes)
        self._store: dict[str, Tensor] = {}
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._store)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def clear(self) -> None:
        self._store.clear()
        self._bytes = 0

    def held(self) -> list[str]:
        """The content keys held now, in the order they were added."""
        return list(self._store)

    def entries(self, keys: Iterable[str]) -> dict[str, Tensor]:
        """The held states of ``keys`` (keys not held are left out)."""
        return {k: self._store[k] for k in keys if k in self._store}

    def add(self, entries: Mapping[str, Tensor]) -> None:
        """Hold states computed earlier by this encoder (e.g. kept across a :meth:`clear` by a caller
        that knows the weights did not change), in order, within ``max_bytes``; keys held already
        keep their states."""
        for k, t in entries.items():
            size = t.numel() * t.element_size()
            if k not in self._store and self._bytes + size <= self.max_bytes:
                self._store[k] = t
                self._bytes += size

    def get(self, keys: Sequence[str], compute: Callable[[list[int]], list[Tensor]]) -> list[Tensor]:
        """The states of every key, computing the missing ones in one call.

        Args:
            keys: one content key per input.
            compute: ``compute(indices)`` -> the states of the inputs at those positions (no grad).

        Returns:
            One tensor per key, in order.
        """
        out: list[Tensor | None] = [self._store.get(k) for k in keys]
        todo = [i for i, t in enumerate(out) if t is None]
        self.hits += len(keys) - len(todo)
        self.misses += len(todo)
        if todo:
            with torch.no_grad():
                fresh = compute(todo)
            for i, computed in zip(todo, fresh, strict=True):
                t = computed.detach()
                out[i] = t
                size = t.numel() * t.element_size()
                if self._bytes + size <= self.max_bytes and keys[i] not in self._store:
                    self._store[keys[i]] = t
                    self._bytes += size
        return out  # type: ignore[return-value]
