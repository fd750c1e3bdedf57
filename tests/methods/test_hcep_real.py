"""HCEP learns on real speech (EmoDB through Whisper + MiniLM): issue 10's checks on real data.

- Capacity: HCEP's own confidence stream, softmax(s (D_neg - D_pos)), fits 20 EmoDB clips of two
  classes within a bounded number of steps, and what it learnt carries to other speakers.
- Geometry: with prompts off and the class features set to the class means of the unprompted
  features (negatives at the origin), the DPOL prediction is the nearest-class-mean classifier on
  those features. That classifier is the floor a trained HCEP must not fall below.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.conftest import requires_shared_path

pytestmark = [requires_shared_path("data/emodb"), requires_shared_path("models/whisper-base-encoder"),
              requires_shared_path("models/all-MiniLM-L6-v2")]

CLASSES = ["anger", "sadness"]
TRAIN_SPEAKERS = ("10", "11", "13", "14", "15", "16")  # the EmoDB protocol's training speakers
TEST_SPEAKERS = ("09", "12")


@pytest.fixture(scope="module")
def emodb():
    from openmer.backbones.factory import load_profile, profile_config
    from openmer.data.clips import ClipDataset
    from openmer.datasets import load_emodb

    torch.manual_seed(0)
    prof = profile_config("offline").with_options("audio", prompt_entry="late")
    prof = prof.with_options("text", prompt_entry="late")
    encoders = load_profile(prof, modalities=("text", "audio"))
    man = load_emodb()
    rows = [i for i, s in enumerate(man) if s.label in CLASSES]
    man = man.subset(rows)
    labels = np.array([CLASSES.index(s.label) for s in man])
    clips = ClipDataset(man, labels, ("text", "audio"))
    groups = np.array([s.group for s in man])
    rng = np.random.default_rng(0)
    in_train = np.isin(groups, TRAIN_SPEAKERS)
    train = np.concatenate([rng.choice(np.flatnonzero(in_train & (labels == k)), 10, replace=False) for k in range(2)])
    test = np.flatnonzero(np.isin(groups, TEST_SPEAKERS))
    return prof, encoders, clips, train, test


def build(prof, encoders, **options):
    from openmer.methods.hcep import HCEP, HCEPConfig

    cfg = HCEPConfig.from_dict({"profile": prof.to_dict(), "modalities": ["text", "audio"],
                                "cuep_audio_samples": 16000, **options})
    return HCEP(cfg, CLASSES, encoders)


def test_hcep_fits_20_clips_with_its_own_confidence_stream(emodb):
    from openmer.training.config import TrainConfig
    from openmer.training.engine import make_optimizer

    prof, encoders, clips, train, test = emodb
    m = build(prof, encoders, center_blocks=True)
    batch = clips.subset(train).batches(len(train))[0]
    m.setup([batch])
    opt = make_optimizer(m.parameter_groups(), TrainConfig(optimizer="adam", lr=1e-3, lr_scales={"cuep": 30.0}))
    for _ in range(12):  # bounded: 12 full-batch steps (it fits in about 10)
        out = m.training_step(batch)
        opt.zero_grad()
        out.total.backward()
        opt.step()
    m.mark_fitted()
    m.eval()
    s = m.score(batch)
    assert (s.prediction == batch["label"]).float().mean() >= 0.95
    assert s.confidence.mean() > 0.8  # not near-uniform
    held_out = m.score_all(clips.subset(test).batches(32))
    assert (held_out.prediction.numpy() == clips.labels[test]).mean() >= 0.75  # other speakers


def test_dpol_with_class_mean_features_is_the_nearest_class_mean_classifier(emodb):
    prof, encoders, clips, train, test = emodb
    m = build(prof, encoders, modalities=["audio"], use_smep=False, use_cuep=False)
    enc = encoders["audio"]
    train_batch = clips.subset(train).batches(len(train))[0]
    test_batch = clips.subset(test).batches(len(test))[0]
    with torch.no_grad():
        f_train = F.normalize(enc(train_batch["audio"], lengths=train_batch["audio_lengths"]), dim=-1)
        f_test = F.normalize(enc(test_batch["audio"], lengths=test_batch["audio_lengths"]), dim=-1)
        means = F.normalize(torch.stack([f_train[train_batch["label"] == k].mean(0) for k in range(2)]), dim=-1)
        m.random_pos["audio"].copy_(means)
        m.random_neg["audio"].zero_()
    m.mark_fitted()
    m.eval()
    ncm = (f_test @ means.t()).argmax(1)
    s = m.score(test_batch)
    assert torch.equal(s.prediction, ncm)
    assert (ncm.numpy() == clips.labels[test]).mean() > 0.6  # the floor is above chance on these speakers
