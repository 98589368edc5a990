"""The thread count of generated kernels' parallel loops (the pool's, compiler/runtime/pool.c).

The setting belongs to the calling thread, as OpenMP's `omp_set_num_threads` does:
call it from the thread that runs the kernels. A thread that never set it uses the
process default: `OMP_NUM_THREADS`, else the CPUs the process may run on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from compiler.runtime.pool import pool


def set_num_threads(n: int) -> None:
    """Run this thread's later parallel loops on `n` threads, itself included (n >= 1)."""
    if n < 1:
        raise ValueError(f"number of threads must be at least 1, got {n}")
    pool().set_num_threads(n)


def get_num_threads() -> int:
    """How many threads this thread's next parallel loop will use (at most)."""
    return pool().get_num_threads()


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
