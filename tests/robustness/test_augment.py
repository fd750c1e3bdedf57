"""``--augment``: corruptions of the training clips only, seeded per clip and epoch (openmer.data.augment),
in ``openmer train`` and in ``openmer benchmark robustness``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from openmer.data import augment as augment_module
from openmer.data.augment import AugmentedClips
from openmer.data.clips import ClipDataset
from openmer.media.corruptions import Augmentation
from openmer.runs import RUN_FILE
from openmer.training.run import train
from tests.helpers.run_folders import FAST, KNOWN
from tests.helpers.tiny_media import make_tiny_media


def _audio(item) -> np.ndarray:
    return np.asarray(item["audio"], dtype=np.float32)


def test_augmented_clips_are_seeded_per_clip_and_epoch(tmp_path, monkeypatch):
    man, _ = make_tiny_media(tmp_path, monkeypatch)
    clips = ClipDataset(man, [0] * len(man), ("audio", "text"))
    aug = Augmentation(("white_noise", "reverb"), p=1.0)
    rows = list(range(20))
    a, b = (AugmentedClips(clips.subset(rows), aug, seed=3) for _ in range(2))
    assert all(np.array_equal(_audio(a[i]), _audio(b[i])) for i in range(len(a)))  # same seed, same draws
    assert not any(np.array_equal(_audio(a[i]), _audio(clips[rows[i]])) for i in range(len(a)))  # p = 1: all hit
    reordered = AugmentedClips(clips.subset(rows[::-1]), aug, seed=3)  # a clip's draw follows its id, not its place
    assert np.array_equal(_audio(reordered[len(rows) - 1]), _audio(a[0]))
    b.start_epoch(1)
    assert sum(np.array_equal(_audio(a[i]), _audio(b[i])) for i in range(len(a))) == 0  # a new draw each epoch
    other = AugmentedClips(clips.subset(rows), aug, seed=4)
    assert not np.array_equal(_audio(other[0]), _audio(a[0]))
    half = AugmentedClips(clips.subset(rows), Augmentation(("white_noise",), p=0.5), seed=3)
    clean = sum(half.augmented(i) is None for i in range(len(half)))
    assert 0 < clean < len(half)  # about half stay clean
    assert np.array_equal(_audio(clips[rows[0]]), _audio(ClipDataset(man, [0] * len(man), ("audio",))[rows[0]]))


@pytest.mark.parametrize("method", ["arpl", "hcep"])
def test_train_augments_training_clips_only_records_it_and_loading_never_applies_it(
        tmp_path, tiny_paper_profile, audio_text_data, monkeypatch, method):
    from openmer.inference import load_run, predict_iter

    seen: list[tuple[str, int]] = []
    draw = augment_module.clip_rng
    monkeypatch.setattr(augment_module, "clip_rng", lambda seed, cid, epoch: seen.append((cid, epoch)) or
                        draw(seed, cid, epoch))
    opts = {"cuep_audio_samples": 400} if method == "hcep" else None
    aug = Augmentation(("white_noise", "reverb"), p=1.0)
    cfg = FAST.model_copy(update={"epochs": 1}) if method == "hcep" else FAST  # HCEP is slow here
    kw = {"method": method, "profile": tiny_paper_profile, "train_config": cfg, "method_options": opts,
          "cache_dir": tmp_path / "cache", "preset": "paper", "modalities": ["audio", "text"]}
    run = train(audio_text_data, KNOWN, out=tmp_path / "aug", augment=aug, **kw)
    info = json.loads((run / RUN_FILE).read_text())
    assert info["augmentation"] == {"names": ["white_noise", "reverb"], "p": 1.0, "max_severity": 3, "seed": 0}
    ids = {cid for cid, _ in seen}
    assert ids == set(info["samples"]["train"])  # every training clip, never a validation one
    assert not ids & set(info["samples"]["val"])
    assert {e for _, e in seen} == {0}  # features: the epoch-0 draw, encoded once (clips: a new draw per epoch below)
    if method == "arpl":
        clean = train(audio_text_data, KNOWN, out=tmp_path / "clean", **kw)
        assert json.loads((clean / RUN_FILE).read_text())["augmentation"] is None
        assert (run / "model.safetensors").read_bytes() != (clean / "model.safetensors").read_bytes()

    def refuse(*_):
        raise AssertionError("a loaded run applied the augmentation")
    monkeypatch.setattr(augment_module, "clip_rng", refuse)
    loaded = load_run(run, profile=tiny_paper_profile)
    files = sorted((audio_text_data.parent / "wav").glob("*.wav"))[:3]
    out = list(predict_iter(loaded, files, text="i feel happy now"))
    assert len(out) == 3 and not any("error" in r for r in out)


def test_train_refuses_an_augmentation_of_a_modality_it_does_not_read(tmp_path, tiny_paper_profile, audio_text_data):
    from openmer.errors import ConfigError

    with pytest.raises(ConfigError, match="--augment word_deletion corrupts text, which this run does not read"):
        train(audio_text_data, KNOWN, method="arpl", profile=tiny_paper_profile, out=tmp_path / "r", train_config=FAST,
              modalities=["audio"], augment=Augmentation(("word_deletion",)), cache_dir=tmp_path / "cache")
    assert not (tmp_path / "r").exists()


def test_benchmark_augments_every_method_and_reports_augmented_minus_clean(tmp_path, monkeypatch):
    from openmer.benchmarks.robustness import RobustnessConfig, run_robustness
    from tests.helpers.tiny_media import tiny_config

    man, protocol = make_tiny_media(tmp_path, monkeypatch)
    seen: list[str] = []
    epochs: set[int] = set()
    draw = augment_module.clip_rng
    monkeypatch.setattr(augment_module, "clip_rng", lambda seed, cid, epoch: seen.append(cid) or epochs.add(epoch) or
                        draw(seed, cid, epoch))
    base = tiny_config()
    cfg = RobustnessConfig(**{**base.model_dump(), "methods": ("msp", "hcep"), "posthoc": (),
                              "hcep_train": base.hcep_train.model_copy(update={"epochs": 2}),
                              "clip_posthoc": (), "levels": ("O(3:1)",), "corruptions": ("babble", "gain"),
                              "severities": (1,), "augment": ("white_noise",), "augment_p": 1.0})
    res = run_robustness(cfg, data=(man, protocol))
    methods = {r["method"] for r in res.records}
    assert methods == {"msp", "msp+aug", "hcep", "hcep+aug"}
    train_groups = set(protocol.partition.train_groups)
    assert seen and {man[int(i)].group for i in range(len(man)) if man[int(i)].id in set(seen)} <= train_groups
    # the feature methods' copies are drawn once per training-speaker clip; HCEP drew its training clips again
    assert len(seen) > sum(s.group in train_groups for s in man)
    assert epochs == {0, 1}  # a new draw each epoch (the training loop tells the clips the epoch)
    aug = next(r for r in res.records if r["method"] == "hcep+aug")
    assert aug["training"] == "augmented" and aug["train_set"] == "toy + augment white_noise"
    title, lines = res.sections[-1]
    assert "augmented minus clean" in title
    rows = [line for line in lines if line.startswith(("| msp |", "| hcep |"))]
    assert len(rows) == 2 * 3  # clean, noise (babble), level (gain) per method
    assert any("| noise | no |" in r for r in rows) and any("| level | yes |" in r for r in rows)


def test_augmentation_deltas_pair_splits_and_average_a_family():
    from openmer.benchmarks.robustness import augmentation_deltas

    recs = []
    for split, (clean, aug) in enumerate(((0.6, 0.7), (0.5, 0.8))):
        for m, v in (("arpl", clean), ("arpl+aug", aug)):
            base = {"method": m, "level": "O(3:4)", "split": split, "modalities": "audio", "oscr": v,
                    "fpr_at_threshold": 0.1, "tpr_at_threshold": 0.2, "fpr_at_threshold_recalibrated": 0.1}
            recs.append({**base, "corruption": "none", "severity": 0, "auroc": v})
            recs += [{**base, "corruption": c, "severity": 1, "auroc": v - d} for c, d in (("mp3", 0.1), ("opus", 0.3))]
    got = {r["family"]: r for r in augmentation_deltas(recs)}
    assert set(got) == {"clean", "codec"}
    assert got["clean"]["delta_auroc_mean"] == pytest.approx(0.2)
    assert got["clean"]["delta_auroc_std"] == pytest.approx(0.1)
    assert got["codec"]["clean_auroc"] == pytest.approx(0.55 - 0.2) and got["codec"]["splits"] == 2
    assert torch.isfinite(torch.tensor(got["codec"]["delta_fpr_at_threshold_mean"]))
