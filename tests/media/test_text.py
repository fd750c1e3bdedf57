"""openmer.media.text: literal transcripts and UTF-8 sidecar files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from openmer.errors import MediaError
from openmer.media import load_text


def test_literal_text_is_stripped():
    assert load_text("  Kids are talking by the door. \n") == "Kids are talking by the door."


def test_sidecar_file(tmp_path):
    path = tmp_path / "03a01Fa.txt"
    path.write_text("\ufeffDer Lappen liegt auf dem Eisschrank.\n", encoding="utf-8")
    assert load_text(path) == "Der Lappen liegt auf dem Eisschrank."
    assert load_text(str(path)) == "Der Lappen liegt auf dem Eisschrank."


@pytest.mark.parametrize("value", ["", "   \n"])
def test_empty_literal(value):
    with pytest.raises(MediaError, match=r"^empty transcript$"):
        load_text(value)


def test_empty_sidecar(tmp_path):
    path = tmp_path / "blank.txt"
    path.write_text(" \n", encoding="utf-8")
    with pytest.raises(MediaError, match=re.escape(f"{path.name}: empty transcript")):
        load_text(path)


def test_missing_sidecar(tmp_path):
    with pytest.raises(MediaError, match=r"gone\.txt: transcript file not found"):
        load_text(tmp_path / "gone.txt")
    with pytest.raises(MediaError, match=r"gone\.txt: transcript file not found"):
        load_text(str(tmp_path / "gone.txt"))


def test_sidecar_not_utf8(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Gr\u00fc\u00dfe".encode("latin-1"))
    with pytest.raises(MediaError, match=r"latin1\.txt: transcript is not valid UTF-8"):
        load_text(Path(path))
