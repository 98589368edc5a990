"""Index remappings: transpose, reshape, flatten, squeeze, expand_dims, concat, slice, take.

Each is one stage tagged "injective" whose body is a single read (concat: a
select chain of reads), so it can be inlined into its consumer. Shapes are
static, so every index is affine or a floor div/mod by a constant.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

from compiler import te
from compiler.ops import tags
from compiler.ops.errors import OpError
from compiler.ops.shapes import (
    check_same_dtype,
    check_tensor,
    is_int,
    normalize_axes,
    normalize_axis,
)
from compiler.te import Expr, Tensor

IndexMap = Callable[[tuple[Expr, ...]], Sequence[Expr | int]]


def _remap(
    name: str, x: Tensor, shape: tuple[int, ...], source_index: IndexMap, attrs: dict[str, object]
) -> Tensor:
    """A stage reading x at source_index(output index)."""

    def body(*i: Expr) -> Expr:
        return x[tuple(source_index(i))]

    return te.compute(shape, body, name=name, tag=tags.INJECTIVE, attrs=attrs)


def transpose(x: Tensor, perm: Sequence[int] | None = None) -> Tensor:
    """Axes permuted: out.shape[k] = x.shape[perm[k]] (None reverses them).

    Example: `y = transpose(x, (0, 2, 1, 3))`.
    """
    check_tensor("transpose", "x", x)
    if perm is None:
        order = tuple(reversed(range(x.ndim)))
    else:
        order = tuple(normalize_axis("transpose", p, x.ndim, arg="perm entry") for p in perm)
        if sorted(order) != list(range(x.ndim)):
            raise OpError(f"transpose: perm {list(perm)} is not a permutation of {x.ndim} axes")
    inverse = [order.index(d) for d in range(x.ndim)]
    shape = tuple(x.shape[p] for p in order)
    return _remap(
        "transpose", x, shape, lambda i: [i[inverse[d]] for d in range(x.ndim)], {"perm": order}
    )


def reshape(x: Tensor, newshape: Sequence[int]) -> Tensor:
    """The same elements in row-major order under a new shape; -1 is inferred, 0 copies.

    Example: `y = reshape(x, (0, -1))` flattens all but the first axis.
    """
    check_tensor("reshape", "x", x)
    return _reshape("reshape", x, _resolve_shape(x.shape, newshape))


def _resolve_shape(old: tuple[int, ...], newshape: Sequence[int]) -> tuple[int, ...]:
    """ONNX Reshape semantics (allowzero=0): 0 copies the input dim, one -1 is inferred."""
    items = list(newshape)
    bad = [d for d in items if not is_int(d) or d < -1]
    if bad or items.count(-1) > 1 or any(d == 0 and k >= len(old) for k, d in enumerate(items)):
        raise OpError(f"reshape: invalid new shape {items} for shape {old}")
    dims = [old[k] if d == 0 else d for k, d in enumerate(items)]
    total, known = math.prod(old), math.prod(d for d in dims if d != -1)
    if -1 in dims and total % known == 0:
        dims[dims.index(-1)] = total // known
    if math.prod(dims) != total or -1 in dims:
        raise OpError(f"reshape: cannot reshape {old} ({total} elements) to {items}")
    return tuple(dims)


def _reshape(name: str, x: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Row-major reshape through the flat index: out index -> flat -> x index."""
    out_strides, in_strides = _strides(shape), _strides(x.shape)
    total = math.prod(shape)

    def source_index(i: tuple[Expr, ...]) -> list[Expr | int]:
        terms = [ik * s if s != 1 else ik for ik, s, d in zip(i, out_strides, shape) if d != 1]
        flat = sum(terms[1:], terms[0]) if terms else 0
        return [_digit(flat, s, d, total) for s, d in zip(in_strides, x.shape)]

    return _remap(name, x, shape, source_index, {"newshape": shape})


def _strides(shape: tuple[int, ...]) -> list[int]:
    return [math.prod(shape[k + 1 :]) for k in range(len(shape))]


def _digit(flat: Expr | int, stride: int, extent: int, total: int) -> Expr | int:
    """(flat // stride) % extent, dropping the operations that are identities."""
    if extent == 1 or isinstance(flat, int):
        return 0
    quotient = flat // stride if stride != 1 else flat
    return quotient if stride * extent == total else quotient % extent


def flatten(x: Tensor, axis: int = 1) -> Tensor:
    """2-D [prod(shape[:axis]), prod(shape[axis:])], like ONNX Flatten.

    Example: `y = flatten(x)` turns [N, C, H, W] into [N, C*H*W].
    """
    check_tensor("flatten", "x", x)
    if not is_int(axis) or not -x.ndim <= axis <= x.ndim:
        raise OpError(f"flatten: axis {axis!r} is out of range for a {x.ndim}-D tensor")
    ax = axis + x.ndim if axis < 0 else axis  # ONNX: a negative axis counts from the end
    shape = (math.prod(x.shape[:ax]), math.prod(x.shape[ax:]))
    return _reshape("flatten", x, shape)


def squeeze(x: Tensor, axes: int | Sequence[int] | None = None) -> Tensor:
    """Axes of extent 1 removed (None: all of them). Example: `y = squeeze(x, axes=(2, 3))`."""
    check_tensor("squeeze", "x", x)
    if axes is None:
        dropped = tuple(k for k, d in enumerate(x.shape) if d == 1)
    else:
        dropped = normalize_axes("squeeze", axes, x.ndim)
    wrong = [k for k in dropped if x.shape[k] != 1]
    if wrong:
        raise OpError(f"squeeze: axis {wrong[0]} of shape {x.shape} has extent != 1")
    kept = [k for k in range(x.ndim) if k not in dropped]
    shape = tuple(x.shape[k] for k in kept)

    def source_index(i: tuple[Expr, ...]) -> list[Expr | int]:
        out_of = dict(zip(kept, i))
        return [out_of.get(k, 0) for k in range(x.ndim)]

    return _remap("squeeze", x, shape, source_index, {"axes": dropped})


def expand_dims(x: Tensor, axes: int | Sequence[int]) -> Tensor:
    """New axes of extent 1 at `axes` (positions in the output, like ONNX Unsqueeze).

    Example: `y = expand_dims(x, 0)` turns [C] into [1, C].
    """
    check_tensor("expand_dims", "x", x)
    count = 1 if isinstance(axes, int) else len(axes)
    new = normalize_axes("expand_dims", axes, x.ndim + count)
    shape_list = list(x.shape)
    for k in new:
        shape_list.insert(k, 1)
    kept = [k for k in range(x.ndim + count) if k not in new]
    return _remap(
        "expand_dims", x, tuple(shape_list), lambda i: [i[k] for k in kept], {"axes": new}
    )


def concat(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Tensors joined along `axis` (a select chain on the axis index).

    Example: `y = concat([a, b], axis=1)`.
    """
    parts = [check_tensor("concat", f"tensors[{q}]", t) for q, t in enumerate(tensors)]
    if not parts:
        raise OpError("concat: needs at least one tensor")
    first = parts[0]
    ax = normalize_axis("concat", axis, first.ndim)
    for q, t in enumerate(parts[1:], 1):
        check_same_dtype("concat", first, t)
        if t.ndim != first.ndim or _without(t.shape, ax) != _without(first.shape, ax):
            raise OpError(
                f"concat: tensors[{q}] has shape {t.shape} but tensors[0] has {first.shape}; "
                f"only axis {ax} may differ"
            )
    offsets = [0]
    for t in parts:
        offsets.append(offsets[-1] + t.shape[ax])
    shape = first.shape[:ax] + (offsets[-1],) + first.shape[ax + 1 :]

    def body(*i: Expr) -> Expr:
        value = _shifted_read(parts[-1], i, ax, offsets[-2])
        for t, start, end in reversed(list(zip(parts[:-1], offsets, offsets[1:]))):
            value = te.select(i[ax] < end, _shifted_read(t, i, ax, start), value)
        return value

    return te.compute(shape, body, name="concat", tag=tags.INJECTIVE, attrs={"axis": ax})


def _without(shape: tuple[int, ...], ax: int) -> tuple[int, ...]:
    return shape[:ax] + shape[ax + 1 :]


def _shifted_read(t: Tensor, i: tuple[Expr, ...], ax: int, offset: int) -> Expr:
    return t[i[:ax] + ((i[ax] - offset) if offset else i[ax],) + i[ax + 1 :]]


def strided_slice(
    x: Tensor,
    starts: Sequence[int],
    ends: Sequence[int],
    axes: Sequence[int] | None = None,
    steps: Sequence[int] | None = None,
) -> Tensor:
    """x[start:end:step] on each of `axes`, clamped like ONNX Slice (also exported as `slice`).

    Example: `y = slice(x, starts=[-1], ends=[-2**63], axes=[0], steps=[-1])` reverses axis 0.
    """
    check_tensor("slice", "x", x)
    axes_list = list(range(len(starts))) if axes is None else list(axes)
    steps_list = [1] * len(starts) if steps is None else list(steps)
    if not len(starts) == len(ends) == len(axes_list) == len(steps_list):
        raise OpError(
            f"slice: starts, ends, axes and steps differ in length: {len(starts)}, {len(ends)}, "
            f"{len(axes_list)}, {len(steps_list)}"
        )
    normalize_axes("slice", axes_list, x.ndim)  # checks range and duplicates
    ranges = {k: (0, 1, x.shape[k]) for k in range(x.ndim)}  # axis -> (start, step, length)
    for a, s, e, st in zip(axes_list, starts, ends, steps_list):
        k = a % x.ndim
        ranges[k] = _slice_range(k, s, e, st, x.shape[k])
    shape = tuple(ranges[k][2] for k in range(x.ndim))

    def source_index(i: tuple[Expr, ...]) -> list[Expr]:
        return [_affine(ik, *ranges[k][:2]) for k, ik in enumerate(i)]

    return _remap("slice", x, shape, source_index, {"ranges": tuple(ranges.values())})


def _slice_range(axis: int, start: int, end: int, step: int, dim: int) -> tuple[int, int, int]:
    """(first index, step, length) of one sliced axis, clamped like ONNX."""
    if not all(is_int(v) for v in (start, end, step)) or step == 0:
        raise OpError(f"slice: axis {axis}: start, end and step must be ints, step != 0")
    start, end = start + dim if start < 0 else start, end + dim if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
    else:
        start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    length = max(0, -((start - end) // step))  # ceil((end - start) / step)
    if length == 0:
        raise OpError(
            f"slice: axis {axis} of extent {dim} is empty after clamping "
            f"(start {start}, end {end}, step {step})"
        )
    return start, step, length


def _affine(i: Expr, start: int, step: int) -> Expr:
    """start + i * step, without the identity operations."""
    scaled = i if step == 1 else i * step
    return scaled + start if start else scaled


slice = strided_slice  # the op's public name (shadows the builtin in this module only)


def take(x: Tensor, indices: Sequence[int], axis: int = 0) -> Tensor:
    """x gathered along `axis` at constant `indices` (ONNX Gather on constant indices).

    The gathered axis has len(indices) entries; an arithmetic progression is an
    affine read, anything else a select chain on the index.
    Example: `y = take(x, (0, 2, 3), axis=1)`.
    """
    check_tensor("take", "x", x)
    ax = normalize_axis("take", axis, x.ndim)
    items = [int(i) for i in indices]
    if not items or not all(0 <= i < x.shape[ax] for i in items):
        raise OpError(f"take: indices {items} out of range for axis {ax} of shape {x.shape}")
    shape = x.shape[:ax] + (len(items),) + x.shape[ax + 1 :]
    step = items[1] - items[0] if len(items) > 1 else 1
    affine = all(b - a == step for a, b in itertools.pairwise(items))

    def source(j: Expr) -> Expr:
        if affine:
            return _affine(j, items[0], step) if len(items) > 1 else te.const(items[0], "int32")
        value: Expr = te.const(items[-1], "int32")
        for q in range(len(items) - 2, -1, -1):
            value = te.select(te.equal(j, q), te.const(items[q], "int32"), value)
        return value

    def source_index(i: tuple[Expr, ...]) -> list[Expr]:
        return [*i[:ax], source(i[ax]), *i[ax + 1 :]]

    return _remap("take", x, shape, source_index, {"indices": tuple(items), "axis": ax})
