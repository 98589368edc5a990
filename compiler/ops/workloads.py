"""Single-op workloads by name and shape: what `tune-op` and `sketches OP` tune.

Shapes are comma-separated integers (docs/architecture.md#op-shapes): matmul `M,N,K`;
matmul_panels (B in column panels of 16, as networks run products by constant weights)
`M,N,K`, N a multiple of 16; dense
`BATCH,IN,OUT`; conv2d `N,C,H,W,F,KH,KW,STRIDE,PAD[,DILATION,GROUPS]`; conv2d_nchwc (the weight
packed in 16-filter blocks) `N,C,H,W,F,KH,KW,STRIDE,PAD`; conv2d_blocked (blocked data in
and out, as networks run convs between convs) `N,C,H,W,F,KH,KW,STRIDE,PAD`;
depthwise_conv2d_blocked `N,C,H,W,KH,KW,STRIDE,PAD`;
conv2d_winograd (3x3 stride 1 by Winograd F(TILE, 3), TILE 2 or 4, default 4)
`N,C,H,W,F,3,3,1,PAD[,TILE]`;
depthwise_conv2d `N,C,H,W,KH,KW,STRIDE,PAD`; softmax and layer_norm `ROWS,COLS`.
"""

from __future__ import annotations

from collections.abc import Callable

from compiler import te
from compiler.ops import conv2d_nchw, dense, depthwise_conv2d_nchw, layer_norm, matmul, softmax
from compiler.ops.conv_packed import conv2d_blocked, conv2d_nchwc, depthwise_conv2d_blocked
from compiler.ops.errors import OpError
from compiler.ops.matmul_panels import matmul_panels
from compiler.ops.winograd import conv2d_winograd
from compiler.te.dag import ComputeDAG


def _matmul(m: int, n: int, k: int) -> ComputeDAG:
    a, b = te.placeholder((m, k), name="A"), te.placeholder((k, n), name="B")
    return ComputeDAG([matmul(a, b)])


def _matmul_panels(m: int, n: int, k: int) -> ComputeDAG:
    """A @ B with B [K, N] packed in column panels [ceil(N/16), K, 16] at compile time
    (compiler.ops.matmul_panels, models/layout.py), the last one padded."""
    a = te.placeholder((m, k), name="A")
    b = te.placeholder((-(-n // NCHWC_BLOCK), k, NCHWC_BLOCK), name="B_panels")
    return ComputeDAG([matmul_panels(a, b, n if n % NCHWC_BLOCK else None)])


def _dense(batch: int, inp: int, out: int) -> ComputeDAG:
    x, w = te.placeholder((batch, inp), name="X"), te.placeholder((out, inp), name="W")
    return ComputeDAG([dense(x, w)])


def _conv2d(n, c, h, w, f, kh, kw, stride, pad, dilation=1, groups=1) -> ComputeDAG:
    x = te.placeholder((n, c, h, w), name="data")
    k = te.placeholder((f, c // groups, kh, kw), name="weight")
    return ComputeDAG([conv2d_nchw(x, k, stride, pad, dilation, groups)])


def _conv2d_nchwc(n, c, h, w, f, kh, kw, stride, pad) -> ComputeDAG:
    """conv2d as the network compiler runs it: the weight packed into blocks of
    16 output channels (compiler.ops.conv_packed), NCHW data in and out."""
    x = te.placeholder((n, c, h, w), name="data")
    k = te.placeholder((-(-f // NCHWC_BLOCK), c, kh, kw, NCHWC_BLOCK), name="weight_packed")
    return ComputeDAG([conv2d_nchwc(x, k, stride, pad, filters=f)])


def _conv2d_blocked(n, c, h, w, f, kh, kw, stride, pad) -> ComputeDAG:
    """conv2d on blocked data [N, C/16, H, W, 16] -> [N, F/16, OH, OW, 16], the weight
    [F/16, C/16, KH, KW, 16, 16] (models/blocked_layout.py)."""
    b = NCHWC_BLOCK
    x = te.placeholder((n, -(-c // b), h, w, b), name="data_blocked")
    k = te.placeholder((-(-f // b), -(-c // b), kh, kw, b, b), name="weight_blocked")
    return ComputeDAG([conv2d_blocked(x, k, stride, pad)])


def _depthwise_blocked(n, c, h, w, kh, kw, stride, pad) -> ComputeDAG:
    b = NCHWC_BLOCK
    x = te.placeholder((n, -(-c // b), h, w, b), name="data_blocked")
    k = te.placeholder((-(-c // b), kh, kw, b), name="weight_blocked")
    return ComputeDAG([depthwise_conv2d_blocked(x, k, stride, pad)])


def _conv2d_winograd(n, c, h, w, f, kh, kw, stride, pad, tile=4) -> ComputeDAG:
    """A 3x3 stride-1 conv2d by Winograd F(tile, 3) (compiler.ops.winograd): NCHW
    data in and out, the weight transformed at compile time."""
    if (kh, kw, stride) != (3, 3, 1):
        raise OpError(
            f"conv2d_winograd needs a 3x3 kernel and stride 1, got {kh}x{kw} stride {stride}"
        )
    x = te.placeholder((n, c, h, w), name="data")
    u = te.placeholder((tile + 2, tile + 2, c, f), name="weight_winograd")
    return ComputeDAG([conv2d_winograd(x, u, pad, tile)])


def _depthwise(n, c, h, w, kh, kw, stride, pad) -> ComputeDAG:
    x = te.placeholder((n, c, h, w), name="data")
    k = te.placeholder((c, 1, kh, kw), name="weight")
    return ComputeDAG([depthwise_conv2d_nchw(x, k, stride, pad)])


def _softmax(rows: int, cols: int) -> ComputeDAG:
    return ComputeDAG([softmax(te.placeholder((rows, cols), name="x"))])


def _layer_norm(rows: int, cols: int) -> ComputeDAG:
    x = te.placeholder((rows, cols), name="x")
    g, b = te.placeholder((cols,), name="gamma"), te.placeholder((cols,), name="beta")
    return ComputeDAG([layer_norm(x, g, b)])


NCHWC_BLOCK = 16  # filters a weight block (columns a matmul panel): one AVX-512 vector

# name -> (builder, accepted argument counts, shape format)
WORKLOADS: dict[str, tuple[Callable[..., ComputeDAG], tuple[int, ...], str]] = {
    "matmul": (_matmul, (3,), "M,N,K"),
    "matmul_panels": (_matmul_panels, (3,), "M,N,K"),
    "dense": (_dense, (3,), "BATCH,IN,OUT"),
    "conv2d": (_conv2d, (9, 11), "N,C,H,W,F,KH,KW,STRIDE,PAD[,DILATION,GROUPS]"),
    "conv2d_nchwc": (_conv2d_nchwc, (9,), "N,C,H,W,F,KH,KW,STRIDE,PAD"),
    "conv2d_blocked": (_conv2d_blocked, (9,), "N,C,H,W,F,KH,KW,STRIDE,PAD"),
    "conv2d_winograd": (_conv2d_winograd, (9, 10), "N,C,H,W,F,3,3,1,PAD[,TILE]"),
    "depthwise_conv2d": (_depthwise, (8,), "N,C,H,W,KH,KW,STRIDE,PAD"),
    "depthwise_conv2d_blocked": (_depthwise_blocked, (8,), "N,C,H,W,KH,KW,STRIDE,PAD"),
    "softmax": (_softmax, (2,), "ROWS,COLS"),
    "layer_norm": (_layer_norm, (2,), "ROWS,COLS"),
}


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise OpError(f"--shape must be comma-separated integers, got {text!r}") from None
    if any(v < 0 for v in values):
        raise OpError(f"--shape values must not be negative, got {text!r}")
    return values


def op_workload(op: str, shape: str | tuple[int, ...]) -> ComputeDAG:
    """The DAG of one op, e.g. `op_workload("matmul", "1024,1024,1024")`."""
    if op not in WORKLOADS:
        raise OpError(f"unknown op {op!r}; choose one of {', '.join(WORKLOADS)}")
    build, counts, fmt = WORKLOADS[op]
    values = parse_shape(shape) if isinstance(shape, str) else tuple(shape)
    if len(values) not in counts:
        n = " or ".join(map(str, counts))
        raise OpError(f"--shape for {op} is {fmt} ({n} values), got {len(values)}")
    names = fmt.replace("[", "").replace("]", "").split(",")
    zero = [name for name, v in zip(names, values) if v == 0 and name != "PAD"]
    if zero:
        raise OpError(f"--shape for {op}: {', '.join(zero)} must be positive (only PAD may be 0)")
    return build(*values)
