"""Shared fixtures: the ../shared folder (skip when absent), seeds, tiny generated media."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

#: fixtures shared by every test folder (tiny encoders, a trained run folder)
pytest_plugins = ("tests.helpers.tiny_models", "tests.helpers.run_folders")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SHARED_DIR", REPO_ROOT.parent / "shared"))

requires_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason=f"needs the shared weights/data folder at {SHARED} (see shared/README.md)"
)


def requires_shared_path(relative: str):
    """Skip unless ``SHARED/relative`` exists, saying what is missing."""
    return pytest.mark.skipif(
        not (SHARED / relative).exists(), reason=f"needs {SHARED / relative} (see shared/README.md)"
    )


@pytest.fixture
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"needs the shared weights/data folder at {SHARED} (see shared/README.md)")
    return SHARED


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
