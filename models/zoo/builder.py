"""A small helper to write ONNX networks in code with realistic weights (fixed seed)."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


class NetBuilder:
    """Appends ONNX nodes and initializers; every method returns its output's name."""

    def __init__(self, name: str, seed: int = 0):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._count = 0

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, array: np.ndarray | np.generic, hint: str = "w") -> str:
        name = self.fresh(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs: Any) -> str:
        out = self.fresh(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op}_{self._count}", **attrs))
        return out

    # ------------------------------------------------------------- layers

    def conv(
        self,
        x: str,
        cin: int,
        cout: int,
        k: int,
        stride: int = 1,
        pad: int = 0,
        groups: int = 1,
        bias: bool = False,
    ) -> str:
        """He-initialized conv (std sqrt(2 / fan_in))."""
        fan_in = cin // groups * k * k
        w = self.rng.standard_normal((cout, cin // groups, k, k)) * np.sqrt(2.0 / fan_in)
        inputs = [x, self.const(w.astype(np.float32), "conv_w")]
        if bias:
            inputs.append(self.const(self.rng.normal(0, 0.05, cout).astype(np.float32), "conv_b"))
        return self.node("Conv", inputs, kernel_shape=[k, k], strides=[stride, stride],
                         pads=[pad] * 4, group=groups)  # fmt: skip

    def batch_norm(self, x: str, c: int) -> str:
        """BatchNorm with non-trivial statistics, as after training."""
        r = self.rng
        params = [r.uniform(0.5, 1.5, c), r.normal(0, 0.1, c), r.normal(0, 0.1, c),
                  r.uniform(0.5, 1.5, c)]  # fmt: skip
        names = [self.const(p.astype(np.float32), "bn") for p in params]
        return self.node("BatchNormalization", [x, *names], epsilon=1e-5)

    def conv_bn(
        self, x: str, cin: int, cout: int, k: int, stride: int = 1, pad: int = 0, groups: int = 1
    ) -> str:
        return self.batch_norm(self.conv(x, cin, cout, k, stride, pad, groups), cout)

    def relu6(self, x: str) -> str:
        lo, hi = self.const(np.float32(0.0), "lo"), self.const(np.float32(6.0), "hi")
        return self.node("Clip", [x, lo, hi])

    def gemm(self, x: str, fin: int, fout: int) -> str:
        """A fully connected layer with PyTorch's [out, in] weight (transB=1)."""
        w = self.rng.standard_normal((fout, fin)) / np.sqrt(fin)
        b = self.rng.normal(0, 0.05, fout)
        wn, bn = self.const(w.astype(np.float32), "fc_w"), self.const(b.astype(np.float32), "fc_b")
        return self.node("Gemm", [x, wn, bn], transB=1)

    def linear(self, x: str, fin: int, fout: int) -> str:
        """MatMul by a [in, out] weight plus a bias Add (how transformers export)."""
        w = self.rng.standard_normal((fin, fout)) / np.sqrt(fin)
        b = self.rng.normal(0, 0.05, fout)
        y = self.node("MatMul", [x, self.const(w.astype(np.float32), "lin_w")])
        return self.node("Add", [y, self.const(b.astype(np.float32), "lin_b")])

    def model(self, inputs: dict[str, list[int]], outputs: dict[str, str]) -> onnx.ModelProto:
        """The ModelProto; `outputs` maps each output name to the value that holds it."""
        for out_name, value in outputs.items():
            self.nodes.append(helper.make_node("Identity", [value], [out_name]))
        graph = helper.make_graph(
            self.nodes,
            self.name,
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
            self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 8
        return onnx.shape_inference.infer_shapes(model)
