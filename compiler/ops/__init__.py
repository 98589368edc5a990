"""The op library (like TVM's topi): functions that build tensor-expression stages.

    >>> from compiler import ops, te
    >>> x = te.placeholder((1, 3, 32, 32), name="x")
    >>> w = te.placeholder((8, 3, 3, 3), name="w")
    >>> y = ops.relu(ops.conv2d_nchw(x, w, stride=1, padding=1))

Shapes are static Python ints; a bad argument raises `OpError` with a one-line
message naming the op, the argument and the shapes. Stage tags are in `tags`.
"""

from compiler.ops import tags
from compiler.ops.conv_packed import (
    conv2d_blocked,
    conv2d_nchwc,
    depthwise_conv2d_blocked,
    pack_channel_vector,
    pack_conv_weight,
    pack_conv_weight_blocked,
    pack_depthwise_weight,
    unblock_channels,
)
from compiler.ops.einsum import einsum
from compiler.ops.elementwise import (
    abs,
    absolute,
    add,
    clip,
    divide,
    erf,
    exp,
    gelu,
    hard_sigmoid,
    hard_swish,
    leaky_relu,
    log,
    maximum,
    minimum,
    multiply,
    neg,
    negative,
    power,
    relu,
    rsqrt,
    sigmoid,
    sqrt,
    subtract,
    tanh,
    trig,
)
from compiler.ops.errors import OpError
from compiler.ops.gather import gather, gather_elements, gather_nd
from compiler.ops.indexing import argmax, argmin, cumsum, isinf, isnan, one_hot, trilu
from compiler.ops.linalg import batch_matmul, bias_add, dense, matmul, matmul_packed
from compiler.ops.logic import (
    cast,
    equal,
    greater,
    greater_equal,
    less,
    less_equal,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    not_equal,
    where,
)
from compiler.ops.matmul_panels import matmul_panels, pack_matmul_weight
from compiler.ops.nn import conv2d_nchw, depthwise_conv2d_nchw, pad
from compiler.ops.norm import layer_norm, softmax
from compiler.ops.pool import avg_pool2d, global_avg_pool2d, max_pool2d
from compiler.ops.quantize import dequantize_linear, quantize_linear
from compiler.ops.reduction import reduce_max, reduce_mean, reduce_min, reduce_prod, reduce_sum
from compiler.ops.replicate import broadcast_to, dilate_pad, edge_pad, tile
from compiler.ops.resize import resize
from compiler.ops.rounding import ceil, floor, mod, round_half_even, sign
from compiler.ops.transform import (
    concat,
    expand_dims,
    flatten,
    reshape,
    slice,
    squeeze,
    strided_slice,
    take,
    transpose,
)
from compiler.ops.winograd import conv2d_winograd, transform_conv_weight

__all__ = [
    "OpError",
    "abs",
    "absolute",
    "add",
    "argmax",
    "argmin",
    "avg_pool2d",
    "batch_matmul",
    "bias_add",
    "broadcast_to",
    "cast",
    "ceil",
    "clip",
    "concat",
    "conv2d_blocked",
    "conv2d_nchw",
    "conv2d_nchwc",
    "conv2d_winograd",
    "cumsum",
    "dense",
    "depthwise_conv2d_blocked",
    "depthwise_conv2d_nchw",
    "dequantize_linear",
    "dilate_pad",
    "divide",
    "edge_pad",
    "einsum",
    "equal",
    "erf",
    "exp",
    "expand_dims",
    "flatten",
    "floor",
    "gather",
    "gather_elements",
    "gather_nd",
    "gelu",
    "global_avg_pool2d",
    "greater",
    "greater_equal",
    "hard_sigmoid",
    "hard_swish",
    "isinf",
    "isnan",
    "layer_norm",
    "leaky_relu",
    "less",
    "less_equal",
    "log",
    "logical_and",
    "logical_not",
    "logical_or",
    "logical_xor",
    "matmul",
    "matmul_packed",
    "matmul_panels",
    "max_pool2d",
    "maximum",
    "minimum",
    "mod",
    "multiply",
    "neg",
    "negative",
    "not_equal",
    "one_hot",
    "pack_channel_vector",
    "pack_conv_weight",
    "pack_conv_weight_blocked",
    "pack_depthwise_weight",
    "pack_matmul_weight",
    "pad",
    "power",
    "quantize_linear",
    "reduce_max",
    "reduce_mean",
    "reduce_min",
    "reduce_prod",
    "reduce_sum",
    "relu",
    "reshape",
    "resize",
    "round_half_even",
    "rsqrt",
    "sigmoid",
    "sign",
    "slice",
    "softmax",
    "sqrt",
    "squeeze",
    "strided_slice",
    "subtract",
    "tags",
    "take",
    "tanh",
    "tile",
    "transform_conv_weight",
    "transpose",
    "trig",
    "trilu",
    "unblock_channels",
    "where",
]
