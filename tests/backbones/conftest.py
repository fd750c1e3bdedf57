"""Backbone fixtures: tiny random paper-profile models, built once per session."""

from __future__ import annotations

from typing import Any

import pytest

from openmer.backbones import ProfileConfig
from tests.backbones.tiny import make_tiny_light_models, make_tiny_paper_models


@pytest.fixture(scope="session")
def tiny_paper_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``make_tiny_paper_models`` output (profile, folders, in-memory models, tokenizer)."""
    return make_tiny_paper_models(tmp_path_factory.mktemp("tiny-paper"))


@pytest.fixture(scope="session")
def tiny_paper_profile(tiny_paper_models: dict[str, Any]) -> ProfileConfig:
    """A ``ProfileConfig`` whose three encoders load tiny random models from local folders."""
    return tiny_paper_models["profile"]


@pytest.fixture(scope="session")
def tiny_light_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``make_tiny_light_models`` output: tiny MiniLM, Whisper encoder and FER files in a mirror folder."""
    return make_tiny_light_models(tmp_path_factory.mktemp("tiny-light"))
