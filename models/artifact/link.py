"""Link an artifact's shared library with the system toolchain (`gcc -shared`).

Into model.so go: each task's position-independent object, the network function's
object (compiler/codegen/build.py `build_sequence`), the C runtime
(deploy/csrc/runtime.c), the thread pool that runs the parallel loops
(compiler/runtime/pool.c, the in-process runtime's own) and a generated C file
describing this network (meta.c: inputs, outputs, sizes, the CPU flags the code
needs). libm, libpthread and libdl are its dependencies; `-z nodelete` keeps it
mapped after a dlclose, since the pool's workers run its code for the rest of the
process. A version script exports only the C interface of
deploy/include/sketchtune.h; the kernels and the description stay local, so calls to
them are direct and never clash with the host program's symbols.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import deploy
from compiler.errors import UserError
from compiler.runtime.pool import POOL_C
from deploy.manifest import TensorSpec

DEPLOY_DIR = Path(deploy.__file__).parent
HEADER = DEPLOY_DIR / "include" / "sketchtune.h"
RUNTIME_C = DEPLOY_DIR / "csrc" / "runtime.c"
EXPORTS = (
    "sketchtune_abi_version", "sketchtune_load", "sketchtune_run", "sketchtune_last_error",
    "sketchtune_set_threads", "sketchtune_free", "sketchtune_num_inputs",
    "sketchtune_num_outputs", "sketchtune_input", "sketchtune_output", "sketchtune_network",
)  # fmt: skip
CC = os.environ.get("CC", "gcc")
CFLAGS = ("-O2", "-std=c11", "-fPIC")
LDFLAGS = ("-shared", "-Wl,-Bsymbolic", "-Wl,-z,noexecstack", "-Wl,-z,now", "-Wl,--no-undefined",
           "-Wl,-z,nodelete")  # fmt: skip
LIBS = ("-lm", "-lpthread", "-ldl")


class LinkError(UserError):
    """The system toolchain is missing or cannot link the artifact."""


@dataclass(frozen=True)
class NetworkInfo:
    """What the C runtime is told about the network (deploy/csrc/artifact.h)."""

    format_version: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    weights_bytes: int
    arena_bytes: int
    weights_file: str
    cpu_flags: tuple[str, ...]
    cpu_name: str


def link_library(objects: Mapping[str, bytes], info: NetworkInfo, out: Path, work: Path) -> None:
    """Write `objects` ({file name: object code}) and meta.c into `work`, link `out`."""
    if shutil.which(CC) is None:
        raise LinkError(f"linking the artifact needs a C compiler: {CC!r} not found (set CC)")
    for name, code in objects.items():
        (work / name).write_bytes(code)
    (work / "meta.c").write_text(meta_source(info))
    (work / "exports.map").write_text(
        "{\n  global:\n" + "".join(f"    {s};\n" for s in EXPORTS) + "  local: *;\n};\n"
    )
    includes = [f"-I{HEADER.parent}", f"-I{RUNTIME_C.parent}"]
    command = [CC, *CFLAGS, *LDFLAGS, *includes, f"-Wl,--version-script={work / 'exports.map'}",
               "-o", str(out), str(RUNTIME_C), str(POOL_C), str(work / "meta.c"),
               *(str(work / n) for n in objects), *LIBS]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        first = next((line for line in lines if "error" in line), lines[0] if lines else "")
        raise LinkError(f"{CC} could not link {out.name}: {first or 'no message'}")


def meta_source(info: NetworkInfo) -> str:
    """meta.c: the `st_artifact` of deploy/csrc/artifact.h for this network."""
    lines = ['#include "artifact.h"', ""]
    for kind, specs in (("input", info.inputs), ("output", info.outputs)):
        for k, spec in enumerate(specs):
            dims = ", ".join(str(d) for d in spec.shape) or "0"
            lines.append(f"static const int64_t {kind}{k}_shape[] = {{{dims}}};")
        rows = [f"    {{{c_string(s.name)}, {c_string(s.dtype)}, {len(s.shape)}, {kind}{k}_shape, "
                f"{s.nbytes}u}}," for k, s in enumerate(specs)]  # fmt: skip
        lines += [f"static const sketchtune_tensor {kind}s[] = {{", *(rows or ["    {0},"]), "};"]
    lines += [
        "const st_artifact sketchtune_artifact_info = {",
        f"    {info.format_version}, {len(info.inputs)}, {len(info.outputs)}, inputs, outputs,",
        f"    {info.weights_bytes}u, {info.arena_bytes}u, {c_string(info.weights_file)},",
        f"    {c_string(' '.join(info.cpu_flags))}, {c_string(info.cpu_name)},",
        "};",
    ]
    return "\n".join(lines) + "\n"


def c_string(text: str) -> str:
    """A C string literal of `text` (UTF-8; anything but printable ASCII as octal escapes)."""
    out = []
    for byte in text.encode():
        char = chr(byte)
        printable = 32 <= byte < 127 and char not in '"\\?'
        out.append(char if printable else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def header_files() -> Sequence[Path]:
    """The files an artifact ships for C programs."""
    return (HEADER,)
