"""Nothing from a run folder, a manifest or a dataset is ever unpickled (issue 12, "Security")."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openmer.cli.app import app
from openmer.errors import CheckpointError
from openmer.training import TrainConfig, fit
from tests.helpers.run_folders import clip_rows, write_manifest

SRC = Path(__file__).resolve().parents[1] / "src" / "openmer"
PICKLERS = ("pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib")


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _is_true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def unsafe_loads(source: str) -> list[tuple[int, str]]:
    """Calls that can unpickle: pickle/dill/joblib loads, torch.load without weights_only=True,
    np.load with allow_pickle=True, pandas.read_pickle."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module in (*PICKLERS, "torch"):
            names = [a.name for a in node.names if a.name in ("load", "loads", "Unpickler")]
            if names:  # `from pickle import load` would hide the call from the checks below
                found.append((node.lineno, f"from {node.module} import {', '.join(names)}"))
        if not isinstance(node, ast.Call):
            continue
        text = ast.unparse(node.func)
        name = text.rsplit(".", 1)[-1]
        unpickling = text.split(".")[0] in PICKLERS and name in ("load", "loads", "Unpickler")
        if unpickling or name in ("read_pickle", "Unpickler"):
            found.append((node.lineno, text))
        elif text == "torch.load" or text.endswith(".torch.load"):
            if not _is_true(_keyword(node, "weights_only")):
                found.append((node.lineno, text + " without weights_only=True"))
        elif text in ("np.load", "numpy.load") and _is_true(_keyword(node, "allow_pickle")):
            found.append((node.lineno, text + " with allow_pickle=True"))
    return found


def test_the_scanner_finds_what_it_must():
    bad = ("import pickle, torch, numpy as np\npickle.load(f)\npickle.loads(b)\ntorch.load(p)\n"
           "torch.load(p, weights_only=False)\nnp.load(p, allow_pickle=True)\nfrom pickle import loads\n")
    assert sorted(line for line, _ in unsafe_loads(bad)) == [2, 3, 4, 5, 6, 7]
    good = "import torch, numpy as np\ntorch.load(p, weights_only=True)\nnp.load(p, allow_pickle=False)\nnp.load(p)\n"
    assert unsafe_loads(good) == []


def test_no_unpickling_anywhere_in_openmer():
    hits = {str(f.relative_to(SRC)): unsafe_loads(f.read_text(encoding="utf-8")) for f in SRC.rglob("*.py")}
    assert {f: h for f, h in hits.items() if h} == {}


class _Planted:
    """Unpickling this creates a file: what an attacker would put in a run folder."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def _plant(run: Path, marker: Path) -> None:
    (run / "last").mkdir(parents=True)
    (run / "last" / "model.safetensors").write_bytes(b"")
    (run / "last" / "trainer_state.pt").write_bytes(pickle.dumps({"epoch": _Planted(marker)}))


def test_resume_refuses_a_planted_pickle_and_runs_nothing(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(_Planted(marker)))  # noqa: S301 - the payload works...
    assert marker.is_file()
    marker.unlink()
    run = tmp_path / "run"
    _plant(run, marker)
    write_manifest(tmp_path / "m.csv", clip_rows(tmp_path, groups=2, per_class=1, audio=False))
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["train", "--data", "m.csv", "--known", "happy,sad", "--method", "arpl",
                                   "--out", str(run), "--resume", "--profile", "paper"])
    assert res.exit_code == 1, res.output
    assert "trainer_state.pt: a pickled trainer state" in res.output and "never unpickles" in res.output
    assert "Traceback" not in res.output
    assert not marker.exists()  # ...but openmer never ran it


def test_fit_refuses_a_planted_pickle(tmp_path):
    from tests.test_runs import _arpl, _features

    marker = tmp_path / "pwned"
    _plant(tmp_path / "run", marker)
    train, val = _features()
    with pytest.raises(CheckpointError, match="never unpickles"):
        fit(_arpl(), train, val.batches(), TrainConfig(epochs=1), run_dir=tmp_path / "run", resume=True)
    assert not marker.exists()
