"""The artifact's shared library through ctypes: its C interface (deploy/include/sketchtune.h).

Loading the library loads libm with it (its dependency besides glibc); every
kernel, the network function, the C runtime (deploy/csrc/runtime.c) and the thread
pool of the parallel loops are inside it, so the Python runtime and a C program run
the same code.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

from deploy.errors import DeployError
from deploy.manifest import ABI_VERSION

ERROR_BYTES = 512
_P = ctypes.c_void_p


def open_library(path: Path) -> ctypes.CDLL:
    """The library at `path`, its functions typed (DeployError when it cannot load)."""
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as err:
        raise DeployError(f"{path}: cannot load the library ({_first_line(err)})") from None
    try:
        _declare(lib)
    except AttributeError as err:
        raise DeployError(f"{path}: not a sketchtune artifact library ({err})") from None
    abi = lib.sketchtune_abi_version()
    if abi != ABI_VERSION:
        raise DeployError(f"{path}: C interface version {abi}, this runtime knows {ABI_VERSION}")
    return lib


def load_model(lib: ctypes.CDLL, directory: Path) -> int:
    """`sketchtune_load(directory)`: the model handle (DeployError with the C message)."""
    error = ctypes.create_string_buffer(ERROR_BYTES)
    handle = lib.sketchtune_load(str(directory).encode(), error, ERROR_BYTES)
    if not handle:
        raise DeployError(error.value.decode(errors="replace") or f"{directory}: cannot load")
    return handle


def _declare(lib: ctypes.CDLL) -> None:
    signatures = {
        "sketchtune_abi_version": ([], ctypes.c_uint32),
        "sketchtune_load": ([ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t], _P),
        "sketchtune_run": ([_P, _P, _P], ctypes.c_int),
        "sketchtune_last_error": ([_P], ctypes.c_char_p),
        "sketchtune_set_threads": ([_P, ctypes.c_int], ctypes.c_int),
        "sketchtune_free": ([_P], None),
    }
    for name, (args, result) in signatures.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, result


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__
