"""Run compiled kernels in this process: load object code, call it on numpy arrays."""

from compiler.runtime.module import Kernel, KernelArgError, aligned, empty, load
from compiler.runtime.threads import get_num_threads, num_threads, set_num_threads

__all__ = [
    "Kernel",
    "KernelArgError",
    "aligned",
    "empty",
    "get_num_threads",
    "load",
    "num_threads",
    "set_num_threads",
]
