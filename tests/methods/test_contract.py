"""The contract every registered open-set method keeps (as pytorch-ood's test_all_detectors_smoke).

For every entry of the method registry: ``NotFittedError`` before fit, a training loss that falls
on a small separable problem, score shapes and dtypes, higher confidence for known than for
unknown samples (held-out data), output on the input's device, and a round trip through the one
run-folder format (runs.save_run -> a moved folder -> inference.load_run): identical scores and threshold.

A method gets these checks by being registered. Methods that read cached features use the
feature toy (two blocks, so per-modality methods split it); a method that reads clips through
encoders (or needs features of a kind) declares how to build it and its data once, in :data:`CASES`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from openmer.backbones.factory import ProfileConfig
from openmer.data.tensors import FeatureDataset
from openmer.errors import NotFittedError
from openmer.inference import load_run
from openmer.methods import OpenSetMethod, get_method, list_methods
from openmer.methods.inputs import FeatureInputs
from openmer.methods.threshold import Threshold
from openmer.metrics import auroc
from openmer.runs import save_run
from openmer.training import TrainConfig, fit
from tests.helpers.encoders import ToyText, toy_encoders
from tests.helpers.features import blobs, sphere_blobs
from tests.helpers.run_folders import run_info_for

CLASSES = ["anger", "joy", "sadness"]
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))]


@dataclass
class Case:
    """A method built for a toy problem, its data, how to train it, and how to rebuild it when loading."""

    method: OpenSetMethod
    train: Any
    val: Any
    known: list[dict]  # held-out known-class batches
    unknown: list[dict]  # held-out unknown-class batches
    train_config: TrainConfig
    load_kwargs: dict[str, Any]


def feature_case(name: str) -> Case:
    x, y = blobs(seed=0, unknown="centre")  # the unknown class lies between the known ones
    k = y >= 0
    xt, yt = blobs(seed=0, sample_seed=1, unknown="centre")  # held out: new samples of the same blobs
    cls = get_method(name)
    cfg = cls.config_class.from_dict({"input_dim": 8, "dropout": 0.0, "blocks": [["a", 4], ["b", 4]]})
    torch.manual_seed(0)
    return Case(cls(cfg, CLASSES), FeatureDataset(x[k][::2], y[k][::2]),
                FeatureDataset(x[k][1::2], y[k][1::2]).batches(),
                FeatureDataset(xt[yt >= 0], yt[yt >= 0]).batches(), FeatureDataset(xt[yt < 0], yt[yt < 0]).batches(),
                TrainConfig(epochs=15, optimizer="adam", lr=3e-3, batch_size=32, eval_every=5), {})


WORDS = {0: "furious rage", 1: "delighted laugh", 2: "tears gloom", -1: "xylophone quartz"}


def _clip_batch(labels: torch.Tensor, seed: int, value: float | None = None) -> dict:
    """Toy clips: class k has audio and video around k and its own words; unknowns lie between classes."""
    g = torch.Generator().manual_seed(seed)
    v = labels.float() if value is None else torch.full((len(labels),), value)
    return {"text": [WORDS[int(c)] for c in labels],
            "audio": torch.randn(len(labels), 300, generator=g) * 0.1 + v[:, None],
            "audio_lengths": torch.full((len(labels),), 300),
            "video": torch.randn(len(labels), 2, 3, 8, 8, generator=g) * 0.1 + v[:, None, None, None, None],
            "label": labels}


def hcep_case() -> Case:
    from openmer.methods.hcep import HCEP, HCEPConfig

    torch.manual_seed(0)
    method = HCEP(HCEPConfig(profile=ProfileConfig(name="toy")), CLASSES, toy_encoders())
    labels = torch.arange(3).repeat_interleave(4)
    return Case(method, [_clip_batch(labels, s) for s in range(2)], None, [_clip_batch(labels, 9)],
                [_clip_batch(torch.full((12,), -1), 10, value=1.5)],
                TrainConfig(epochs=15, optimizer="adam", lr=1e-2), {"encoders": toy_encoders()})


def hesp_case() -> Case:
    from openmer.methods.hesp import HESP, HESPConfig

    torch.manual_seed(0)
    # toy 8 x 8 images: a 2-pixel prompt window, and steps sized to them (the paper's 50 is for 3 x 224 x 224)
    # (and a logit scale for 4-d features: CLIP's 100 saturates them)
    cfg = HESPConfig(profile=ProfileConfig(name="toy"), n_context=2, prompt_step=0.05, logit_scale=10.0)
    method = HESP(cfg, CLASSES, toy_encoders())
    labels = torch.arange(3).repeat_interleave(4)
    return Case(method, [_clip_batch(labels, s) for s in range(2)], None, [_clip_batch(labels, 9)],
                [_clip_batch(torch.full((12,), -1), 10, value=1.5)],
                TrainConfig(epochs=30, optimizer="adam", lr=1e-2), {"encoders": toy_encoders()})


def openvclip_case() -> Case:
    """Open-VCLIP classifies by direction in the class sentences' embedding space: CLIP-like toy
    features (clusters around unit directions) and the tiny text encoder's class embeddings."""
    from openmer.methods.openvclip import OpenVCLIP, OpenVCLIPConfig

    x, y = sphere_blobs(seed=0)
    xt, yt = sphere_blobs(seed=0, sample_seed=1)
    k = y >= 0
    torch.manual_seed(0)
    text = ToyText(dim=8)
    # toy space: CLIP's logit scale 100 saturates
    cfg = OpenVCLIPConfig(input_dim=8, blocks=(("video", 8),), templates=("{}",), logit_scale=10.0)
    return Case(OpenVCLIP.build(cfg, CLASSES, text_encoder=text), FeatureDataset(x[k][::2], y[k][::2]),
                FeatureDataset(x[k][1::2], y[k][1::2]).batches(), FeatureDataset(xt[yt >= 0], yt[yt >= 0]).batches(),
                FeatureDataset(xt[yt < 0], yt[yt < 0]).batches(),
                TrainConfig(epochs=15, optimizer="adam", lr=0.1, batch_size=32, eval_every=5, select_metric="last"), {})


#: methods that need more than the feature toy (clips through tiny encoders, or features in a
#: class-text space): how to build each with its data, declared once
CASES: dict[str, Callable[[], Case]] = {"hcep": hcep_case, "hesp": hesp_case, "openvclip": openvclip_case}


def make_case(name: str) -> Case:
    if name in CASES:
        return CASES[name]()
    if get_method(name).consumes == "features":
        return feature_case(name)
    pytest.fail(f"method {name!r} reads clips: declare how to build it with tiny encoders in CASES")


@pytest.fixture(scope="module", params=list_methods())
def trained(request):
    case = make_case(request.param)
    with pytest.raises(NotFittedError):
        case.method.score_all(case.known)
    result = fit(case.method, case.train, case.val, case.train_config)
    return request.param, case, result


def test_loss_falls_and_scores_have_the_documented_shapes(trained):
    name, case, result = trained
    assert result.history[-1]["train_loss"] < 0.7 * result.history[0]["train_loss"], name
    s = case.method.score_all(case.known + case.unknown)
    n = sum(len(b["label"]) for b in case.known + case.unknown)
    assert s.confidence.shape == (n,) and s.confidence.dtype.is_floating_point
    assert s.prediction.shape == (n,) and s.prediction.dtype == torch.int64
    assert bool(((s.prediction >= 0) & (s.prediction < len(CLASSES))).all())
    assert bool(torch.isfinite(s.confidence).all())
    if s.probabilities is not None:
        assert s.probabilities.shape == (n, len(CLASSES))


def test_higher_confidence_is_known_on_held_out_data(trained):
    name, case, _ = trained
    s = case.method.score_all(case.known + case.unknown)
    labels = torch.cat([torch.as_tensor(b["label"]) for b in case.known + case.unknown])
    assert auroc(s.confidence.numpy(), labels.numpy()) > 0.75, name
    known = labels >= 0
    assert (s.prediction[known] == labels[known]).float().mean() > 0.9, name


def test_features_are_the_trained_representation_not_the_input(trained):
    """``features`` (what t-SNE and discovery cluster) is the representation the scores come from:
    for a method on cached features, its head's penultimate features (the trained embedding), not
    the unprompted input it reads (``input_features``)."""
    name, case, _ = trained
    batches = case.known + case.unknown
    _, feats = case.method.score_all_with_features(batches)
    n = sum(len(b["label"]) for b in batches)
    assert feats is None or feats.shape[0] == n, name
    if case.method.consumes != "features":
        return
    assert feats is not None, name
    case.method.eval()
    with torch.no_grad():
        head = torch.cat([case.method.head(b).features.cpu() for b in batches])
        inputs = torch.cat([case.method.input_features(b).cpu() for b in batches])
    torch.testing.assert_close(feats, head)
    assert feats.shape != inputs.shape or not torch.allclose(feats, inputs, atol=1e-3), name


@pytest.mark.parametrize("device", DEVICES)
def test_output_on_the_input_device(trained, device):
    _, case, _ = trained
    method = case.method.to(device)
    batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in case.known[0].items()}
    s = method.score(batch)
    assert s.confidence.device.type == device and s.prediction.device.type == device
    method.to("cpu")


def _feature_inputs(case: Case, batches: list[dict]) -> FeatureInputs | None:
    """The held-out batches as the feature pipeline of ``openmer evaluate``/``predict`` builds them
    (blocks per modality, absent blocks filled with the method's training mean), or ``None`` for a
    method on clips."""
    if case.method.consumes != "features":
        return None
    x = torch.cat([torch.as_tensor(b["features"]) for b in batches]).numpy()
    y = torch.cat([torch.as_tensor(b["label"]) for b in batches]).numpy()
    layout = case.method.config.block_layout()
    starts = [sum(d for _, d in layout[:i]) for i in range(len(layout))]
    feats = {name: x[:, s:s + d] for (name, d), s in zip(layout, starts, strict=True)}
    return FeatureInputs(feats, None, [name for name, _ in layout], y)


def test_run_folder_round_trip_gives_identical_scores_and_threshold(trained, tmp_path):
    """Every registered method through the one run-folder format: runs.save_run -> a moved folder ->
    inference.load_run: same class, known classes, threshold (value and rule) and scores, the
    held-out clips scored through the input pipeline of ``openmer evaluate`` / ``predict``."""
    name, case, _result = trained
    held_out = case.known + case.unknown
    s = case.method.score_all(held_out)
    conf = case.method.score_all(case.known).confidence.numpy()
    case.method.threshold = Threshold.from_confidences(conf, 0.9, "val").value
    mods = ([n for n, _ in case.method.config.block_layout()] if case.method.consumes == "features"
            else sorted(case.method.input_encoders()))
    info = run_info_for(case.method, modalities=mods)
    info = info.model_copy(update={"threshold": Threshold.from_confidences(conf, 0.9, "val")})
    save_run(tmp_path / "a" / name, case.method, info)
    moved = shutil.move(tmp_path / "a" / name, tmp_path / "b" / name)
    run = load_run(moved, encoders=case.load_kwargs.get("encoders", {}))
    back = run.method
    assert type(back) is type(case.method) and back.known_classes == CLASSES and back.is_fitted
    assert run.info.threshold == info.threshold and run.threshold == back.threshold == case.method.threshold
    inputs = _feature_inputs(case, held_out)
    b = back.score_all(held_out if inputs is None else inputs.batches(back))
    assert torch.equal(s.prediction, b.prediction), name
    torch.testing.assert_close(s.confidence, b.confidence, rtol=0, atol=1e-6)


def test_frozen_encoders_stay_in_eval_mode_when_the_method_trains():
    """Every method on clips: ``train()`` switches what learns, never the frozen encoders' dropout."""
    from openmer.methods.base import MethodConfig, OpenSetMethod, frozen

    class Stub(OpenSetMethod):
        def __init__(self):
            super().__init__(MethodConfig(method="stub"), ["a", "b"])
            self.encoder = frozen(torch.nn.Sequential(torch.nn.Dropout(0.5)))
            self.dropout = torch.nn.Dropout(0.5)

        def loss(self, batch):
            raise NotImplementedError

        def score(self, batch):
            raise NotImplementedError

    m = Stub().train()
    assert m.dropout.training and not m.encoder.training and not m.encoder[0].training
