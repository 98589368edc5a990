"""The importer's working state: constants, value shapes and the nodes emitted so far."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import onnx

from compiler import te
from compiler.errors import UserError
from compiler.ops import OpError
from compiler.settings import check_tensor_size
from models.errors import ModelError
from models.graph import Node, Value

Operand = str | float | int  # a value name, or a Python scalar folded into the op's attrs

# the dtypes a model's tensors may have (float32 is the compute type of convs and matmuls)
DATA_DTYPES = ("float32", "float64", "int64", "int32", "int16", "int8", "uint32", "uint16", "uint8")
DATA_DTYPES += ("bool",)
SUPPORTED_DTYPES = f"supported element types: {', '.join(DATA_DTYPES)}"


def onnx_type_name(dtype: str) -> str:
    """A numpy dtype name as ONNX names the element type ("object" -> "STRING")."""
    try:
        return onnx.TensorProto.DataType.Name(onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))
    except (KeyError, TypeError, ValueError):
        return dtype


def describe(node: onnx.NodeProto, index: int) -> str:
    """How error messages name an ONNX node: `Conv_3 (Conv, #3)`."""
    return f"{node.name or '<unnamed>'} ({node.op_type}, #{index})"


@dataclass
class ImportContext:
    """Values known while converting: runtime values with static shapes, constants as arrays."""

    path: str
    opset: int
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    dtypes: dict[str, str] = field(default_factory=dict)  # of the values in `shapes`
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    uses: dict[str, int] = field(default_factory=dict)  # ONNX consumers of each value
    source: str = ""  # the ONNX node being converted, for messages
    hint: str = "v"  # the ONNX node's first output, to name the values it makes
    _counter: int = 0

    # -------------------------------------------------------------- lookups

    def resolve(self, name: str) -> str:
        while name in self.aliases:
            name = self.aliases[name]
        return name

    def const(self, name: str) -> np.ndarray | None:
        return self.constants.get(self.resolve(name))

    def is_const(self, name: str) -> bool:
        return self.resolve(name) in self.constants

    def shape(self, name: str) -> tuple[int, ...]:
        name = self.resolve(name)
        if name in self.constants:
            return tuple(self.constants[name].shape)
        return self.shapes[name]

    def dtype(self, name: str) -> str:
        """The element type of a value as a numpy dtype name ("float32", "int64", "bool")."""
        name = self.resolve(name)
        if name in self.constants:
            return str(self.constants[name].dtype)
        return self.dtypes[name]

    def producer(self, name: str) -> Node | None:
        name = self.resolve(name)
        for n in reversed(self.nodes):
            if n.output == name:
                return n
        return None

    def fail(self, message: str) -> ModelError:
        return ModelError(f"{self.path}: node {self.source}: {message}")

    def check_size(self, name: str, shape: tuple[int, ...], itemsize: int = 4) -> None:
        """Refuse value `name` of `shape` if it is over the size limit (compiler/settings.py),
        naming the file and node: called before anything allocates it."""
        try:
            check_tensor_size(f"value {name!r}", tuple(int(d) for d in shape), itemsize)
        except UserError as err:
            raise self.fail(str(err)) from None

    # -------------------------------------------------------------- emitting

    def add_const(self, array: np.ndarray, hint: str = "const") -> str:
        self._counter += 1
        name = f"{hint}__c{self._counter}"
        self.constants[name] = np.ascontiguousarray(array)
        return name

    def emit(
        self,
        op: str,
        inputs: list[Operand],
        attrs: dict[str, object] | None = None,
        *,
        output: str | None = None,
        arg_names: tuple[str, ...] = (),
    ) -> str:
        """Append `output = ops.<op>(*inputs, **attrs)`; scalar operands become attrs."""
        attrs = dict(attrs or {})
        names, kw = [], []
        for k, item in enumerate(inputs):
            key = arg_names[k] if arg_names else None
            if isinstance(item, str):
                names.append(self.resolve(item))
                if key:
                    kw.append(key)
            else:
                if key is None:
                    raise self.fail("internal: a scalar operand needs an argument name")
                attrs[key] = int(item) if isinstance(item, int) else float(item)  # bools too
        if output is None:
            self._counter += 1
            output = f"{self.hint}__{self._counter}"
        node = Node(output, op, tuple(names), output, tuple(attrs.items()), self.source, tuple(kw))
        shape, dtype = self._infer(node)
        name = self.hint if output.startswith(f"{self.hint}__") else output
        self.check_size(name, shape, np.dtype(dtype).itemsize)
        self.shapes[output], self.dtypes[output] = shape, dtype
        self.nodes.append(node)
        return output

    def _infer(self, node: Node) -> tuple[tuple[int, ...], str]:
        """The output's shape and dtype, from the op itself (exact for pools in ceil mode)."""
        for name in node.inputs:
            if self.dtype(name) not in DATA_DTYPES:
                kind = onnx_type_name(self.dtype(name))
                raise self.fail(f"input {name!r} is a {kind} tensor; {SUPPORTED_DTYPES}")
        try:
            tensors = [
                te.placeholder(self.shape(n), self.dtype(n), name=f"p{k}")
                for k, n in enumerate(node.inputs)
            ]
            out = node.call(tensors)
        except (OpError, te.TEError) as err:
            raise self.fail(str(err)) from err
        return out.shape, out.dtype

    def replace_input(self, node: Node, k: int, name: str) -> None:
        """Point input k of an emitted node at another value (BatchNorm folding)."""
        inputs = list(node.inputs)
        inputs[k] = name
        at = next(q for q, n in enumerate(self.nodes) if n is node)
        self.nodes[at] = replace(node, inputs=tuple(inputs))

    def alias(self, name: str, target: str) -> None:
        self.aliases[name] = self.resolve(target)

    def values(self) -> dict[str, Value]:
        out = {n: Value(n, s, self.dtypes[n]) for n, s in self.shapes.items()}
        out.update({n: Value(n, tuple(a.shape), str(a.dtype)) for n, a in self.constants.items()})
        return out
