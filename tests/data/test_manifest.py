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
    m = Manifest.read(write(tmp_path / "m.csv",
                            "id,audio,text,label,group\n1,a.wav,hello,joy,s1\n2,,hi there,anger,s2\n"))
    m.validate(classes=["joy", "anger"])
    assert m.classes == ["anger", "joy"] and m.modalities == ("audio", "text") and m[1].modalities == ("text",)
    assert m.path(m[0], "audio") == tmp_path / "a.wav" and m.path(m[1], "audio") is None
    back = Manifest.read(m.write(tmp_path / "copy.jsonl"))
    assert back.samples == m.samples
    elsewhere = Manifest.read(m.write(tmp_path / "sub" / "m.csv"))  # other folder: absolute paths
    assert elsewhere.path(elsewhere[0], "audio") == (tmp_path / "a.wav").resolve()


@pytest.mark.parametrize(("text", "match"), [
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


# ----------------------------------------------------------------------------- split column, root, sidecars
def test_split_column(tmp_path):
    m = Manifest.read(write(tmp_path / "m.csv", "id,text,label,split\n1,a,joy,train\n2,b,joy,val\n3,c,joy,test\n"))
    assert m.has_splits
    assert {k: v.tolist() for k, v in m.split_indices().items()} == {"train": [0], "val": [1], "test": [2]}
    assert Manifest.read(m.write(tmp_path / "copy.csv")).samples == m.samples
    with pytest.raises(DataError,
                       match=r"row 1 \(id '1'\): split must be one of \['train', 'val', 'test'\], got 'dev'"):
        Manifest.read(write(tmp_path / "bad.csv", "id,text,split\n1,a,dev\n"))
    with pytest.raises(DataError, match=r"1 row\(s\) have no split \(first: row 2\)"):
        Manifest.read(write(tmp_path / "part.csv", "id,text,split\n1,a,train\n2,b,\n")).split_indices()


@pytest.mark.parametrize(("column", "value"), [("audio", "../../etc/passwd"), ("video", "a/../../b.mp4"),
                                           ("text", "../secret.txt")])
def test_paths_leaving_the_root_are_refused(tmp_path, column, value):
    path = write(tmp_path / "m.csv", f"id,{column}\n1,{value}\n")
    with pytest.raises(DataError, match=rf"m.csv: row 1 \(id '1'\): {column} path .* leaves the manifest root"):
        Manifest.read(path)
    assert Manifest.read(path, allow_outside_root=True)[0].modalities == (column,)


def test_absolute_paths_and_paths_inside_the_root_are_fine(tmp_path):
    (tmp_path / "sub").mkdir()
    m = Manifest.read(write(tmp_path / "m.csv", f"id,audio\n1,{tmp_path / 'x.wav'}\n2,sub/../y.wav\n3,./z.wav\n"))
    assert len(m) == 3


def test_sidecar_transcripts_are_read_by_the_checked_loader(tmp_path):
    from openmer.errors import MediaError

    (tmp_path / "ok.txt").write_text("\ufeffhallo welt\n", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("sch\xf6n".encode("latin-1"))
    m = Manifest.read(write(tmp_path / "m.csv", "id,text\n1,ok.txt\n2,empty.txt\n3,latin1.txt\n"))
    assert m.text_of(m[0]) == "hallo welt" and m.text_of(m[1]) is None
    with pytest.raises(MediaError, match=r"latin1.txt: transcript is not valid UTF-8"):
        m.text_of(m[2])


def test_a_text_naming_a_missing_file_is_an_error_naming_the_row(tmp_path):
    """Issue 24, item 4: a ``text`` column of paths to missing .txt files used each path string as the
    transcript (AUROC .547 -> .445, no warning). The rule (module docstring, docs/datasets.md): a value
    ending in .txt (any case) is a sidecar and must exist; a path-shaped value of another suffix is refused."""
    from openmer.datasets import resolve_data

    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "Ok.TXT").write_text("hallo welt", encoding="utf-8")
    m = Manifest.read(write(tmp_path / "m.csv", "id,text,label\n1,t/Ok.TXT,joy\n2,t/gone.txt,joy\n3,and/or,joy\n"))
    assert m.text_of(m[0]) == "hallo welt" and m.text_of(m[2]) == "and/or"
    missing = r"text names the transcript file 't/gone.txt' .*which does not exist"
    with pytest.raises(DataError, match=rf"m.csv: the row of id '2': {missing}"):
        m.text_of(m[1])
    missing = rf"m.csv: row 2 \(id '2'\): {missing}"
    with pytest.raises(DataError, match=missing):
        m.validate()
    m.validate(check_files=False)  # files unchecked: a sidecar's existence is not looked at
    with pytest.raises(DataError, match=missing):
        resolve_data(tmp_path / "m.csv")  # what train / evaluate read, before any work
    write(tmp_path / "lab.csv", "id,text\n1,hello there\n2,transcripts/a02.lab\n")
    for check_files in (True, False):
        with pytest.raises(DataError, match=r"lab.csv: row 2 \(id '2'\): text 'transcripts/a02.lab' looks like a "
                                            r"file path, not a transcript; only .txt files are read"):
            Manifest.read(tmp_path / "lab.csv").validate(check_files=check_files)


def test_manifest_that_is_not_utf8_names_the_file(tmp_path):
    (tmp_path / "m.csv").write_bytes("id,text\n1,sch\xf6n\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"m.csv: not valid UTF-8"):
        Manifest.read(tmp_path / "m.csv")
    (tmp_path / "bom.csv").write_text("\ufeffid,text\n1,hi\n", encoding="utf-8")
    assert Manifest.read(tmp_path / "bom.csv").ids == ["1"]


def test_label_helpers():
    from openmer.data.manifest import label_indices, near_known_labels

    assert label_indices(["b", "a", None, "c"], ["a", "b"]).tolist() == [1, 0, -1, -1]
    assert near_known_labels(["Anger", "anger", " joy", "fear", None], ["anger", "joy"]) == {" joy": "joy",
                                                                                            "Anger": "anger"}
