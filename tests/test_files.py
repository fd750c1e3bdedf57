"""The one atomic-write helper: temporary name then rename; errors remove the partial file and name the path."""

from __future__ import annotations

import errno

import pytest

from openmer.errors import OutputError
from openmer.files import atomic_path, atomic_write_json, atomic_write_text, check_writable


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_behind(tmp_path):
    target = atomic_write_text(tmp_path / "results.json", "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half a fi")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_os_errors_name_the_target(tmp_path):
    with pytest.raises(OutputError, match=r"out.bin: No space left on device") as info, \
            atomic_path(tmp_path / "out.bin") as tmp:
        tmp.write_bytes(b"x")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert isinstance(info.value, OSError) and list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"file: cannot create the folder"):
        atomic_write_json(tmp_path / "file" / "a.json", {})


def test_check_writable(tmp_path):
    assert check_writable(tmp_path / "new" / "run").is_dir() and list((tmp_path / "new" / "run").iterdir()) == []
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="exists and is not a folder"):
        check_writable(tmp_path / "f")
