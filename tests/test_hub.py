"""Run folders named by a Hugging Face hub repository id: JSON and safetensors only, one-line errors offline."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from openmer.cli.app import app
from openmer.errors import CheckpointError
from openmer.hub import RUN_FILES, is_hub_id, resolve_run
from tests.helpers.run_folders import write_wav


def test_a_local_folder_is_used_as_it_is(trained_run):
    assert resolve_run(trained_run) == trained_run and resolve_run(str(trained_run)) == trained_run


@pytest.mark.parametrize(("ref", "expected"), [("owner/name", True), ("owner/name@v1", True), ("name", False),
                                               ("a/b/c", False), ("./runs/x", False), ("/abs/x", False)])
def test_hub_id_form(ref, expected):
    assert is_hub_id(ref) is expected


def test_offline_hub_id_is_one_error_naming_the_id(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)  # no folder of that name here
    with pytest.raises(CheckpointError, match=r"'someone/openmer-starter'.*offline \(HF_HUB_OFFLINE=1\)"):
        resolve_run("someone/openmer-starter", cache_dir=tmp_path / "hub")


def test_cli_predict_with_an_offline_hub_id_prints_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.chdir(tmp_path)
    wav = write_wav(tmp_path / "a.wav")
    res = CliRunner().invoke(app, ["predict", "someone/openmer-starter", str(wav)])
    assert res.exit_code == 1
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "someone/openmer-starter" in lines[0] and "Traceback" not in res.output


def test_download_fetches_only_json_and_safetensors(monkeypatch, tmp_path, trained_run):
    import huggingface_hub

    seen = {}

    def fake_snapshot(repo_id, **kwargs):
        seen.update(kwargs, repo_id=repo_id)
        dest = tmp_path / "snapshot"
        shutil.copytree(trained_run, dest, dirs_exist_ok=True)
        return str(dest)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    monkeypatch.chdir(tmp_path)
    folder = resolve_run("someone/openmer-starter@main")
    assert folder == tmp_path / "snapshot" and seen["repo_id"] == "someone/openmer-starter"
    assert seen["revision"] == "main"
    assert seen["allow_patterns"] == list(RUN_FILES)
    assert all(p.endswith((".json", ".safetensors")) and "*" not in p for p in seen["allow_patterns"])
    # and the CLI predicts from it
    wav = write_wav(tmp_path / "a.wav")
    res = CliRunner().invoke(app, ["predict", "someone/openmer-starter@main", str(wav), "--text", "i feel happy now"])
    assert res.exit_code == 0, res.output
    assert '"label"' in res.stdout


def test_a_repository_without_run_json_is_refused(monkeypatch, tmp_path):
    import huggingface_hub

    (tmp_path / "empty").mkdir()
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id, **kw: str(tmp_path / "empty"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match=r"holds no run\.json"):
        resolve_run("someone/not-a-run")
