"""Stage tags: how sketch rules and the partitioner recognise what a stage computes.

A tag is a comma-separated list. Index remappings and elementwise stages carry
INJECTIVE first, then ELEMWISE (same shape in and out), BROADCAST (an operand
is broadcast), PAD or GATHER; any injective stage may be fused into its neighbours.
Every other tag names an anchor op and sits on its reduction stage(s).
"""

from compiler.te import Tensor

INJECTIVE = "injective"
ELEMWISE = "injective,elemwise"
BROADCAST = "injective,broadcast"
PAD = "injective,pad"
GATHER = "injective,gather"  # reads data at indices loaded from another tensor

CONV2D_NCHW = "conv2d_nchw"
CONV2D_NCHWC = "conv2d_nchwc"  # weight packed in output-channel blocks
CONV2D_BLOCKED = "conv2d_blocked"  # output (and maybe input) in channel blocks [N, C/b, H, W, b]
WINOGRAD_GEMM = "conv2d_winograd"  # the batched GEMM of a Winograd conv (compiler/ops/winograd.py)
WINOGRAD_TRANSFORM = "winograd_transform"  # sums over constant matrices: const_axes unrolled
DEPTHWISE_CONV2D_NCHW = "depthwise_conv2d_nchw"
DEPTHWISE_CONV2D_BLOCKED = "depthwise_conv2d_blocked"  # [N, C/b, H, W, b] in and out
MATMUL = "matmul"
BATCH_MATMUL = "batch_matmul"
DENSE = "dense"
POOL_MAX = "pool_max"
POOL_AVG = "pool_avg"
GLOBAL_POOL_AVG = "global_pool_avg"
REDUCE = "reduce"
SOFTMAX = "softmax"
LAYER_NORM = "layer_norm"


def tag_set(tensor: Tensor) -> frozenset[str]:
    """The individual tags of a stage ("injective,pad" -> {"injective", "pad"})."""
    return frozenset(t for t in tensor.tag.split(",") if t)


def has_tag(tensor: Tensor, tag: str) -> bool:
    """Whether a stage carries `tag` (a single tag such as "pad" or "conv2d_nchw")."""
    return tag in tag_set(tensor)


def is_injective(tensor: Tensor) -> bool:
    """Whether a stage only remaps indices or applies elementwise math (fusable)."""
    return has_tag(tensor, INJECTIVE)
