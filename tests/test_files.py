"""The one atomic-write helper: temporary name then rename; errors remove the partial file and name the path."""

from __future__ import annotations

import errno
import os

import pytest

from openmer.errors import OutputError
from openmer.files import atomic_path, atomic_write_json, atomic_write_text, check_writable


def _write_then_fail(target, error):
    """Write half a file through ``atomic_path(target)``, then raise ``error`` inside the block."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"half a fi")
        raise error


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_behind(tmp_path):
    target = atomic_write_text(tmp_path / "results.json", "old")
    with pytest.raises(RuntimeError):
        _write_then_fail(target, RuntimeError("interrupted"))
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_os_errors_name_the_target(tmp_path):
    with pytest.raises(OutputError, match=r"out.bin: No space left on device") as info:
        _write_then_fail(tmp_path / "out.bin", OSError(errno.ENOSPC, "No space left on device"))
    assert isinstance(info.value, OSError) and list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"file: cannot create the folder"):
        atomic_write_json(tmp_path / "file" / "a.json", {})


def test_check_writable(tmp_path):
    assert check_writable(tmp_path / "new" / "run").is_dir() and list((tmp_path / "new" / "run").iterdir()) == []
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="exists and is not a folder"):
        check_writable(tmp_path / "f")


def test_a_safetensors_write_error_names_the_target(tmp_path):
    """Issue 24, item 10: the safetensors writer reports a full disk or a vanished / read-only folder as a
    ``SafetensorError`` (not an ``OSError``); it becomes one ``OutputError`` naming the file, no traceback."""
    import shutil

    import torch
    from safetensors.torch import save_file

    def write_into_a_vanished_folder(target):
        with atomic_path(target) as tmp:
            shutil.rmtree(tmp.parent)  # the folder goes away under the writer
            save_file({"w": torch.zeros(3)}, str(tmp))

    with pytest.raises(OutputError, match=r"run/model.safetensors: No such file or directory"):
        write_into_a_vanished_folder(tmp_path / "run" / "model.safetensors")


def test_a_folder_lock_admits_one_holder_and_leaves_nothing(tmp_path):
    """Issue 24, item 8: a second holder (another process, or another lock in this one) is refused."""
    import subprocess
    import sys
    import time

    from openmer.files import LOCK_FILE, FolderLock

    run = tmp_path / "run"
    with FolderLock(run, "openmer train"):
        assert (run / LOCK_FILE).read_text().strip() == str(os.getpid())
        with pytest.raises(OutputError, match=rf"run: in use by another openmer train \(process {os.getpid()}"):
            FolderLock(run, "openmer train").acquire()
    assert not run.exists()  # created by the lock, nothing written into it: removed again
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from openmer.files import FolderLock; FolderLock(sys.argv[1]).acquire(); "
        "print('held', flush=True); time.sleep(60)"), str(run)], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputError, match=rf"in use by another .*\(process {holder.pid}"):
            FolderLock(run).acquire()
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.05)
    with FolderLock(run):  # the killed holder's lock went with it
        pass
