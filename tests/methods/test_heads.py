"""Feature statistics (z-scoring of the heads' and HCEP's blocks): a constant dimension is never
divided by rounding noise (issue 24, case 6: every training video the same still image)."""

from __future__ import annotations

import torch

from openmer.methods.heads import FeatureEmbedding, feature_statistics


def _constant_rows(n: int = 700, d: int = 512, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (0.5 * torch.randn(d, generator=g)).repeat(n, 1)  # every row the same vector


def test_a_constant_dimension_gets_std_one_with_or_without_a_mask():
    x = _constant_rows()
    for present in (None, torch.ones(x.shape, dtype=torch.bool)):
        mean, std = feature_statistics(x, present)
        # float32 sums left the mask's std at ~1e-7 (> the old 1e-8 floor): z then reached 1e7
        assert torch.equal(std, torch.ones_like(std)), present is None
        assert torch.equal(mean, x[0])  # exact: the centred training block is exactly 0


def test_a_dimension_varying_only_at_rounding_level_counts_as_constant():
    x = _constant_rows()
    g = torch.Generator().manual_seed(1)
    noisy = x * (1 + 1e-6 * torch.randn(x.shape, generator=g))  # an encoder's float32 noise across batches
    _, std = feature_statistics(noisy)
    assert torch.equal(std, torch.ones_like(std))
    # a real dimension keeps its own std, even a small one next to large ones
    real = torch.cat([noisy[:, :4], 1e-2 * torch.randn(len(x), 1, generator=g)], dim=1)
    _, std = feature_statistics(real)
    assert torch.equal(std[:4], torch.ones(4)) and 5e-3 < float(std[4]) < 2e-2


def test_statistics_of_a_block_observed_in_some_rows_only():
    x = torch.tensor([[1.0, 2.0], [3.0, 2.0], [100.0, -7.0]])
    present = torch.tensor([[True, True], [True, True], [False, False]])
    mean, std = feature_statistics(x, present)
    torch.testing.assert_close(mean, torch.tensor([2.0, 2.0]))
    torch.testing.assert_close(std, torch.tensor([1.0, 1.0]))  # dim 1 constant over the observed rows
    mean, std = feature_statistics(x, torch.zeros_like(present))  # never observed: mean 0, std 1
    assert torch.equal(mean, torch.zeros(2)) and torch.equal(std, torch.ones(2))


def test_a_new_value_of_a_constant_training_dimension_stays_of_its_own_size():
    x = _constant_rows(d=16)
    emb = FeatureEmbedding(16, learned=False)
    emb.fit_statistics(x, torch.ones(x.shape, dtype=torch.bool))
    other = x[:1] + 0.5
    z = emb(other)
    assert bool(torch.isfinite(z).all()) and float(z.abs().max()) <= 0.5 + 1e-6
