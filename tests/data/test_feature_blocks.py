"""The missing-modality rule of the feature heads: fill with the training mean of present rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from openmer.data.feature_blocks import fill_absent_blocks
from openmer.data.tensors import FeatureDataset
from openmer.errors import MissingModalityError
from openmer.methods.heads import FeatureEmbedding


def _tables():
    rng = np.random.default_rng(0)
    feats = {"text": rng.normal(size=(6, 3)).astype(np.float32),
             "audio": rng.normal(5, 2, size=(6, 2)).astype(np.float32)}
    present = {"text": np.array([True, False, True, True, False, True]), "audio": np.ones(6, dtype=bool)}
    feats["text"][~present["text"]] = 0.0  # what encode_features gives for an absent clip
    return feats, present


def test_absent_blocks_get_the_training_mean_of_present_rows():
    feats, present = _tables()
    train = np.array([0, 1, 2, 3])
    x, mask = fill_absent_blocks(feats, present, ("text", "audio"), train_rows=train)
    expected = feats["text"][[0, 2, 3]].mean(0)  # present training rows only: not the zeros of row 1
    assert x.shape == mask.shape == (6, 5) and x.dtype == np.float32 and mask.dtype == bool
    np.testing.assert_allclose(x[1, :3], expected)
    np.testing.assert_allclose(x[4, :3], expected)  # a test row gets the training mean too
    np.testing.assert_array_equal(x[:, 3:], feats["audio"])
    np.testing.assert_array_equal(x[[0, 2, 3, 5], :3], feats["text"][[0, 2, 3, 5]])
    np.testing.assert_array_equal(mask[:, 0], present["text"])
    assert mask[:, 3:].all()
    # order of the blocks follows ``modalities``; no presence table = every clip has every modality
    x2, mask2 = fill_absent_blocks(feats, None, ("audio", "text"))
    np.testing.assert_array_equal(x2, np.concatenate([feats["audio"], feats["text"]], 1))
    assert mask2.all()


def test_block_mean_is_used_at_inference_and_errors():
    feats, present = _tables()
    mean = np.arange(5, dtype=np.float32)
    x, _ = fill_absent_blocks(feats, present, ("text", "audio"), block_mean=mean)
    np.testing.assert_array_equal(x[1, :3], mean[:3])
    with pytest.raises(ValueError, match="block_mean has 4 values"):
        fill_absent_blocks(feats, present, ("text", "audio"), block_mean=mean[:4])
    with pytest.raises(MissingModalityError, match="no training clip has text"):
        fill_absent_blocks(feats, present, ("text",), train_rows=[1, 4])
    with pytest.raises(ValueError, match="must be"):
        fill_absent_blocks({"text": feats["text"][:4], "audio": feats["audio"]}, None, ("text", "audio"))


def test_statistics_skip_filled_values_so_a_filled_block_standardises_to_zero():
    feats, present = _tables()
    x, mask = fill_absent_blocks(feats, present, ("text", "audio"))
    emb = FeatureEmbedding(5, 0, 4)
    emb.fit_statistics(torch.from_numpy(x), torch.from_numpy(mask))
    seen = feats["text"][present["text"]]
    np.testing.assert_allclose(emb.mean[:3].numpy(), seen.mean(0), rtol=1e-6)
    np.testing.assert_allclose(emb.std[:3].numpy(), seen.std(0), rtol=1e-5)  # not shrunk by the filled rows
    np.testing.assert_allclose(emb.std[3:].numpy(), feats["audio"].std(0), rtol=1e-5)
    z = (torch.from_numpy(x) - emb.mean) / emb.std
    assert torch.allclose(z[1, :3], torch.zeros(3), atol=1e-6)
    # without a mask: the plain statistics
    emb.fit_statistics(torch.from_numpy(x))
    np.testing.assert_allclose(emb.std[:3].numpy(), x[:, :3].std(0), rtol=1e-5)


def test_feature_dataset_carries_the_mask_in_every_batch_form():
    feats, present = _tables()
    x, mask = fill_absent_blocks(feats, present, ("text", "audio"))
    data = FeatureDataset(x, np.zeros(6, dtype=np.int64), mask)
    assert torch.equal(data.batches(4)[1]["features_present"], torch.from_numpy(mask[4:]))
    assert torch.equal(data.__getitems__([1, 2])["features_present"], torch.from_numpy(mask[[1, 2]]))
    assert torch.equal(data[1]["features_present"], torch.from_numpy(mask[1]))
    assert "features_present" not in FeatureDataset(x, np.zeros(6)).batches()[0]
    with pytest.raises(ValueError, match="shape of features"):
        FeatureDataset(x, np.zeros(6), mask[:, :2])


def test_train_and_predict_use_the_same_rule(tmp_path, monkeypatch):
    """`openmer train` fits the head on present rows; `evaluate`/`predict` fill with that mean."""
    from tests.helpers.encoders import toy_encoders
    from tests.helpers.tiny_media import CLASSES, make_tiny_media

    from openmer import inference
    from openmer.backbones.factory import EncoderSpec, ProfileConfig
    from openmer.data.clips import ClipDataset
    from openmer.data.feature_cache import encode_features
    from openmer.training import TrainConfig
    from openmer.training import run as training_run

    no_text = [f"{c}_{g}_0" for c in CLASSES for g in range(5)]
    manifest, _ = make_tiny_media(tmp_path, monkeypatch, without_text=no_text)
    manifest.write(tmp_path / "manifest.csv")

    def toy_profile(prof, modalities=None, **_):
        return {m: e for m, e in toy_encoders().items() if m in modalities}

    monkeypatch.setattr(training_run, "load_profile", toy_profile)
    from openmer.backbones import factory

    monkeypatch.setattr(factory, "load_profile", toy_profile)  # what openmer.runs loads a run's encoders with
    profile = ProfileConfig(name="toy", text=EncoderSpec(kind="toy-text", name_or_path="toy"),
                            audio=EncoderSpec(kind="toy-audio", name_or_path="toy"))
    out = training_run.train(tmp_path / "manifest.csv", CLASSES[:3], method="arpl", profile=profile,
                             out=tmp_path / "run",
                             train_config=TrainConfig(epochs=1, optimizer="adam", lr=1e-2, batch_size=8),
                             modalities=["text", "audio"], cache_dir=tmp_path / "cache")
    run = inference.load_run(out, profile=profile)
    info = run.info
    known = [i for i, s in enumerate(manifest) if s.label in CLASSES[:3]]
    man = manifest.subset(known)
    groups = np.array([s.group for s in man])
    train_rows = np.flatnonzero(np.isin(groups, info.groups["train"]))
    clips = ClipDataset(man, np.zeros(len(man), dtype=np.int64), ["text", "audio"])
    feats, present = encode_features(clips, toy_encoders())
    seen = train_rows[present["text"][train_rows]]
    assert 0 < len(seen) < len(train_rows)
    np.testing.assert_allclose(run.method.embedding.mean[:6].numpy(), feats["text"][seen].mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run.method.embedding.std[:6].numpy(), feats["text"][seen].std(0), rtol=1e-4)
    # scoring a clip without transcript = scoring it with the training mean in the text block
    with pytest.warns(UserWarning, match="lack text"):
        s = inference.score_clips(run, clips)
    x = np.concatenate([feats["text"], feats["audio"]], 1)
    x[~present["text"], :6] = run.method.embedding.mean[:6].numpy()
    expected = run.method.score_all(FeatureDataset(x, clips.labels).batches())
    torch.testing.assert_close(s.confidence, expected.confidence)
