"""Resident memory that follows what is live while a long recording is scored (glibc's heap).

glibc's ``malloc`` serves a request below its *mmap threshold* from its heap and keeps freed heap
memory for reuse; the threshold starts at 128 KiB and rises (up to 32 MiB) each time a larger
block is freed, so after the first groups every tensor of the encoders and the VAD's batches share
one heap. Over a long recording the holes between allocations of different sizes add up: on the
2-hour recording of ``openmer bench-timeline`` (msp, 1 thread, an in-process RSS sampler), once
the decoder no longer held each block three times, the peak was 877 MiB for 10 minutes of audio
and 952 MiB after 45 minutes, rising at each decode block while what was live did not (issue 26).

:func:`bound_heap` fixes the threshold at :data:`MMAP_THRESHOLD` (1 MiB) for the process: every
allocation from 1 MiB up gets its own mapping, returned to the operating system when freed, and
only small objects share the heap. Measured with ``openmer bench-timeline`` (docs/timeline.md):
the 2-hour peak within 0.6-0.8 % of the 10-minute one's (about 810 MiB) at 1 and 2 threads, for
19 % (msp) to 33 % (HCEP) more wall time at 2 threads, since the pages of each large tensor are
mapped and zeroed anew. :func:`trim_heap` (``malloc_trim(0)``, which since glibc 2.8 also
releases free pages inside the heap) runs after each group either way. Sources: the glibc manual,
"Malloc Tunable Parameters" (M_MMAP_THRESHOLD, and its dynamic adjustment that setting it turns off,
https://www.gnu.org/software/libc/manual/html_node/Malloc-Tunable-Parameters.html), and
malloc_trim(3).
Without glibc (macOS, musl, Windows) both do nothing and return ``False``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

#: bytes from which :func:`bound_heap` makes glibc map each allocation on its own
MMAP_THRESHOLD = 1 << 20
#: ``mallopt``'s parameter number for the mmap threshold (glibc's malloc.h)
_M_MMAP_THRESHOLD = -3


@functools.cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    except (OSError, AttributeError):  # not glibc
        return None
    return libc


def bound_heap(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes for this process (``mallopt``), so large
    allocations never stay in the heap after they are freed (see the module doc). It applies to
    the whole process from then on; ``False`` where there is no glibc."""
    libc = _libc()
    return bool(libc is not None and libc.mallopt(_M_MMAP_THRESHOLD, int(threshold)) == 1)


def trim_heap() -> bool:
    """Return the heap's free pages to the operating system (glibc ``malloc_trim(0)``); ``False``
    where there is no glibc."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
