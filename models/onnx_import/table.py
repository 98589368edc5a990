"""The importer's table: ONNX op type -> converter (ctx, node, attrs) -> output value names."""

from __future__ import annotations

from collections.abc import Callable

import onnx

from models.onnx_import import convert_math as m
from models.onnx_import import convert_nn as nn
from models.onnx_import import convert_shape as sh
from models.onnx_import.context import ImportContext

Converter = Callable[[ImportContext, onnx.NodeProto, dict[str, object]], list[str]]

CONVERTERS: dict[str, Converter] = {
    **{op: m.convert_binary for op in m.BINARY},
    **{op: m.convert_unary for op in m.UNARY},
    **{op: m.convert_reduce for op in m.REDUCE},
    "Reciprocal": m.convert_reciprocal,
    "LeakyRelu": m.convert_leaky_relu,
    "HardSigmoid": m.convert_hard_sigmoid,
    "Clip": m.convert_clip,
    "Gelu": m.convert_gelu,
    "Conv": nn.convert_conv,
    "Gemm": nn.convert_gemm,
    "MatMul": nn.convert_matmul,
    "MaxPool": nn.convert_pool,
    "AveragePool": nn.convert_pool,
    "GlobalAveragePool": nn.convert_global_pool,
    "GlobalMaxPool": nn.convert_global_pool,
    "BatchNormalization": nn.convert_batch_norm,
    "LayerNormalization": nn.convert_layer_norm,
    "Softmax": nn.convert_softmax,
    "Identity": sh.convert_passthrough,
    "Dropout": sh.convert_passthrough,
    "Cast": sh.convert_passthrough,
    "CastLike": sh.convert_passthrough,
    "Reshape": sh.convert_reshape,
    "Flatten": sh.convert_flatten,
    "Transpose": sh.convert_transpose,
    "Concat": sh.convert_concat,
    "Split": sh.convert_split,
    "Slice": sh.convert_slice,
    "Squeeze": sh.convert_squeeze,
    "Unsqueeze": sh.convert_unsqueeze,
    "Pad": sh.convert_pad,
    "Gather": sh.convert_gather,
    "Expand": sh.convert_expand,
}

# ops that only ever compute shapes or constants: folded, never run
FOLD_ONLY = {
    "Shape",
    "Size",
    "ConstantOfShape",
    "Range",
    "Equal",
    "Less",
    "Greater",
    "Where",
    "Not",
    "And",
    "Or",
    "Floor",
    "Ceil",
    "Tile",
    "NonZero",
    "ReduceProd",
    "Mod",
}
