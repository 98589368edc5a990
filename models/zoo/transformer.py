"""Fully connected zoo networks: an MLP and a 2-layer BERT-style encoder."""

from __future__ import annotations

import math

import numpy as np
import onnx

from models.zoo.builder import NetBuilder


def mlp(
    features: int = 784, hidden: tuple[int, ...] = (512, 256), classes: int = 10
) -> onnx.ModelProto:
    b = NetBuilder("mlp", seed=7)
    x, fin = "input", features
    for width in hidden:
        x, fin = b.node("Relu", [b.gemm(x, fin, width)]), width
    probs = b.node("Softmax", [b.gemm(x, fin, classes)], axis=-1)
    return b.model({"input": [1, features]}, {"probs": probs})


def bert_encoder(
    seq: int = 128, hidden: int = 128, heads: int = 2, layers: int = 2, ffn: int = 512
) -> onnx.ModelProto:
    """Post-norm BERT layers: self-attention, residual, LayerNorm, GELU (erf form) FFN."""
    b = NetBuilder("bert_encoder", seed=128)
    x = "input"
    for _ in range(layers):
        x = _layer(b, x, seq, hidden, heads, ffn)
    return b.model({"input": [1, seq, hidden]}, {"hidden_states": x})


def _layer(b: NetBuilder, x: str, seq: int, hidden: int, heads: int, ffn: int) -> str:
    head_dim = hidden // heads
    q, k, v = (_heads(b, b.linear(x, hidden, hidden), heads, head_dim) for _ in range(3))
    kt = b.node("Transpose", [k], perm=[0, 1, 3, 2])
    scores = b.node("MatMul", [q, kt])
    scores = b.node("Div", [scores, b.const(np.float32(math.sqrt(head_dim)), "scale")])
    probs = b.node("Softmax", [scores], axis=-1)
    context = b.node("Transpose", [b.node("MatMul", [probs, v])], perm=[0, 2, 1, 3])
    context = b.node("Reshape", [context, b.const(np.array([0, 0, hidden], np.int64), "shape")])
    x = _add_norm(b, x, b.linear(context, hidden, hidden), hidden)
    h = _gelu(b, b.linear(x, hidden, ffn))
    return _add_norm(b, x, b.linear(h, ffn, hidden), hidden)


def _heads(b: NetBuilder, x: str, heads: int, head_dim: int) -> str:
    """[1, S, H*D] -> [1, H, S, D]; the target shape is computed from Shape (folded)."""
    batch_seq = b.node("Slice", [b.node("Shape", [x]), b.const(np.array([0], np.int64), "s"),
                                 b.const(np.array([2], np.int64), "e")])  # fmt: skip
    tail = b.const(np.array([heads, head_dim], np.int64), "hd")
    target = b.node("Concat", [batch_seq, tail], axis=0)
    return b.node("Transpose", [b.node("Reshape", [x, target])], perm=[0, 2, 1, 3])


def _add_norm(b: NetBuilder, x: str, y: str, hidden: int) -> str:
    gamma = b.const(b.rng.uniform(0.8, 1.2, hidden).astype(np.float32), "ln_g")
    beta = b.const(b.rng.normal(0, 0.05, hidden).astype(np.float32), "ln_b")
    return b.node("LayerNormalization", [b.node("Add", [x, y]), gamma, beta], axis=-1,
                  epsilon=1e-12)  # fmt: skip


def _gelu(b: NetBuilder, x: str) -> str:
    """0.5 * x * (1 + erf(x / sqrt(2))), as PyTorch exports nn.GELU before opset 20."""
    e = b.node("Erf", [b.node("Div", [x, b.const(np.float32(math.sqrt(2.0)), "sqrt2")])])
    one_plus = b.node("Add", [e, b.const(np.float32(1.0), "one")])
    return b.node("Mul", [b.node("Mul", [x, one_plus]), b.const(np.float32(0.5), "half")])
