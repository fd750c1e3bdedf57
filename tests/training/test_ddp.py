"""Data-parallel training: 2 CPU processes (gloo) give the same result as 1 process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

SCRIPT = Path(__file__).with_name("ddp_fit.py")


def run(n: int, out: Path) -> dict[str, torch.Tensor]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # torchrun starts n processes; without CUDA the engine's Accelerator(cpu=True) joins them with gloo.
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n),
           str(SCRIPT), str(out), str(n)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    return load_file(str(out))


@pytest.mark.timeout(300)
def test_two_processes_match_one(tmp_path):
    one = run(1, tmp_path / "one.safetensors")
    two = run(2, tmp_path / "two.safetensors")
    assert one.keys() == two.keys()
    for k in one:
        assert torch.allclose(one[k], two[k], atol=1e-4), k
