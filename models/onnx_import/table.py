"""The importer's table: ONNX op type -> converter (ctx, node, attrs) -> output value names."""

from __future__ import annotations

from collections.abc import Callable

import onnx

from models.onnx_import import convert_deconv as dc
from models.onnx_import import convert_index as ix
from models.onnx_import import convert_logic as lg
from models.onnx_import import convert_math as m
from models.onnx_import import convert_nn as nn
from models.onnx_import import convert_rnn as rn
from models.onnx_import import convert_shape as sh
from models.onnx_import import resize as rs
from models.onnx_import.context import ImportContext

Converter = Callable[[ImportContext, onnx.NodeProto, dict[str, object]], list[str]]

CONVERTERS: dict[str, Converter] = {
    **{op: m.convert_binary for op in m.BINARY},
    **{op: m.convert_unary for op in m.UNARY},
    **{op: m.convert_trig for op in m.TRIG},
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
    "Cast": lg.convert_cast,
    "CastLike": lg.convert_cast_like,
    **{op: lg.convert_compare for op in lg.COMPARE},
    **{op: lg.convert_logic for op in lg.LOGIC},
    "Not": lg.convert_not,
    "Where": lg.convert_where,
    "Gather": lg.convert_gather,
    "GatherElements": lg.convert_gather_elements,
    "GatherND": lg.convert_gather_nd,
    "Reshape": sh.convert_reshape,
    "Flatten": sh.convert_flatten,
    "Transpose": sh.convert_transpose,
    "Concat": sh.convert_concat,
    "Split": sh.convert_split,
    "Slice": sh.convert_slice,
    "Squeeze": sh.convert_squeeze,
    "Unsqueeze": sh.convert_unsqueeze,
    "Pad": sh.convert_pad,
    "Expand": sh.convert_expand,
    "Tile": sh.convert_tile,
    "Mod": m.convert_mod,
    "Mean": m.convert_mean,
    "ArgMax": ix.convert_arg,
    "ArgMin": ix.convert_arg,
    "Hardmax": ix.convert_hardmax,
    "CumSum": ix.convert_cumsum,
    "Trilu": ix.convert_trilu,
    "OneHot": ix.convert_one_hot,
    "EyeLike": ix.convert_eye_like,
    "IsNaN": ix.convert_isnan,
    "IsInf": ix.convert_isinf,
    "Einsum": ix.convert_einsum,
    "QuantizeLinear": ix.convert_quantize,
    "DequantizeLinear": ix.convert_quantize,
    "InstanceNormalization": nn.convert_instance_norm,
    "LpNormalization": nn.convert_lp_norm,
    "ConvTranspose": dc.convert_conv_transpose,
    "LpPool": nn.convert_lp_pool,
    "Resize": rs.convert_resize,
    "Upsample": rs.convert_resize,
    "RNN": rn.convert_rnn,
    "GRU": rn.convert_rnn,
    "LSTM": rn.convert_rnn,
}

# ops that only ever compute shapes or constants: folded, never run
FOLD_ONLY = {
    "Shape",
    "Size",
    "ConstantOfShape",
    "Range",
    "NonZero",
}
