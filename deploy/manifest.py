"""The artifact's manifest (`network.json`): read, checked, and its files verified.

Format version 1 (docs/deploy.md lists every field). The runtime reads what it needs
to load and feed the library: the inputs and outputs, the library and weights files
with their sizes (and the library's sha256), the arena size and the CPU flags the code
needs. A newer format version, a field missing or of the wrong type, bad JSON, a
library whose size or digest differs and a weights file of the wrong size are each
one line (DeployError) before anything is loaded.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deploy.errors import DeployError

FORMAT = "sketchtune-artifact"
FORMAT_VERSION = 1
ABI_VERSION = 1  # SKETCHTUNE_ABI_VERSION of deploy/include/sketchtune.h
MANIFEST_FILE = "network.json"
LIBRARY_FILE = "model.so"
WEIGHTS_FILE = "weights.bin"
HEADER_FILE = "sketchtune.h"


@dataclass(frozen=True)
class TensorSpec:
    """An input or output: name, static shape, numpy dtype name."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class Manifest:
    """The fields the runtime uses; `data` is the whole JSON object."""

    directory: Path
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    library: str
    library_bytes: int
    library_sha256: str
    weights: str
    weights_bytes: int
    arena_bytes: int
    cpu: str
    cpu_flags: dict[str, str]
    data: dict[str, Any]

    def verify_files(self) -> None:
        """DeployError when the library or the weights are not the ones the manifest lists."""
        library = self.directory / self.library
        blob = _read(library)
        if (
            len(blob) != self.library_bytes
            or hashlib.sha256(blob).hexdigest() != self.library_sha256
        ):
            raise DeployError(
                f"{library}: {len(blob)} bytes, sha256 {hashlib.sha256(blob).hexdigest()[:12]}...; "
                f"the manifest says {self.library_bytes} bytes, {self.library_sha256[:12]}... "
                "(damaged, or from another build)"
            )
        weights = self.directory / self.weights
        size = _size(weights)
        if size != self.weights_bytes:
            raise DeployError(
                f"{weights}: {size} bytes, the manifest says {self.weights_bytes} "
                "(damaged, or from another build)"
            )


def read_manifest(directory: str | Path) -> Manifest:
    """The manifest of the artifact in `directory` (or of the manifest file itself)."""
    path = Path(directory)
    if path.is_file():
        path = path.parent
    file = path / MANIFEST_FILE
    try:
        data = json.loads(_read(file))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DeployError(f"{file}: not a valid manifest ({_first_line(err)})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DeployError(f'{file}: not a sketchtune artifact manifest (no "format": {FORMAT!r})')
    version = data.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise DeployError(f"{file}: bad format_version {version!r}")
    if version > FORMAT_VERSION:
        raise DeployError(
            f"{file}: artifact format version {version} is newer than this runtime's "
            f"({FORMAT_VERSION}); load it with a newer sketchtune"
        )
    return _parse(path, file, data)


def _parse(directory: Path, file: Path, data: dict[str, Any]) -> Manifest:
    get = _Fields(file, data)
    return Manifest(
        directory=directory,
        inputs=tuple(_tensor(get, f"inputs[{k}]") for k in range(len(get("inputs", list)))),
        outputs=tuple(_tensor(get, f"outputs[{k}]") for k in range(len(get("outputs", list)))),
        library=get("library.file", str),
        library_bytes=get("library.bytes", int),
        library_sha256=get("library.sha256", str),
        weights=get("weights.file", str),
        weights_bytes=get("weights.bytes", int),
        arena_bytes=get("arena_bytes", int),
        cpu=get("target.cpu", str),
        cpu_flags={str(k): str(v) for k, v in get("target.cpu_flags", dict).items()},
        data=data,
    )


def _tensor(get: _Fields, where: str) -> TensorSpec:
    shape = get(f"{where}.shape", list)
    dtype = get(f"{where}.dtype", str)
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise DeployError(f"{get.file}: bad field {where}.shape: {shape!r}")
    try:
        np.dtype(dtype)
    except TypeError:
        raise DeployError(f"{get.file}: bad field {where}.dtype: {dtype!r}") from None
    return TensorSpec(get(f"{where}.name", str), tuple(shape), dtype)


@dataclass(frozen=True)
class _Fields:
    """`get("a.b[2].c", type)`: a field of the manifest, or a DeployError naming it."""

    file: Path
    data: dict[str, Any]

    def __call__(self, dotted: str, kind: type) -> Any:
        node: Any = self.data
        for part in dotted.replace("[", ".[").split("."):
            if part.startswith("["):
                index = int(part[1:-1])
                node = node[index] if isinstance(node, list) and index < len(node) else None
            else:
                node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, kind) or (kind is int and isinstance(node, bool)):
            raise DeployError(f"{self.file}: missing or bad field {dotted!r}")
        return node


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise DeployError(f"{path}: cannot read ({err.strerror or err})") from None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as err:
        raise DeployError(f"{path}: cannot read ({err.strerror or err})") from None


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__
