"""Built-in example networks, written in code (fixed seeds, realistic weight scales).

`zoo:NAME` is accepted wherever a model path is:

    >>> model = build("resnet18")            # an onnx.ModelProto
    >>> graph = load_graph("zoo:mlp")        # imported, ready to partition
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import onnx

from models.errors import ModelError
from models.zoo.cnn import mobilenet_v2, resnet18, squeezenet
from models.zoo.transformer import bert_encoder, mlp

PREFIX = "zoo:"


@dataclass(frozen=True)
class ZooModel:
    name: str
    make: Callable[[], onnx.ModelProto]
    description: str


ZOO: dict[str, ZooModel] = {
    m.name: m
    for m in (
        ZooModel("mlp", mlp, "784-512-256-10 MLP: Gemm + Relu, Softmax (batch 1)"),
        ZooModel("resnet18", resnet18, "ResNet-18, 1x3x224x224, BatchNorm, residual adds"),
        ZooModel("mobilenet_v2", mobilenet_v2, "MobileNetV2, 1x3x224x224, depthwise convs, ReLU6"),
        ZooModel("bert_encoder", bert_encoder,
                 "2-layer BERT encoder, seq 128, hidden 128, 2 heads, LayerNorm, erf GELU"),
        ZooModel("squeezenet", squeezenet, "SqueezeNet 1.1, 1x3x224x224, fire modules with Concat"),
    )
}  # fmt: skip


def is_zoo(spec: str) -> bool:
    return spec.startswith(PREFIX)


def build(name: str) -> onnx.ModelProto:
    """The ModelProto of zoo model `name` (with or without the `zoo:` prefix)."""
    key = name.removeprefix(PREFIX)
    if key not in ZOO:
        raise ModelError(f"{PREFIX}{key}: no such zoo model; known: {', '.join(ZOO)}")
    return ZOO[key].make()
