"""The encoder contract, checked for every entry of ``ENCODER_KINDS`` (and each prompt entry) on
tiny random weights saved to disk and read back through the kind's loader.

Every encoder: frozen parameters that ``train()`` does not unfreeze (and no dropout in
training mode), output ``(B, embed_dim)``, prompts of ``prompt_spec().shape`` (shared) and
``(B, *shape)`` (per sample), whole prompts of ``whole_input_shape``, gradients that reach the
prompts and never the encoder, prompts that survive a safetensors save/load and never become
encoder state. A new kind fails :func:`test_every_kind_is_covered` until it is given a case here.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from openmer.backbones import ENCODER_KINDS, Encoder, EncoderSpec, load_encoder

#: (kind, loader options): every kind, and each of its prompt entries
CASES: list[tuple[str, dict[str, Any]]] = [
    ("clip-text", {}), ("clip-vision", {}),
    ("wav2vec2", {"prompt_segment_samples": 800, "whole_input_samples": 4000}),  # short: 5 s costs seconds
    ("wav2vec2", {"prompt_entry": "features", "whole_input_samples": 4000}),
    ("whisper", {}), ("whisper", {"prompt_entry": "features"}), ("whisper", {"prompt_entry": "late"}),
    ("minilm", {}), ("minilm", {"prompt_entry": "late"}),
    ("fer-mini-xception", {}),
]
B = 3
TEXTS = ["a happy voice", "the sad face", "facial expression"]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def folders(tiny_paper_models: dict[str, Any], tiny_light_models: dict[str, Any]) -> dict[str, str]:
    return {"clip-text": str(tiny_paper_models["clip_dir"]), "clip-vision": str(tiny_paper_models["clip_dir"]),
            "wav2vec2": str(tiny_paper_models["wav2vec2_dir"]), "whisper": str(tiny_light_models["whisper_dir"]),
            "minilm": str(tiny_light_models["minilm_dir"]), "fer-mini-xception": str(tiny_light_models["fer_file"])}


def _case_id(case: tuple[str, dict[str, Any]]) -> str:
    return case[0] + "".join(f"-{v}" for v in case[1].values() if isinstance(v, str))


@pytest.fixture(scope="module", params=CASES, ids=_case_id)
def encoder(request: pytest.FixtureRequest, folders: dict[str, str]) -> Encoder:
    kind, options = request.param
    return load_encoder(EncoderSpec(kind=kind, name_or_path=folders[kind], options=options))


def _inputs(enc: Encoder) -> dict[str, Any]:
    """A batch of B inputs of the encoder's modality, as ``forward`` takes them."""
    if enc.modality == "text":
        return {"texts": TEXTS}
    if enc.modality == "audio":
        return {"x": 0.1 * torch.randn(B, 4800, generator=_gen(1)), "lengths": torch.tensor([4800, 3200, 4000])}
    frame = enc.prompt_spec().whole_input_shape  # a video frame: (C, S, S)
    assert frame is not None and len(frame) == 3, f"{enc.kind}: a vision encoder's whole input is one frame"
    return {"x": torch.randn(B, 2, *frame, generator=_gen(1)).clamp(-1, 1)}


def _encode(enc: Encoder, prompts: torch.Tensor | None = None) -> torch.Tensor:
    args = _inputs(enc)
    if enc.modality == "text":
        return enc(args["texts"], prompts=prompts)
    if enc.modality == "audio":
        return enc(args["x"], prompts=prompts, lengths=args["lengths"])
    return enc(args["x"], prompts=prompts)


def _prompts(enc: Encoder, *, per_sample: bool = False, seed: int = 2) -> torch.Tensor:
    shape = enc.prompt_spec().shape
    return 0.1 * torch.randn(((B,) if per_sample else ()) + tuple(shape), generator=_gen(seed))


def test_every_kind_is_covered():
    assert set(ENCODER_KINDS.names()) <= {kind for kind, _ in CASES}


def test_frozen_and_train_does_not_unfreeze(encoder: Encoder):
    params = list(encoder.parameters())
    assert params and not any(p.requires_grad for p in params)
    assert encoder.train() is encoder
    assert not any(m.training for m in encoder.modules())
    assert not any(p.requires_grad for p in encoder.parameters())
    with torch.no_grad():  # training mode changes nothing: no dropout, no batch statistics
        torch.testing.assert_close(_encode(encoder), _encode(encoder), atol=0, rtol=0)


def test_output_shape(encoder: Encoder):
    with torch.no_grad():
        out = _encode(encoder)
    assert out.shape == (B, encoder.embed_dim) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_prompt_spec_shapes(encoder: Encoder):
    spec = encoder.prompt_spec()
    assert spec.kind in ("tokens", "samples", "pixels", "none") and spec.description
    assert all(isinstance(n, int) and n > 0 for n in spec.shape)
    with torch.no_grad():
        plain, shared = _encode(encoder), _encode(encoder, _prompts(encoder))
        same = _encode(encoder, _prompts(encoder).expand(B, *spec.shape).clone())
        per_sample = _encode(encoder, _prompts(encoder, per_sample=True))
    assert shared.shape == per_sample.shape == (B, encoder.embed_dim)
    assert not torch.allclose(shared, plain), "prompts must change the features"
    torch.testing.assert_close(same, shared, atol=1e-5, rtol=1e-5)  # (B, *shape) of equal rows = shared
    if spec.whole_input_shape is not None:
        whole = encoder.init_whole_prompts(2, 0.1, _gen(3))
        assert whole.shape == (2, *spec.whole_input_shape)
        with torch.no_grad():
            assert encoder.encode_whole_prompts(whole).shape == (2, encoder.embed_dim)


def test_gradients_reach_only_the_prompts(encoder: Encoder):
    prompts = _prompts(encoder, per_sample=True).requires_grad_(True)
    _encode(encoder, prompts).square().sum().backward()
    assert prompts.grad is not None and torch.isfinite(prompts.grad).all() and prompts.grad.abs().sum() > 0
    assert all(p.grad is None for p in encoder.parameters())
    spec = encoder.prompt_spec()
    if spec.whole_input_shape is not None:
        whole = encoder.init_whole_prompts(2, 0.1, _gen(3)).requires_grad_(True)
        encoder.encode_whole_prompts(whole).square().sum().backward()
        assert whole.grad is not None and whole.grad.abs().sum() > 0
        assert all(p.grad is None for p in encoder.parameters())


def test_prompts_save_load_and_stay_out_of_the_encoder(encoder: Encoder, tmp_path):
    keys = set(encoder.state_dict())
    prompts = _prompts(encoder, per_sample=True)
    save_file({"prompts": prompts.contiguous()}, str(tmp_path / "prompts.safetensors"))
    loaded = load_file(str(tmp_path / "prompts.safetensors"))["prompts"]
    with torch.no_grad():
        torch.testing.assert_close(_encode(encoder, loaded), _encode(encoder, prompts), atol=0, rtol=0)
    assert set(encoder.state_dict()) == keys  # prompts belong to the method, never to the encoder
