"""Convolutional zoo networks: resnet18, mobilenet_v2, squeezenet (1.1-style, with Concat)."""

from __future__ import annotations

import onnx

from models.zoo.builder import NetBuilder


def resnet18(resolution: int = 224, classes: int = 1000) -> onnx.ModelProto:
    b = NetBuilder("resnet18", seed=18)
    x = b.node("Relu", [b.conv_bn("input", 3, 64, 7, 2, 3)])
    x = b.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for stage, cout in enumerate((64, 128, 256, 512)):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            x = _basic_block(b, x, cin, cout, stride)
            cin = cout
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])], axis=1)
    return b.model({"input": [1, 3, resolution, resolution]}, {"logits": b.gemm(x, 512, classes)})


def _basic_block(b: NetBuilder, x: str, cin: int, cout: int, stride: int) -> str:
    y = b.node("Relu", [b.conv_bn(x, cin, cout, 3, stride, 1)])
    y = b.conv_bn(y, cout, cout, 3, 1, 1)
    shortcut = b.conv_bn(x, cin, cout, 1, stride, 0) if stride != 1 or cin != cout else x
    return b.node("Relu", [b.node("Add", [y, shortcut])])


MOBILENET_V2 = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1)]  # fmt: skip  # (expand, channels, repeats, stride)


def mobilenet_v2(resolution: int = 224, classes: int = 1000) -> onnx.ModelProto:
    b = NetBuilder("mobilenet_v2", seed=2)
    x = b.relu6(b.conv_bn("input", 3, 32, 3, 2, 1))
    cin = 32
    for expand, cout, repeats, first_stride in MOBILENET_V2:
        for r in range(repeats):
            x = _inverted_residual(b, x, cin, cout, first_stride if r == 0 else 1, expand)
            cin = cout
    x = b.relu6(b.conv_bn(x, cin, 1280, 1))
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])], axis=1)
    return b.model({"input": [1, 3, resolution, resolution]}, {"logits": b.gemm(x, 1280, classes)})


def _inverted_residual(b: NetBuilder, x: str, cin: int, cout: int, stride: int, t: int) -> str:
    hidden = cin * t
    y = b.relu6(b.conv_bn(x, cin, hidden, 1)) if t != 1 else x
    y = b.relu6(b.conv_bn(y, hidden, hidden, 3, stride, 1, groups=hidden))
    y = b.conv_bn(y, hidden, cout, 1)
    return b.node("Add", [x, y]) if stride == 1 and cin == cout else y


def squeezenet(resolution: int = 224, classes: int = 1000) -> onnx.ModelProto:
    """SqueezeNet 1.1: fire modules (squeeze 1x1, expand 1x1 and 3x3, Concat), ceil-mode pools."""
    b = NetBuilder("squeezenet", seed=11)
    x = b.node("Relu", [b.conv("input", 3, 64, 3, 2, 0, bias=True)])
    cin = 64
    for stage in ((16, 64), (32, 128), (48, 192), (64, 256)):
        if stage[0] <= 48:  # pools before the first three stages
            x = b.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
        for _ in range(2):
            x = _fire(b, x, cin, *stage)
            cin = 2 * stage[1]
    x = b.node("Dropout", [x])
    x = b.node("Relu", [b.conv(x, cin, classes, 1, bias=True)])
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])], axis=1)
    return b.model({"input": [1, 3, resolution, resolution]}, {"logits": x})


def _fire(b: NetBuilder, x: str, cin: int, squeeze: int, expand: int) -> str:
    s = b.node("Relu", [b.conv(x, cin, squeeze, 1, bias=True)])
    e1 = b.node("Relu", [b.conv(s, squeeze, expand, 1, bias=True)])
    e3 = b.node("Relu", [b.conv(s, squeeze, expand, 3, 1, 1, bias=True)])
    return b.node("Concat", [e1, e3], axis=1)
