"""A tiny generated media dataset with toy encoders, for the media benchmark and the ablation grid tests."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from openmer.backbones.factory import EncoderSpec, ProfileConfig
from openmer.benchmarks import media, trials
from openmer.benchmarks.media import MediaBenchmarkConfig
from openmer.data.manifest import Manifest, Sample
from openmer.protocol import make_protocol
from openmer.training import TrainConfig
from tests.helpers.encoders import toy_encoders

CLASSES = ["anger", "joy", "sadness", "fear"]
WORDS = {"anger": "furious rage", "joy": "delighted laugh", "sadness": "tears gloom", "fear": "scared dark"}


def tiny_config(*, seed: int = 0, quick: bool = True) -> MediaBenchmarkConfig:
    """Text + audio, 1 split per level, HCEP 1 epoch (the signature of the presets)."""
    return MediaBenchmarkConfig(
        dataset="toy", profile="toy", modalities=("text", "audio"), n_splits=1, seed=seed,
        hcep_train=TrainConfig(epochs=1, optimizer="adam", lr=1e-2, batch_size=16, seed=seed),
        baseline_train=TrainConfig(epochs=2, optimizer="adam", lr=1e-2, batch_size=16, seed=seed),
        hcep_options={"cuep_audio_samples": 400}, preset_note="tiny test preset",
    )


def make_tiny_media(root, monkeypatch, *, without_text=(), without_audio=()) -> tuple[Manifest, object]:
    """40 clips (4 classes x 5 speakers x 2), 0.05 s sine WAVs; toy encoders replace the profile.

    Clips named in ``without_text`` get an empty transcript, those in ``without_audio`` no audio.
    The feature cache goes to ``root/cache``.
    """
    samples = []
    t = np.arange(800) / 16000
    for c, cls in enumerate(CLASSES):
        for g in range(5):
            for r in range(2):
                name = f"{cls}_{g}_{r}"
                sf.write(root / f"{name}.wav", 0.3 * np.sin(2 * np.pi * (200 + 150 * c + 7 * r) * t), 16000)
                samples.append(Sample(id=name, label=cls, group=f"spk{g}",
                                      audio=None if name in without_audio else f"{name}.wav",
                                      text=None if name in without_text else WORDS[cls]))
    manifest = Manifest(samples, root=root, name="toy")
    protocol = make_protocol("toy", CLASSES, [s.group for s in samples], level_sizes=[3, 2], n_splits=1)
    stub_encoders(monkeypatch)
    monkeypatch.setenv("OPENMER_CACHE", str(root / "cache"))
    return manifest, protocol


def stub_encoders(monkeypatch) -> None:
    """The benchmarks' encoder profile is the toy encoders (:func:`toy_encoders`), one per modality."""
    monkeypatch.setattr(trials, "profile_config", lambda name: ProfileConfig(
        name=name, **{m: EncoderSpec(kind="toy", name_or_path=m) for m in ("text", "audio", "video")}))
    monkeypatch.setattr(media, "load_profile",
                        lambda prof, modalities=None, **_: {m: e for m, e in toy_encoders().items() if m in modalities})
    monkeypatch.setattr(trials, "load_encoders",
                        lambda specs, **_: {m: e for m, e in toy_encoders().items() if m in specs})
