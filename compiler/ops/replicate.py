"""Remaps that repeat their input: broadcast_to (ONNX Expand), tile (ONNX Tile) and
edge_pad (ONNX Pad in edge, reflect and wrap modes).

Each is one stage tagged "injective" whose body is a single read of the input at a
clamped, mirrored or wrapped index, so it inlines into its consumer like the other
remaps of compiler/ops/transform.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from compiler import te
from compiler.ops import tags
from compiler.ops.errors import OpError
from compiler.ops.shapes import broadcast_read, broadcast_shapes, check_tensor, is_int
from compiler.te import Expr, Tensor

PAD_MODES = ("edge", "reflect", "wrap")


IndexMap = Callable[[tuple[Expr, ...]], Sequence[Expr]]


def _remap(
    name: str, x: Tensor, shape: tuple[int, ...], index: IndexMap, attrs: dict[str, object]
) -> Tensor:
    """A stage reading x at index(output index)."""

    def body(*i: Expr) -> Expr:
        return x[tuple(index(i))]

    return te.compute(shape, body, name=name, tag=tags.INJECTIVE, attrs=attrs)


def broadcast_to(x: Tensor, shape: Sequence[int]) -> Tensor:
    """x repeated along its extent-1 axes to `shape` under numpy broadcasting (ONNX Expand).

    Example: `y = broadcast_to(x, (4, 3, 5))` for x of shape (3, 1).
    """
    check_tensor("broadcast_to", "x", x)
    target = tuple(int(d) for d in shape)
    if broadcast_shapes("broadcast_to", x.shape, target) != target:
        raise OpError(f"broadcast_to: {x.shape} does not broadcast to {target}")

    def index(i: tuple[Expr, ...]) -> Sequence[Expr]:
        return broadcast_read(x, i, target).indices  # type: ignore[attr-defined]

    return _remap("broadcast_to", x, target, index, {"shape": target})


def tile(x: Tensor, repeats: Sequence[int]) -> Tensor:
    """x repeated `repeats[k]` times along axis k (ONNX Tile, numpy.tile of equal rank).

    Example: `y = tile(x, (1, 3))` for x [2, 4] gives [2, 12]."""
    check_tensor("tile", "x", x)
    reps = tuple(repeats)
    if len(reps) != x.ndim or not all(is_int(r) and r >= 1 for r in reps):
        raise OpError(f"tile: repeats must be {x.ndim} ints >= 1, got {list(repeats)}")
    shape = tuple(d * r for d, r in zip(x.shape, reps))

    def index(i: tuple[Expr, ...]) -> list[Expr]:
        return [ik % d if r > 1 else ik for ik, d, r in zip(i, x.shape, reps)]

    return _remap("tile", x, shape, index, {"repeats": reps})


def edge_pad(
    x: Tensor, pad_before: Sequence[int], pad_after: Sequence[int], mode: str = "edge"
) -> Tensor:
    """x padded by repeating its border (`edge`), mirroring it without repeating the border
    (`reflect`, pads shorter than the axis) or wrapping around (`wrap`), ONNX Pad's modes.

    Example: `y = edge_pad(x, (0, 2), (0, 2), "reflect")` for a row [1, 2, 3] gives
    [3, 2, 1, 2, 3, 2, 1]."""
    check_tensor("edge_pad", "x", x)
    if mode not in PAD_MODES:
        raise OpError(f"edge_pad: mode {mode!r} is not one of {', '.join(PAD_MODES)}")
    before, after = tuple(pad_before), tuple(pad_after)
    ok = len(before) == len(after) == x.ndim and all(is_int(p) and p >= 0 for p in before + after)
    if not ok:
        raise OpError(
            f"edge_pad: pads must be {x.ndim} ints >= 0 before and after, got "
            f"{list(before)} and {list(after)}"
        )
    if mode == "reflect" and any(max(b, a) >= d for b, a, d in zip(before, after, x.shape)):
        raise OpError(
            f"edge_pad: reflect pads {list(before)}, {list(after)} must be shorter "
            f"than the axes of {x.shape}"
        )
    fold = _FOLDS[mode]
    shape = tuple(d + b + a for d, b, a in zip(x.shape, before, after))

    def index(i: tuple[Expr, ...]) -> list[Expr]:
        return [fold(ik - b, d) if b or a else ik for ik, b, a, d in zip(i, before, after, x.shape)]

    attrs = {"pad_before": before, "pad_after": after, "mode": mode}
    return _remap("edge_pad", x, shape, index, attrs)


def _edge(j: Expr, d: int) -> Expr:
    return te.min_expr(te.max_expr(j, 0), d - 1)


def _reflect(j: Expr, d: int) -> Expr:
    return te.select(j < 0, -j, te.select(j >= d, 2 * (d - 1) - j, j))


def _wrap(j: Expr, d: int) -> Expr:
    return j % d


_FOLDS: dict[str, Callable[[Expr, int], Expr]] = {"edge": _edge, "reflect": _reflect, "wrap": _wrap}


def dilate_pad(
    x: Tensor, strides: Sequence[int], pad_before: Sequence[int], out_shape: Sequence[int]
) -> Tensor:
    """x spread `strides[k]` apart on axis k (zeros between), shifted right by
    pad_before[k] (negative: cropped) into zeros of `out_shape`: the input of the direct
    conv that computes a transposed one (ONNX ConvTranspose). Tagged as a pad.

    Example: `dilate_pad(x, (1, 1, 2, 2), (0, 0, 2, 2), (1, 8, 11, 11))` for x [1, 8, 4, 4]."""
    check_tensor("dilate_pad", "x", x)
    steps, shifts, shape = tuple(strides), tuple(pad_before), tuple(out_shape)
    if not len(steps) == len(shifts) == len(shape) == x.ndim or min(steps) < 1:
        raise OpError(f"dilate_pad: strides, pads and shape must be {x.ndim} ints, strides >= 1")

    def body(*i: Expr) -> Expr:
        inside, index = [], []
        for ik, s, p, d, n in zip(i, steps, shifts, x.shape, shape):
            t = ik - p if p else ik
            if s > 1 or p or n != d:  # else the axis is read as it is
                inside += [t >= 0, t <= (d - 1) * s]
            if s > 1:
                inside.append(te.equal(t % s, 0))
            index.append(t // s if s > 1 else t)
        read = x[tuple(index)]
        zero = te.const(0, x.dtype)
        return te.select(te.logical_and(*inside), read, zero) if inside else read

    attrs = {"strides": steps, "pad_before": shifts}
    return te.compute(shape, body, name="dilate_pad", tag=tags.PAD, attrs=attrs)
