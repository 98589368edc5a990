"""The network graph between ONNX import and partitioning.

Every node is one call of a function of the op library (`compiler.ops`):
`node.op` is the function's name and `node.attrs` its keyword arguments, so a
node's compute definition is `getattr(compiler.ops, node.op)(*inputs, **attrs)`.
Each node has exactly one output (ONNX nodes with several, like Split, become
several nodes). Values are named; weights are constants held as numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from compiler import ops
from compiler.te import Tensor


@dataclass(frozen=True)
class Value:
    """A named tensor with a static shape and an element type (numpy's name: "float32",
    "int64", "bool", ...; models/onnx_import/context.py DATA_DTYPES lists them)."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"


@dataclass(frozen=True)
class Node:
    """`output = compiler.ops.<op>(*inputs, **attrs)`.

    `source` names the ONNX node it came from ("Conv_3 (Conv, #3)") for error
    messages and for mapping onnxruntime's profile back to our subgraphs.
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    output: str
    attrs: tuple[tuple[str, object], ...] = ()
    source: str = ""
    arg_names: tuple[str, ...] = ()  # keyword names of the inputs; () passes them positionally

    @property
    def kwargs(self) -> dict[str, object]:
        return dict(self.attrs)

    def call(self, tensors: list[Tensor]) -> Tensor:
        """The op's compute definition on `tensors` (one per input, in order)."""
        fn = getattr(ops, self.op)
        if self.op == "concat":
            return fn(tensors, **self.kwargs)
        if self.arg_names:
            return fn(**dict(zip(self.arg_names, tensors)), **self.kwargs)
        return fn(*tensors, **self.kwargs)


@dataclass
class Graph:
    """A whole network: inputs, outputs, constants and nodes in topological order."""

    name: str
    inputs: list[Value]
    outputs: list[Value]
    nodes: list[Node]
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    values: dict[str, Value] = field(default_factory=dict)  # every value, by name

    def producer(self, value: str) -> Node | None:
        return self._producers.get(value)

    def value(self, name: str) -> Value:
        """The value called `name` (an input, a constant or a node's output)."""
        return self.values[name]

    def consumers(self, value: str) -> list[Node]:
        return self._consumers.get(value, [])

    @property
    def _producers(self) -> dict[str, Node]:
        return {n.output: n for n in self.nodes}

    @property
    def _consumers(self) -> dict[str, list[Node]]:
        out: dict[str, list[Node]] = {}
        for n in self.nodes:
            for i in n.inputs:
                out.setdefault(i, []).append(n)
        return out
