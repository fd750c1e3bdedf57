"""Every registered method, and every post-hoc score, when one modality is constant over the training
clips (every training video the same still image, issue 24 case 6): confidences on clips where that
modality differs are finite, in the range their docstrings give, and of the size of the training
confidences or lower (before the fix, z-scoring by the rounding noise of a constant block gave ARPL
confidences of 1e11 and more, accepted as known).
"""

from __future__ import annotations

import math

import pytest
import torch

from openmer.data.tensors import FeatureDataset
from openmer.methods import get_method, list_methods
from openmer.methods.posthoc import POSTHOC_SCORES
from openmer.training import TrainConfig, fit
from tests.methods.test_contract import CLASSES, make_case

K = len(CLASSES)
#: the range each confidence's docstring gives (lo, hi); a name not listed is unbounded (finite only)
DOCUMENTED_RANGE = {
    "msp": (1 / K, 1.0),  # max softmax (posthoc.max_softmax, MSP, ARPL softmax, Open-VCLIP, HCEP Algorithm 1)
    "entropy": (-math.log(K), 0.0),  # posthoc.entropy_confidence
    "mahalanobis": (-math.inf, 0.0),  # posthoc.mahalanobis_confidence
    "knn": (-2.0, 0.0),  # posthoc.knn_confidence
    "ova": (0.0, 1.0),  # cpn.ova_confidence, m <= 0
    "dce": (-math.inf, 0.0),  # CPN dce: max_k -T d_k
    "calibrated": (0.0, 1.0),  # LPL: max p, 0 for unreliable samples
}
FAST = TrainConfig(epochs=3, optimizer="adam", lr=3e-3, batch_size=32, eval_every=3)
ROUNDING = 1e-6  # an encoder's float32 noise between batches of another size, relative


def _still(x: torch.Tensor, dims: slice, seed: int) -> torch.Tensor:
    """``x`` with ``dims`` replaced by one vector for every row (plus float32-level rounding noise)."""
    g = torch.Generator().manual_seed(seed)
    out = x.clone()
    const = out[0, dims]
    out[:, dims] = const * (1 + ROUNDING * torch.randn(out[:, dims].shape, generator=g))
    return out


def constant_case(name: str):
    """The contract's toy case of ``name`` with the last modality block (the video) constant in training."""
    case = make_case(name)
    if isinstance(case.train, FeatureDataset):
        d = case.train.x.shape[1]
        dims = slice(d // 2, d) if d > 4 and name != "openvclip" else slice(0, d)
        case.train = FeatureDataset(_still(case.train.x, dims, 0).numpy(), case.train.y.numpy())
        case.val = None
    else:
        for i, b in enumerate(case.train):
            video = b["video"]
            b["video"] = _still(video.flatten(1), slice(0, None), i).view_as(video)
    if hasattr(case.method.config, "standardize_blocks"):  # HCEP: z-score its blocks (today's preset)
        torch.manual_seed(0)
        config = case.method.config.model_copy(update={"standardize_blocks": True})
        case.method = type(case.method)(config, CLASSES, case.load_kwargs["encoders"])
    return case


def _check(name: str, score: str, conf: torch.Tensor, train_conf: torch.Tensor) -> None:
    assert bool(torch.isfinite(conf).all()), (name, score)
    lo, hi = DOCUMENTED_RANGE.get(score, (-math.inf, math.inf))
    assert float(conf.min()) >= lo - 1e-6 and float(conf.max()) <= hi + 1e-6, (name, score, conf.min(), conf.max())
    size = max(1.0, float(train_conf.abs().max()))  # a far-off clip may score far lower (rejected), never far higher
    assert float(conf.max()) <= 1e3 * size, (name, score, float(conf.max()), size)


@pytest.mark.parametrize("name", list_methods())
def test_a_constant_training_modality_gives_finite_in_range_confidences(name):
    case = constant_case(name)
    fit(case.method, case.train, case.val, FAST if get_method(name).consumes == "features" else
        TrainConfig(epochs=2, optimizer="adam", lr=1e-2))
    train_batches = case.train.batches() if isinstance(case.train, FeatureDataset) else case.train
    train_conf = case.method.score_all(train_batches).confidence
    conf = case.method.score_all(case.known + case.unknown).confidence
    _check(name, case.method.score_name, conf, train_conf)


def test_every_posthoc_score_on_a_head_trained_with_a_constant_modality():
    from openmer.methods.posthoc import posthoc_scores

    case = constant_case("arpl")
    fit(case.method, case.train, None, FAST)
    train = case.train.batches()
    names = list(POSTHOC_SCORES)
    test = posthoc_scores(case.method, train, case.known + case.unknown, names)
    own = posthoc_scores(case.method, train, train, names)
    for n in names:
        _check("arpl", n, test[n][0], own[n][0])
