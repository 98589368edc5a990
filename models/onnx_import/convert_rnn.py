"""RNN, GRU and LSTM, unrolled over the (static) sequence: per direction, one matmul of
the whole input by the input weights, then per step a matmul of the hidden state by
the recurrent weights and the gates' element-wise math (which fuses into it). Steps of
one direction have equal workloads, so they are one task each kind, run T times.

Supported: the three ops in every direction and layout, gate activations Sigmoid, Tanh,
Relu, HardSigmoid, LeakyRelu, Affine, ScaledTanh, clip, LSTM peepholes and
input_forget, GRU's linear_before_reset; constant weights; sequence_lens only when
every sequence is full length.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from models.onnx_import.attrs import const_input, input_name
from models.onnx_import.context import ImportContext

Attrs = dict[str, Any]
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
DEFAULT_ACTIVATIONS = {
    "RNN": ["Tanh"],
    "GRU": ["Sigmoid", "Tanh"],
    "LSTM": ["Sigmoid", "Tanh", "Tanh"],
}


class Cell:
    """One direction's constants and the emitters of its gate math."""

    def __init__(self, ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs, d: int):
        self.ctx, self.op = ctx, node.op_type
        self.hidden = int(attrs["hidden_size"])
        w = _weight(ctx, node, 1, d)
        r = _weight(ctx, node, 2, d)
        gates = GATES[self.op] * self.hidden
        b = const_input(ctx, node, 3, "B")
        bias = np.zeros(2 * gates, np.float32) if b is None else b[d].astype(np.float32)
        self.w_t = ctx.add_const(np.ascontiguousarray(w.T), "rnn_w")
        self.r_t = ctx.add_const(np.ascontiguousarray(r.T), "rnn_r")
        self.w_bias, self.r_bias = bias[:gates], bias[gates:]
        count = len(DEFAULT_ACTIVATIONS[self.op])
        names = attrs.get("activations", DEFAULT_ACTIVATIONS[self.op] * 2)
        alphas = list(attrs.get("activation_alpha", []))
        betas = list(attrs.get("activation_beta", []))
        self.acts = [
            (names[d * count + k], _at(alphas, d * count + k), _at(betas, d * count + k))
            for k in range(count)
        ]
        self.clip = attrs.get("clip")
        self.input_forget = bool(attrs.get("input_forget", 0))
        self.r_parts: dict[tuple[int, int], str] = {}

    def r_part(self, start: int, end: int) -> str:
        """The recurrent weight's columns [start, end) as a constant (made once)."""
        key = (start, end)
        if key not in self.r_parts:
            self.r_parts[key] = self.ctx.add_const(_cols_const(self.ctx, self.r_t, start, end),
                                                   "rnn_r")  # fmt: skip
        return self.r_parts[key]

    def const(self, array: np.ndarray) -> str:
        return self.ctx.add_const(array.astype(np.float32), "rnn_b")

    def act(self, k: int, x: str) -> str:
        if self.clip is not None:
            x = self.ctx.emit("clip", [x], {"lo": -float(self.clip), "hi": float(self.clip)})
        return activation(self.ctx, *self.acts[k], x)


def _at(values: list[float], k: int) -> float | None:
    return float(values[k]) if k < len(values) else None


def _weight(ctx: ImportContext, node: onnx.NodeProto, k: int, d: int) -> np.ndarray:
    value = ctx.const(node.input[k])
    if value is None:
        raise ctx.fail(f"{node.op_type} with computed weights is not supported")
    return value[d].astype(np.float32)


def activation(
    ctx: ImportContext, name: str, alpha: float | None, beta: float | None, x: str
) -> str:
    ab = ("a", "b")
    if name == "Sigmoid":
        return ctx.emit("sigmoid", [x])
    if name == "Tanh":
        return ctx.emit("tanh", [x])
    if name == "Relu":
        return ctx.emit("relu", [x])
    if name == "HardSigmoid":
        kw = {"alpha": 0.2 if alpha is None else alpha, "beta": 0.5 if beta is None else beta}
        return ctx.emit("hard_sigmoid", [x], kw)
    if name == "LeakyRelu":
        return ctx.emit("leaky_relu", [x], {"alpha": 0.01 if alpha is None else alpha})
    if name == "Affine":
        scaled = ctx.emit("multiply", [x, 1.0 if alpha is None else alpha], arg_names=ab)
        return ctx.emit("add", [scaled, 0.0 if beta is None else beta], arg_names=ab)
    if name == "ScaledTanh":
        inner = ctx.emit("multiply", [x, 1.0 if beta is None else beta], arg_names=ab)
        return ctx.emit(
            "multiply", [ctx.emit("tanh", [inner]), 1.0 if alpha is None else alpha], arg_names=ab
        )
    raise ctx.fail(f"recurrent activation {name!r} is not supported")


def convert_rnn(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    x = node.input[0]
    layout = int(attrs.get("layout", 0))
    if layout:
        x = ctx.emit("transpose", [x], {"perm": (1, 0, 2)})
    steps, batch, _ = ctx.shape(x)
    _check_lengths(ctx, node, steps)
    direction = str(attrs.get("direction", "forward"))
    dirs = [0, 1] if direction == "bidirectional" else [0]
    ys, hs, cs = [], [], []
    for d in dirs:
        cell = Cell(ctx, node, attrs, d)
        reverse = direction == "reverse" or d == 1
        y, h, c = _run(ctx, node, cell, x, d, steps, batch, reverse)
        ys.append(y)
        hs.append(h)
        cs.append(c)
    return _outputs(ctx, node, ys, hs, cs, layout)


def _check_lengths(ctx: ImportContext, node: onnx.NodeProto, steps: int) -> None:
    if input_name(node, 4) is None:
        return
    lengths = const_input(ctx, node, 4, "sequence_lens")
    if lengths is None or np.any(np.asarray(lengths) != steps):
        raise ctx.fail("sequence_lens shorter than the sequence are not supported")


def _initial(
    ctx: ImportContext, node: onnx.NodeProto, k: int, d: int, batch: int, hidden: int
) -> str:
    name = input_name(node, k)
    if name is None:
        return ctx.add_const(np.zeros((batch, hidden), np.float32), "rnn_h0")
    piece = ctx.emit("slice", [name], {"starts": (d,), "ends": (d + 1,), "axes": (0,)})
    return ctx.emit("reshape", [piece], {"newshape": (batch, hidden)})


def _run(
    ctx: ImportContext,
    node: onnx.NodeProto,
    cell: Cell,
    x: str,
    d: int,
    steps: int,
    batch: int,
    reverse: bool,
) -> tuple[list[str], str, str | None]:
    """Per step hidden states (in time order), the last hidden state, the last cell."""
    n = cell.hidden
    flat = ctx.emit("reshape", [x], {"newshape": (steps * batch, ctx.shape(x)[2])})
    projected = ctx.emit("matmul", [flat, cell.w_t])
    xw = ctx.emit("reshape", [projected], {"newshape": (steps, batch, GATES[cell.op] * n)})
    h = _initial(ctx, node, 5, d, batch, n)
    c = _initial(ctx, node, 6, d, batch, n) if cell.op == "LSTM" else None
    peep = const_input(ctx, node, 7, "P") if cell.op == "LSTM" else None
    states: dict[int, str] = {}
    for t in reversed(range(steps)) if reverse else range(steps):
        step = ctx.emit("slice", [xw], {"starts": (t,), "ends": (t + 1,), "axes": (0,)})
        xt = ctx.emit("reshape", [step], {"newshape": (batch, GATES[cell.op] * n)})
        if cell.op == "LSTM":
            h, c = _lstm_step(ctx, cell, xt, h, c, None if peep is None else peep[d])  # type: ignore[arg-type]
        elif cell.op == "GRU":
            h = _gru_step(ctx, cell, xt, h, node)
        else:
            pre = _add_bias(
                ctx, cell, ctx.emit("add", [xt, ctx.emit("matmul", [h, cell.r_t])]), 0, 1
            )
            h = cell.act(0, pre)
        states[t] = h
    return [states[t] for t in range(steps)], h, c


def _gate(ctx: ImportContext, name: str, k: int, n: int) -> str:
    return ctx.emit("slice", [name], {"starts": (k * n,), "ends": ((k + 1) * n,), "axes": (1,)})


def _add_bias(ctx: ImportContext, cell: Cell, value: str, first: int, count: int) -> str:
    n = cell.hidden
    bias = (cell.w_bias + cell.r_bias)[first * n : (first + count) * n]
    return ctx.emit("add", [value, cell.const(bias)]) if np.any(bias) else value


def _lstm_step(
    ctx: ImportContext, cell: Cell, xt: str, h: str, c: str, peep: np.ndarray | None
) -> tuple[str, str]:
    n = cell.hidden
    pre = _add_bias(ctx, cell, ctx.emit("add", [xt, ctx.emit("matmul", [h, cell.r_t])]), 0, 4)
    gi, go, gf, gc = (_gate(ctx, pre, k, n) for k in range(4))
    if peep is not None:
        gi = ctx.emit("add", [gi, ctx.emit("multiply", [c, cell.const(peep[:n])])])
        gf = ctx.emit("add", [gf, ctx.emit("multiply", [c, cell.const(peep[2 * n :])])])
    i = cell.act(0, gi)
    f = cell.act(0, gf)
    if cell.input_forget:
        f = ctx.emit("subtract", [1.0, i], arg_names=("a", "b"))
    c_new = ctx.emit(
        "add", [ctx.emit("multiply", [f, c]), ctx.emit("multiply", [i, cell.act(1, gc)])]
    )
    if peep is not None:
        go = ctx.emit("add", [go, ctx.emit("multiply", [c_new, cell.const(peep[n : 2 * n])])])
    o = cell.act(0, go)
    return ctx.emit("multiply", [o, cell.act(2, c_new)]), c_new


def _gru_step(ctx: ImportContext, cell: Cell, xt: str, h: str, node: onnx.NodeProto) -> str:
    n = cell.hidden
    before = bool(next((a.i for a in node.attribute if a.name == "linear_before_reset"), 0))
    # the update and reset gates' product and the candidate's apart: each matmul's
    # output has one reader, so the adds fuse into it as its epilogue
    rec_zr = ctx.emit("matmul", [h, cell.r_part(0, 2 * n)])
    zr = _add_bias(ctx, cell, ctx.emit("add", [rec_zr, _cols(ctx, xt, 0, 2 * n)]), 0, 2)
    z = cell.act(0, _gate(ctx, zr, 0, n))
    r = cell.act(0, _gate(ctx, zr, 1, n))
    wb, rb = cell.const(cell.w_bias[2 * n :]), cell.const(cell.r_bias[2 * n :])
    xh = ctx.emit("add", [_cols(ctx, xt, 2 * n, 3 * n), wb])
    if before:
        rh = ctx.emit("add", [ctx.emit("matmul", [h, cell.r_part(2 * n, 3 * n)]), rb])
        cand = ctx.emit("add", [xh, ctx.emit("multiply", [r, rh])])
    else:
        rh = ctx.emit(
            "add",
            [ctx.emit("matmul", [ctx.emit("multiply", [r, h]), cell.r_part(2 * n, 3 * n)]), rb],
        )
        cand = ctx.emit("add", [xh, rh])
    hh = cell.act(1, cand)  # (1 - z) * hh + z * h, as one chain reading z once
    return ctx.emit("add", [hh, ctx.emit("multiply", [z, ctx.emit("subtract", [h, hh])])])


def _cols(ctx: ImportContext, name: str, start: int, end: int) -> str:
    return ctx.emit("slice", [name], {"starts": (start,), "ends": (end,), "axes": (1,)})


def _cols_const(ctx: ImportContext, name: str, start: int, end: int) -> np.ndarray:
    value = ctx.const(name)
    assert value is not None
    return np.ascontiguousarray(value[:, start:end])


def _outputs(
    ctx: ImportContext,
    node: onnx.NodeProto,
    ys: list[list[str]],
    hs: list[str],
    cs: list[str | None],
    layout: int,
) -> list[str]:
    """Y [seq, dirs, batch, hidden], Y_h and Y_c [dirs, batch, hidden] (layout 1: batch first)."""

    def stack(names: list[str], axis: int) -> str:
        parts = [ctx.emit("expand_dims", [v], {"axes": axis}) for v in names]
        return parts[0] if len(parts) == 1 else ctx.emit("concat", parts, {"axis": axis})

    wanted = [bool(o) for o in node.output] + [False] * 3
    out: list[str] = []
    if wanted[0]:
        y = stack([stack(seq, 0) for seq in ys], 1)  # [seq, dirs, batch, hidden]
        out.append(ctx.emit("transpose", [y], {"perm": (2, 0, 1, 3)}) if layout else y)
    else:
        out.append("")
    for k, finals in ((1, hs), (2, cs)):
        if not wanted[k] or finals[0] is None:
            out.append("")
            continue
        last = stack(finals, 0)  # type: ignore[arg-type]
        out.append(ctx.emit("transpose", [last], {"perm": (1, 0, 2)}) if layout else last)
    return out
