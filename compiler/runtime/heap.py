"""Keep kernels' scratch memory in the process heap between calls.

A kernel allocates its scratch buffers (a materialized padding, Winograd's
transformed tiles) at each call and frees them at its end. glibc serves big
blocks with mmap, or trims the heap top when they are freed, so each call
faults the pages in again and the kernel zeroes them: a Winograd conv on a
56x56 image with 13 MB of scratch ran 7x slower that way. Fixing glibc's
thresholds (which also turns off their adaptation) keeps those blocks in the
heap for the next call. Only glibc has `mallopt`; elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc's largest mmap threshold on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX);
# scratch blocks up to this size come from the heap
MMAP_THRESHOLD_BYTES = 32 << 20
TRIM_THRESHOLD_BYTES = 256 << 20  # free heap kept at the top before it is returned


@cache
def keep_scratch_in_heap() -> bool:
    """Set glibc's thresholds once per process; False where there is no mallopt."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    return mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1 and ok
