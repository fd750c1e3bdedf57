"""Issue 26: a long recording's resident memory follows what is live (openmer.timeline.memory)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from openmer.timeline.memory import _libc

pytestmark = pytest.mark.skipif(_libc() is None, reason="glibc's mallopt/malloc_trim are not available here")

# a fresh interpreter that loads only openmer/timeline/memory.py (the openmer package's imports
# leave glibc's dynamic threshold in a state that depends on them)
_PROBE = """
import importlib.util, sys
import numpy as np
spec = importlib.util.spec_from_file_location("memory", sys.argv[2])
memory = importlib.util.module_from_spec(spec)
spec.loader.exec_module(memory)
bound_heap, trim_heap = memory.bound_heap, memory.trim_heap

if sys.argv[1] == "bound":
    assert bound_heap()
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
x = np.ones(1 << 20, np.float32)  # one 4 MiB block freed: glibc's threshold rises above 2 MiB
del x
big, small = [], []
before = rss()
for _ in range(64):
    big.append(np.ones(1 << 19, np.float32))  # 2 MiB, touched
    small.append(np.ones(300))  # a small array that outlives it, allocated after it
peak = rss()
big.clear()
if sys.argv[1] == "trim":
    assert trim_heap()
print((peak - before) >> 20, (peak - rss()) >> 20)
"""


@pytest.mark.parametrize(("mode", "released"), [("default", False), ("bound", True), ("trim", True)])
def test_freed_tensors_leave_the_resident_set_when_the_heap_is_bounded_or_trimmed(mode, released):
    """64 blocks of 2 MiB, each followed by a small long-lived array, then freed: with glibc's
    default (dynamic) mmap threshold they stay resident (holes in the heap), which is how a long
    timeline's peak rose; with :func:`bound_heap` or after :func:`trim_heap` they are returned."""
    import openmer.timeline.memory as memory

    out = subprocess.run([sys.executable, "-c", _PROBE, mode, memory.__file__], capture_output=True, text=True,
                         check=True)
    grown, returned = map(int, out.stdout.split())
    assert grown >= 120, out.stdout
    assert (returned >= 0.9 * grown) == released, f"{mode}: grew {grown} MiB, returned {returned} MiB"
