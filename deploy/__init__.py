"""Run a compiled sketchtune artifact with numpy and ctypes alone.

`sketchtune compile MODEL --out DIR` writes the artifact: DIR/model.so (every
kernel, the network's call sequence and a small C runtime), DIR/weights.bin (the
constants, memory-mapped) and DIR/network.json (the manifest). This package loads
it without the compiler: it imports no llvmlite, onnx, prefect, xgboost or pandas.

    >>> from deploy import Session
    >>> sess = Session("DIR", threads=1)                  # doctest: +SKIP
    >>> outputs = sess.run(None, {"input": x})            # doctest: +SKIP

C programs use the same library through deploy/include/sketchtune.h (also in DIR).
See docs/deploy.md.
"""

from deploy.errors import DeployError
from deploy.manifest import FORMAT_VERSION, Manifest, TensorSpec, read_manifest
from deploy.session import NodeArg, Session

__all__ = [
    "FORMAT_VERSION",
    "DeployError",
    "Manifest",
    "NodeArg",
    "Session",
    "TensorSpec",
    "read_manifest",
]
