"""The OpenMP thread count used by parallel loops of generated kernels (libgomp's ICV).

The setting belongs to the calling thread's OpenMP environment: call it from the
thread that runs the kernels.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import llvmlite.binding as llvm

LIBGOMP = "libgomp.so.1"


@cache
def libgomp() -> ctypes.CDLL:
    """libgomp, loaded once, globally, and made visible to JIT-linked code."""
    llvm.load_library_permanently(LIBGOMP)
    lib = ctypes.CDLL(LIBGOMP, mode=ctypes.RTLD_GLOBAL)
    lib.omp_set_num_threads.argtypes = [ctypes.c_int]
    lib.omp_set_num_threads.restype = None
    lib.omp_get_max_threads.argtypes = []
    lib.omp_get_max_threads.restype = ctypes.c_int
    return lib


def set_num_threads(n: int) -> None:
    """Run later parallel loops on `n` threads (n >= 1)."""
    if n < 1:
        raise ValueError(f"number of threads must be at least 1, got {n}")
    libgomp().omp_set_num_threads(n)


def get_num_threads() -> int:
    """How many threads the next parallel loop will use."""
    return int(libgomp().omp_get_max_threads())


@contextmanager
def num_threads(n: int) -> Iterator[None]:
    """Run parallel loops on `n` threads inside the block, then restore the old count.

    Example:
        >>> with num_threads(1):  # doctest: +SKIP
        ...     kernel(a, b, c)
    """
    old = get_num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(old)
