"""The manifest table: read, validate, write round trip, clear errors."""

from __future__ import annotations

import pytest

from openmer.data.manifest import Manifest, Sample
from openmer.errors import DataError


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_read_validate_and_round_trip(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"x")
    m = Manifest.read(write(tmp_path / "m.csv", "id,audio,text,label,group\n1,a.wav,hello,joy,s1\n2,,hi there,anger,s2\n"))
    m.validate(classes=["joy", "anger"])
    assert m.classes == ["anger", "joy"] and m.modalities == ("audio", "text") and m[1].modalities == ("text",)
    assert m.path(m[0], "audio") == tmp_path / "a.wav" and m.path(m[1], "audio") is None
    back = Manifest.read(m.write(tmp_path / "copy.jsonl"))
    assert back.samples == m.samples
    elsewhere = Manifest.read(m.write(tmp_path / "sub" / "m.csv"))  # other folder: absolute paths
    assert elsewhere.path(elsewhere[0], "audio") == (tmp_path / "a.wav").resolve()


@pytest.mark.parametrize("text, match", [
    ("id,audio,label\n1,missing.wav,joy\n", "does not exist"),
    ("id,text,label\n1,hi,joy\n1,ho,joy\n", "duplicate id"),
    ("id,text,label\n1,hi,fear\n", "unknown label 'fear'"),
    ("id,text,label\n1,,joy\n", "no video, audio or text"),
    ("id,text,label,start,end\n1,hi,joy,2,1\n", "end 1.0 <= start 2.0"),
    ("id,text,label,start\n1,hi,joy,soon\n", "must be a number of seconds"),
    ("id,txt\n1,hi\n", "unknown column"),
])
def test_errors_name_the_file_and_problem(tmp_path, text, match):
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(DataError, match=match) as info:
        Manifest.read(path).validate(classes=["joy"])
    assert "bad.csv" in str(info.value)


def test_missing_file_and_format(tmp_path):
    with pytest.raises(DataError, match="manifest file not found"):
        Manifest.read(tmp_path / "none.csv")
    with pytest.raises(DataError, match="unsupported manifest format"):
        Manifest.read(write(tmp_path / "m.txt", "x"))
    assert Manifest([Sample("a", text="t")]).subset([True]).ids == ["a"]
