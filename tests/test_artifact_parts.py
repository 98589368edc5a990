"""The parts of an artifact: the byte-offset memory plan (the executor's plan, laid out
in one arena), the LLVM -> /proc/cpuinfo feature names, the generated C, and two
artifacts side by side in one process."""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import save, single_op_model

from compiler.target import Target, host_target
from deploy import Session
from deploy.cpu import cpu_flags
from models.artifact import export_artifact
from models.artifact.features import required_cpu_flags
from models.artifact.link import c_string
from models.load import load_graph
from models.memory_plan import allocate, plan_offsets
from models.partition import partition


@pytest.fixture(scope="module")
def bert():
    part = partition(load_graph("zoo:bert_encoder"))
    return part, plan_offsets(part.graph, part.subgraphs)


def test_every_offset_is_aligned_and_inside_its_region(bert):
    part, plan = bert
    for name, place in plan.placements.items():
        assert place.offset_bytes % 64 == 0, name
        end = place.offset_bytes + place.nbytes
        if place.region == "arena":
            assert end <= plan.arena_bytes
        elif place.region == "weights":
            assert end <= plan.weights_bytes and name in part.graph.constants
        else:
            values = part.graph.inputs if place.region == "input" else part.graph.outputs
            assert values[place.index].name == name
    assert set(plan.constants) == {n for s in part.subgraphs for n in s.params} & set(
        part.graph.constants
    )


def test_values_share_bytes_exactly_where_the_executor_shares_memory(bert):
    part, plan = bert
    buffers = allocate(part.graph, part.subgraphs)
    arena = [n for n, p in plan.placements.items() if p.region == "arena"]
    assert len(arena) > 4
    shared = 0
    for a in arena:
        for b in arena:
            pa, pb = plan.placements[a], plan.placements[b]
            overlap = pa.offset_bytes < pb.offset_bytes + pb.nbytes and (
                pb.offset_bytes < pa.offset_bytes + pa.nbytes
            )
            assert overlap == np.shares_memory(buffers[a], buffers[b]), (a, b)
            shared += a != b and overlap
    assert shared > 0  # the plan does reuse memory
    assert plan.arena_bytes < sum(plan.placements[n].nbytes for n in arena)


def test_llvm_features_map_to_cpuinfo_flags():
    target = Target("x", "+avx2,+fma,+shstk,+sse4.1,+avx512vnni,-avx512f", "x86_64")
    assert required_cpu_flags(target) == {"avx2": "avx2", "avx512vnni": "avx512_vnni",
                                          "fma": "fma", "sse4.1": "sse4_1"}  # fmt: skip
    assert set(required_cpu_flags(host_target()).values()) <= cpu_flags()


def test_c_strings_escape_everything_but_plain_ascii():
    assert c_string('a"b\\c\né?') == '"a\\042b\\134c\\012\\303\\251\\077"'


def test_two_artifacts_run_side_by_side(tmp_path):
    relu = save(single_op_model("Relu", [2, 8]), tmp_path / "relu.onnx")
    export_artifact(relu, None, tmp_path / "relu")
    export_artifact("zoo:mlp", None, tmp_path / "mlp")
    first, second = Session(tmp_path / "relu"), Session(tmp_path / "mlp")
    x = np.linspace(-1, 1, 16, dtype=np.float32).reshape(2, 8)
    (y,) = first.run(None, {"x": x})
    assert np.array_equal(y, np.maximum(x, 0))
    (p,) = second.run(None, {"input": np.ones((1, 784), np.float32)})
    assert p.shape == (1, 10) and abs(float(p.sum()) - 1) < 1e-5
