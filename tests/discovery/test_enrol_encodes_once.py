"""Enrolment encodes each clip once (OpenSetMethod.encode_samples_once), not at every tuning step."""

from __future__ import annotations

import torch

from openmer.backbones.factory import ProfileConfig
from openmer.discovery.enrol import enrol_method
from openmer.methods.hcep import HCEP, HCEPConfig
from openmer.training import TrainConfig, fit
from tests.helpers.encoders import toy_encoders
from tests.methods.test_contract import CLASSES, _clip_batch


def _trained_hcep() -> tuple[HCEP, list[dict]]:
    torch.manual_seed(0)
    method = HCEP(HCEPConfig(profile=ProfileConfig(name="toy"), block_dropout=0.3), CLASSES, toy_encoders())
    labels = torch.arange(3).repeat_interleave(4)
    train = [_clip_batch(labels, s) for s in range(2)]
    fit(method, train, None, TrainConfig(epochs=2, optimizer="adam", lr=1e-2))
    return method, train


def test_hcep_samples_encoded_once_give_the_same_scores_features_and_loss():
    method, train = _trained_hcep()
    batch = train[0]
    once = method.encode_samples_once(batch)
    assert method.encode_samples_once(once) is once  # idempotent
    method.eval()
    torch.testing.assert_close(method.score(once).confidence, method.score(batch).confidence)
    torch.testing.assert_close(method.features(once), method.features(batch))
    method.train()  # training mode: block dropout still drawn per step, after the cached encoding
    torch.manual_seed(5)
    a = method.loss(batch)
    torch.manual_seed(5)
    b = method.loss(once)
    method.eval()
    torch.testing.assert_close(a, b)


def test_hcep_enrolment_runs_each_clip_through_the_encoders_once():
    method, train = _trained_hcep()
    examples = [{**_clip_batch(torch.full((4,), -1), 7, value=1.5), "label": torch.full((4,), 3)}]
    calls = {"audio": 0, "video": 0}
    for m in calls:
        enc = method.encoders[m]
        original = enc.encode_batch

        def counted(*args, _m=m, _f=original, **kwargs):
            calls[_m] += 1
            return _f(*args, **kwargs)

        enc.encode_batch = counted  # the enrolled method shares the frozen encoders
    new, params, losses, conf = enrol_method(method, "surprise", train, examples, steps=12, lr=0.05)
    assert len(losses) == 12 and params and new.num_classes == 4 and len(conf) == 28
    # 3 batches (2 of training clips, 1 of examples), each encoded once: not 2 per step (24 more)
    assert calls == {"audio": 3, "video": 3}


def test_hcep_classes_held_fixed_give_the_same_class_features_and_encode_only_the_new_rows():
    from openmer.discovery.enrol import enrolled_method

    method, _ = _trained_hcep()
    new, _ = enrolled_method(method, "surprise")
    new.train()
    prompts = new.cuep.negative["audio"]
    full_pos, full_neg = new.class_features()
    w = torch.randn_like(full_neg["audio"])
    (full_neg["audio"] * w).sum().backward()
    full_grad, prompts.grad = prompts.grad.clone(), None
    rows = {"n": 0}
    enc = new.encoders["audio"]
    original = enc.encode_whole_prompts

    def counted(x):
        rows["n"] += len(x)
        return original(x)

    enc.encode_whole_prompts = counted
    new.hold_classes_fixed(3)
    for _ in range(3):
        pos, neg = new.class_features()
    new.hold_classes_fixed(0)
    torch.testing.assert_close(pos["audio"], full_pos["audio"])
    torch.testing.assert_close(neg["audio"], full_neg["audio"])
    # the 3 old classes' positive and negative prompts once (6), then the new class's two per call
    assert rows["n"] == 6 + 3 * 2
    (neg["audio"] * w).sum().backward()
    torch.testing.assert_close(prompts.grad[3], full_grad[3])  # the new row learns as before
    assert float(prompts.grad[:3].abs().sum()) == 0.0 < float(full_grad[:3].abs().sum())
