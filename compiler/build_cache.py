"""Object code kept on disk by program: a candidate built once is not built again.

The key covers everything the object code depends on: the workload (the DAG's
content hash), the schedule's steps, the kernel's name, the target CPU and the
source of the compiler that lowers and compiles it and the LLVM version; so the finalists a tuning run
re-times (models/retime.py), a resumed run and a second tuning of the same
workload find the builds of earlier ones. Files live under
`$SKETCHTUNE_CACHE/objects/` with the usual rules of private caches
(compiler/private_cache.py: object code is run, so a file anyone else could have
written is a miss). Format: one JSON line (entry, parameters, target, build time),
then the object file's bytes; no pickle.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence

import llvmlite
import llvmlite.binding as llvm

from compiler.codegen.build import Artifact, ParamSpec
from compiler.private_cache import PrivateDir, package_digest
from compiler.settings import settings


def program_key(workload_key: str, steps: Sequence[object], name: str, target: str) -> str:
    """sha256 of what a kernel's object code depends on (steps as JSON-able data)."""
    tools = [llvmlite.__version__, ".".join(map(str, llvm.llvm_version_info))]
    payload = json.dumps([workload_key, steps, name, target, tools], sort_keys=True, default=str)
    h = hashlib.sha256(payload.encode())
    h.update(package_digest("compiler").encode())
    return h.hexdigest()


def cached_build(key: str, make: Callable[[], Artifact]) -> Artifact:
    """The artifact cached under `key`, else `make()`'s, kept for next time."""
    name = f"{key}.obj"
    with PrivateDir(settings().cache_dir / "objects") as objects:
        data = objects.read(name)
        artifact = _decode(data) if data is not None else None
        if artifact is None:
            artifact = make()
            objects.write(name, _encode(artifact))
    return artifact


def _encode(a: Artifact) -> bytes:
    head = {"entry": a.entry, "target": a.target, "compile_s": a.compile_s,
            "params": [[p.name, list(p.shape), p.dtype] for p in a.params]}  # fmt: skip
    return json.dumps(head).encode() + b"\n" + a.object_code


def _decode(data: bytes) -> Artifact | None:
    """The artifact, or None for a file of another format (then rebuilt)."""
    head, _, code = data.partition(b"\n")
    try:
        meta = json.loads(head)
        params = tuple(ParamSpec(n, tuple(int(d) for d in s), str(t)) for n, s, t in meta["params"])
        return Artifact(code, str(meta["entry"]), params, str(meta["target"]),
                        float(meta["compile_s"]))  # fmt: skip
    except (ValueError, KeyError, TypeError):
        return None
