"""The layout of a per-store feature row: `FEATURE_NAMES`, `N_FEATURES` and group offsets.

One row of 164 float32 values per `Store` statement of the lowered loop program,
in Ansor's order (docs/search.md#cost-model); counts and sizes are scaled with
slog(x) = sign(x) log2(|x| + 1), one-hots are 0/1:

| offset | count | group |
| ---: | ---: | --- |
| 0 | 16 | computation: float mad, add/sub, mul, div/mod, compare, math call, other; int the same 7; bool ops; selects |
| 16 | 3 x 11 | vectorize / unroll / parallel: count, product of extents, innermost extent, 8-way position one-hot |
| 49 | 8 | GPU thread bindings (always 0 on the CPU; kept so the row matches Ansor's 164) |
| 57 | 5 x 18 | buffer access, the 5 buffers with most cache lines (ties: most bytes), zero padded |
| 147 | 10 | arithmetic intensity curve |
| 157 | 4 | allocation: size (bytes), size x outer product, outer product, inner product |
| 161 | 3 | outer scope: product of enclosing loop extents, loop count, auto_unroll_max_step |
"""

from __future__ import annotations

import enum

N_BUFFERS = 5  # buffer access groups kept per store
CURVE_SAMPLES = 10  # arithmetic intensity curve samples


class Pos(enum.IntEnum):
    """Where an annotated loop sits (Ansor's AnnotationPosType)."""

    NONE = 0
    INNER_SPATIAL = 1
    MIDDLE_SPATIAL = 2
    OUTER_SPATIAL = 3
    INNER_REDUCE = 4
    MIDDLE_REDUCE = 5
    OUTER_REDUCE = 6
    MIXED = 7


class AccessType(enum.IntEnum):
    READ = 0
    WRITE = 1
    READ_WRITE = 2


class ReuseType(enum.IntEnum):
    LOOP_MULTIPLE_READ = 0  # a loop whose variable the access does not use
    SERIAL_MULTIPLE_READ_WRITE = 1  # several statements under one loop touch the buffer
    NO_REUSE = 2


OP_NAMES = (
    "float_mad",
    "float_addsub",
    "float_mul",
    "float_divmod",
    "float_cmp",
    "float_mathfunc",
    "float_otherfunc",
    "int_mad",
    "int_addsub",
    "int_mul",
    "int_divmod",
    "int_cmp",
    "int_mathfunc",
    "int_otherfunc",
    "bool_op",
    "select_op",
)
ANNOTATIONS = ("vec", "unroll", "parallel")
GPU_NAMES = (
    "is_gpu",
    "blockIdx_x_len",
    "blockIdx_y_len",
    "blockIdx_z_len",
    "threadIdx_x_len",
    "threadIdx_y_len",
    "threadIdx_z_len",
    "vthread_len",
)
BUFFER_FIELDS = (
    "acc_type.read",
    "acc_type.write",
    "acc_type.readwrite",
    "bytes",
    "unique_bytes",
    "lines",
    "unique_lines",
    "reuse_type.loop_multiple_read",
    "reuse_type.serial_multiple_read_write",
    "reuse_type.no_reuse",
    "reuse_dis_iter",
    "reuse_dis_bytes",
    "reuse_ct",
    "bytes_d_reuse_ct",
    "unique_bytes_d_reuse_ct",
    "lines_d_reuse_ct",
    "unique_lines_d_reuse_ct",
    "stride",
)
ALLOC_NAMES = ("alloc_size", "alloc_prod", "alloc_outer_prod", "alloc_inner_prod")
OUTER_NAMES = ("outer_prod", "num_loops", "auto_unroll_max_step")


def _annotation_names() -> list[str]:
    out = []
    for a in ANNOTATIONS:
        out += [f"{a}_num", f"{a}_prod", f"{a}_len"]
        out += [f"{a}_type.{p.name.lower()}" for p in Pos]
    return out


FEATURE_NAMES: tuple[str, ...] = (
    OP_NAMES
    + tuple(_annotation_names())
    + GPU_NAMES
    + tuple(f"B{i}.{f}" for i in range(N_BUFFERS) for f in BUFFER_FIELDS)
    + tuple(f"arith_intensity_curve_{i}" for i in range(CURVE_SAMPLES))
    + ALLOC_NAMES
    + OUTER_NAMES
)
N_FEATURES = len(FEATURE_NAMES)

OFF_ANNOTATION = len(OP_NAMES)  # 16
ANNOTATION_WIDTH = 3 + len(Pos)  # 11
OFF_GPU = OFF_ANNOTATION + len(ANNOTATIONS) * ANNOTATION_WIDTH  # 49
OFF_BUFFERS = OFF_GPU + len(GPU_NAMES)  # 57
BUFFER_WIDTH = len(BUFFER_FIELDS)  # 18
OFF_CURVE = OFF_BUFFERS + N_BUFFERS * BUFFER_WIDTH  # 147
OFF_ALLOC = OFF_CURVE + CURVE_SAMPLES  # 157
OFF_OUTER = OFF_ALLOC + len(ALLOC_NAMES)  # 161

assert N_FEATURES == 164 and OFF_OUTER + len(OUTER_NAMES) == N_FEATURES
