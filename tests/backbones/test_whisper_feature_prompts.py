"""Whisper's cheaper prompt entry: tokens after the conv front end (``prompt_entry="features"``)."""

from __future__ import annotations

import pytest
import torch

from openmer.backbones import EncoderSpec, load_encoder
from openmer.errors import ConfigError
from tests.conftest import requires_shared_path

pytestmark = requires_shared_path("models/whisper-base-encoder")


@pytest.fixture(scope="module")
def encoders(request):
    from tests.conftest import SHARED

    path = str(SHARED / "models" / "whisper-base-encoder")
    wave = EncoderSpec(kind="whisper", name_or_path=path)
    feat = EncoderSpec(kind="whisper", name_or_path=path, options={"prompt_entry": "features"})
    return load_encoder(wave), load_encoder(feat)


def test_feature_tokens_steer_attention_but_not_the_pooled_frames(encoders):
    wave_enc, feat_enc = encoders
    spec = feat_enc.prompt_spec()
    assert spec.kind == "tokens" and spec.shape == (2, 512) and spec.whole_input_shape == (80000,)
    g = torch.Generator().manual_seed(0)
    audio = 0.1 * torch.randn(2, 16000, generator=g)
    lengths = torch.tensor([16000, 12000])
    with torch.no_grad():
        plain = feat_enc(audio, lengths=lengths)
        assert torch.allclose(plain, wave_enc(audio, lengths=lengths), atol=1e-5)  # no prompt: same encoder
    prompts = torch.randn(2, 512, generator=g).requires_grad_(True)
    out = feat_enc(audio, prompts=prompts, lengths=lengths)
    assert out.shape == (2, 512) and not torch.allclose(out, plain, atol=1e-3)
    out.sum().backward()
    assert prompts.grad is not None and prompts.grad.abs().sum() > 0
    assert all(p.grad is None for p in feat_enc.parameters())
    with torch.no_grad():  # a padded batch equals each clip alone
        single = feat_enc(audio[1:, :12000], prompts=prompts.detach())
        assert torch.allclose(single[0], feat_enc(audio, prompts=prompts.detach(), lengths=lengths)[1], atol=1e-4)
    with pytest.raises(ValueError, match="feature prompts must be"):
        feat_enc(audio, prompts=torch.zeros(2, 8000))


def test_unknown_prompt_entry_is_an_error():
    from tests.conftest import SHARED

    with pytest.raises((ConfigError, ValueError), match="prompt_entry"):
        load_encoder(EncoderSpec(kind="whisper", name_or_path=str(SHARED / "models" / "whisper-base-encoder"),
                                 options={"prompt_entry": "middle"}))
