"""Fixtures of the benchmark tests."""

from __future__ import annotations

import pytest

from tests.helpers.tiny_media import make_tiny_media


@pytest.fixture
def tiny_data(tmp_path, monkeypatch):
    """40 toy clips, text + audio, and their protocol (:func:`make_tiny_media`)."""
    return make_tiny_media(tmp_path, monkeypatch)
