"""Fixtures: tiny random paper-profile and light-profile models, built once per session
(registered for every test by ``pytest_plugins`` in ``tests/conftest.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from openmer.backbones import ProfileConfig
from openmer.backbones.specs import PROFILES
from tests.backbones.tiny import make_tiny_light_models, make_tiny_paper_models


@pytest.fixture(scope="session")
def tiny_paper_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``make_tiny_paper_models`` output (profile, folders, in-memory models, tokenizer)."""
    return make_tiny_paper_models(tmp_path_factory.mktemp("tiny-paper"))


@pytest.fixture(scope="session")
def tiny_paper_profile(tiny_paper_models: dict[str, Any]) -> ProfileConfig:
    """A ``ProfileConfig`` whose three encoders load tiny random models from local folders.

    Registered for the session under its own name (``tiny-paper-<folder>``, one per set of tiny
    models), as a profile installed by name is: a run folder names its profile, and its encoders
    load only from the registered profile of that name or one given with ``--profile``
    (:func:`openmer.runs.trusted_profile`), never from the folders the run folder names.
    """
    base = tiny_paper_models["profile"]
    profile = base.model_copy(update={"name": f"{base.name}-{Path(base.text.name_or_path).parent.name}"})
    if profile.name not in PROFILES:
        PROFILES.register(profile.name)(lambda: profile)
    return profile


@pytest.fixture(scope="session")
def tiny_light_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``make_tiny_light_models`` output: tiny MiniLM, Whisper encoder and FER files in a mirror folder."""
    return make_tiny_light_models(tmp_path_factory.mktemp("tiny-light"))
