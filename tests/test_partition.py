"""Partition: fused subgraphs (anchor + epilogue, inlined remaps) and deduplicated tasks."""

from __future__ import annotations

import pytest

from models import zoo
from models.onnx_import import import_model
from models.partition import partition

CONV_BIAS_RELU = ("conv2d_nchw", "bias_add", "relu")
CONV_BIAS_ADD_RELU = ("conv2d_nchw", "bias_add", "add", "relu")
CONV_BIAS = ("conv2d_nchw", "bias_add")


@pytest.fixture(scope="module")
def resnet18_partition():
    return partition(import_model(zoo.build("resnet18")), pack_weights=False)


def test_resnet18_tasks_and_weights(resnet18_partition):
    part = resnet18_partition
    assert len(part.subgraphs) == 23  # 20 convs (BN folded), maxpool, global pool, fc
    got = sorted((t.ops, tuple(map(tuple, t.shapes[:2])), t.weight) for t in part.tasks)
    expected = [
        (CONV_BIAS_RELU, ((1, 3, 224, 224), (64, 3, 7, 7)), 1),
        (("max_pool2d",), ((1, 64, 112, 112), (1, 64, 56, 56)), 1),
        (CONV_BIAS_RELU, ((1, 64, 56, 56), (64, 64, 3, 3)), 2),
        (CONV_BIAS_ADD_RELU, ((1, 64, 56, 56), (64, 64, 3, 3)), 2),
        (CONV_BIAS_RELU, ((1, 64, 56, 56), (128, 64, 3, 3)), 1),
        (CONV_BIAS, ((1, 64, 56, 56), (128, 64, 1, 1)), 1),
        (CONV_BIAS_ADD_RELU, ((1, 128, 28, 28), (128, 128, 3, 3)), 2),
        (CONV_BIAS_RELU, ((1, 128, 28, 28), (128, 128, 3, 3)), 1),
        (CONV_BIAS_RELU, ((1, 128, 28, 28), (256, 128, 3, 3)), 1),
        (CONV_BIAS, ((1, 128, 28, 28), (256, 128, 1, 1)), 1),
        (CONV_BIAS_ADD_RELU, ((1, 256, 14, 14), (256, 256, 3, 3)), 2),
        (CONV_BIAS_RELU, ((1, 256, 14, 14), (256, 256, 3, 3)), 1),
        (CONV_BIAS_RELU, ((1, 256, 14, 14), (512, 256, 3, 3)), 1),
        (CONV_BIAS, ((1, 256, 14, 14), (512, 256, 1, 1)), 1),
        (CONV_BIAS_ADD_RELU, ((1, 512, 7, 7), (512, 512, 3, 3)), 2),
        (CONV_BIAS_RELU, ((1, 512, 7, 7), (512, 512, 3, 3)), 1),
        (("global_avg_pool2d",), ((1, 512, 7, 7), (1, 512, 1, 1)), 1),
        (("flatten", "matmul", "bias_add"), ((1, 512, 1, 1), (512, 1000)), 1),
    ]
    assert got == sorted(expected)
    assert sum(t.weight for t in part.tasks) == len(part.subgraphs)


def test_packed_weights_give_the_same_tasks(resnet18_partition):
    packed = partition(resnet18_partition.graph, winograd=False, blocked=False)
    assert [t.weight for t in packed.tasks] == [t.weight for t in resnet18_partition.tasks]
    convs = [t for t in packed.tasks if t.ops[0] == "conv2d_nchwc"]
    assert len(convs) == 15  # every conv: 64..512 filters are multiples of 16
    assert all(len(t.shapes[1]) == 5 and t.shapes[1][-1] == 16 for t in convs)
    assert [t.flops for t in packed.tasks] == [t.flops for t in resnet18_partition.tasks]


def test_winograd_takes_the_3x3_stride_1_convs_with_enough_tiles(resnet18_partition):
    direct = resnet18_partition.tasks
    part = partition(resnet18_partition.graph)
    # one task more: the conversion after the stem's max pool, which runs blocked
    packed = [t for t in part.tasks if t.ops != ("unblock_channels",)]
    assert len(packed) == len(part.tasks) - 1
    assert [t.weight for t in packed] == [t.weight for t in direct]
    wino = {t.shapes[0][2]: t.shapes[1] for t in part.tasks if t.ops[0] == "conv2d_winograd"}
    # F(4, 3) on 56x56 and 28x28, F(2, 3) on 14x14 (F(4, 3) would leave 16 tiles), 7x7 direct
    assert {k: v[:2] for k, v in wino.items()} == {56: [6, 6], 28: [6, 6], 14: [4, 4]}
    assert all(v[2:] == [c, c] for c, v in zip((64, 128, 256), wino.values()))
    n_wino = sum(t.ops[0] == "conv2d_winograd" for t in part.tasks)
    assert n_wino == 6
    # the rest direct: the 7x7 stage's on blocked data (docs/networks.md#blocked-layout)
    direct_convs = [t for t in part.tasks if t.ops[0] in ("conv2d_nchwc", "conv2d_blocked")]
    assert len(direct_convs) == 15 - n_wino
    for t, d in zip(packed, direct, strict=True):
        if t.ops[0] == "conv2d_winograd":
            assert d.flops / 4 < t.flops < d.flops / 1.5


def test_resnet18_flops(resnet18_partition):
    total = sum(t.weight * t.flops for t in resnet18_partition.tasks)
    assert 3.6e9 < total < 3.7e9  # ResNet-18 at 224: about 1.8 GMACs


def test_every_subgraph_has_one_anchor_at_most(resnet18_partition):
    from models.partition import ANCHOR_OPS

    for sub in resnet18_partition.subgraphs:
        assert sum(op in ANCHOR_OPS for op in sub.ops) <= 1


def test_encoder_fusion():
    part = partition(import_model(zoo.build("bert_encoder")))
    ops = {t.ops: t.weight for t in part.tasks}
    heads = ("reshape", "transpose")
    assert ops[(*heads, *heads, "transpose", "batch_matmul", "divide")] == 2  # Q @ K^T / sqrt(d)
    assert ops[(*heads, "batch_matmul")] == 2  # probs @ V, V's head split inlined
    # the products by constant weights read them in panels (models/layout.py)
    assert ops[("matmul_panels", "add")] == 6  # Q, K, V projections with bias
    gelu = ("divide", "erf", "add", "multiply", "multiply")
    assert ops[("matmul_panels", "add", *gelu)] == 2  # the GELU diamond is the epilogue
    assert ops[("transpose", "reshape", "matmul_panels", "add", "add")] == 2  # + residual
    assert ops[("layer_norm",)] == 4 and ops[("softmax",)] == 2
    assert sum(t.weight for t in part.tasks) == len(part.subgraphs)


def test_squeezenet_concat_is_its_own_subgraph():
    part = partition(import_model(zoo.build("squeezenet")))
    concats = [s for s in part.subgraphs if "concat" in s.ops]
    assert len(concats) == 8 and all(s.ops == ("concat",) for s in concats)
