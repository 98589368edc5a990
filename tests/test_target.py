"""compiler.target: the host target is llvmlite's host; the ISA facts (lanes, registers,
FMA, level) follow the feature string; cache sizes and cores come from the OS; the
record string `describe()` does not change."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import llvmlite.binding as llvm
import pytest

from compiler import target as target_mod
from compiler.errors import UserError
from compiler.target import (
    CacheSizes,
    Target,
    host_caches,
    host_cores,
    host_summary,
    host_target,
    parse_size,
    restrict_isa,
    vector_lanes,
)

TRIPLE = "x86_64-unknown-linux-gnu"
AVX512 = Target(
    "znver4",
    "+avx,+avx2,+fma,+avx512f,+avx512bw,+avx512dq,+avx512vl,+avx512vnni,+avx512bf16,"
    "-avx512fp16,-amx-tile,+sse4.2",
    TRIPLE,
)
AVX2 = Target("znver3", "+avx,+avx2,+fma,-avx512f,+sse4.2", TRIPLE)
SSE = Target("x86-64", "+sse,+sse2,-avx,-avx2,-fma", TRIPLE)


def test_the_host_target_is_llvmlites_host():
    t = host_target()
    assert t.cpu == llvm.get_host_cpu_name()
    assert t.features == llvm.get_host_cpu_features().flatten()
    assert t.triple == llvm.get_process_triple()
    assert host_target() is t  # cached


def test_codegen_uses_the_same_target_class():
    from compiler import codegen

    assert codegen.Target is Target and codegen.host_target is host_target


@pytest.mark.parametrize(
    ("target", "isa", "lanes", "registers", "fma"),
    [(AVX512, "avx512", 16, 32, True), (AVX2, "avx2", 8, 16, True), (SSE, "sse", 4, 16, False)],
    ids=["avx512", "avx2", "sse"],
)
def test_isa_facts_follow_the_features(target, isa, lanes, registers, fma):
    assert target.isa == isa
    assert target.vector_lanes == vector_lanes(target) == lanes
    assert target.vector_bytes == 4 * lanes
    assert target.vector_registers == registers
    assert target.has_fma is fma


def test_a_disabled_feature_does_not_count():
    assert Target("cpu", "-avx512f,+avx", TRIPLE).vector_lanes == 8
    assert Target("cpu", "-avx512f,-avx", TRIPLE).vector_lanes == 4
    assert Target("cpu", "+avx", TRIPLE).isa == "avx"


def test_describe_is_unchanged():
    # records store this string: it must stay equal for the same Target
    assert AVX512.describe() == (
        "llvm -mcpu=znver4 -mattr=+avx2,+fma,+avx512f,+avx512bw,+avx512dq,+avx512vl,"
        "+avx512vnni,+avx512bf16"
    )
    assert AVX2.describe() == "llvm -mcpu=znver3 -mattr=+avx2,+fma"
    assert SSE.describe() == "llvm -mcpu=x86-64"


def test_summaries():
    assert AVX512.summary() == "znver4 avx512 16 lanes x 32 registers"
    assert SSE.summary() == "x86-64 sse 4 lanes x 16 registers (no FMA)"
    line = host_summary()
    assert line.startswith(host_target().summary() + ", L2 ")
    assert line.endswith(f", {host_cores()} core" + ("s" if host_cores() != 1 else ""))


def test_cache_sizes_are_positive_and_ordered():
    c = host_caches()
    assert c.l1d > 0 and c.l2 > 0
    assert c.l1d <= c.l2
    if c.l3 is not None:
        assert 0 < c.l2 <= c.l3


def _cache_dir(root, index, level, kind, size):
    d = root / f"index{index}"
    d.mkdir()
    (d / "level").write_text(f"{level}\n")
    (d / "type").write_text(f"{kind}\n")
    (d / "size").write_text(f"{size}\n")


def test_cache_sizes_read_from_sysfs(tmp_path, monkeypatch):
    _cache_dir(tmp_path, 0, 1, "Data", "48K")
    _cache_dir(tmp_path, 1, 1, "Instruction", "32K")
    _cache_dir(tmp_path, 2, 2, "Unified", "2048K")
    _cache_dir(tmp_path, 3, 3, "Unified", "32M")
    monkeypatch.setattr(target_mod, "_CACHE_SYSFS", tmp_path)
    host_caches.cache_clear()
    try:
        assert host_caches() == CacheSizes(48 << 10, 2 << 20, 32 << 20)
    finally:
        host_caches.cache_clear()


def test_cache_sizes_fall_back_when_unreadable(tmp_path, monkeypatch):
    monkeypatch.setattr(target_mod, "_CACHE_SYSFS", tmp_path / "missing")
    host_caches.cache_clear()
    try:
        c = host_caches()
    finally:
        host_caches.cache_clear()
    defaults = (target_mod.DEFAULT_L1D_BYTES, target_mod.DEFAULT_L2_BYTES)
    assert (c.l1d, c.l2, c.l3) == (*defaults, target_mod.DEFAULT_L3_BYTES)


def test_parse_size():
    assert parse_size("32K\n") == 32 << 10
    assert parse_size("1M") == 1 << 20
    assert parse_size("4096") == 4096


def test_cores_are_the_affinity_mask():
    assert host_cores() == len(os.sched_getaffinity(0)) >= 1


def test_restricting_to_avx2_switches_off_every_avx512_feature():
    t = restrict_isa(AVX512, "avx2")
    assert (t.isa, t.vector_lanes, t.vector_registers, t.has_fma) == ("avx2", 8, 16, True)
    assert "avx512" not in t.describe() and "+avx2,+fma" in t.describe()
    assert t.cpu == AVX512.cpu and t.triple == AVX512.triple
    assert "-amx-tile" in t.features.split(",")  # already off: stays off
    assert restrict_isa(AVX2, "avx2") == AVX2
    assert restrict_isa(AVX512, "native") == restrict_isa(AVX512, "") == AVX512


def test_a_bad_isa_or_one_the_cpu_lacks_is_refused():
    with pytest.raises(UserError, match=r"SKETCHTUNE_ISA='avx3': give avx2 or native"):
        restrict_isa(AVX512, "avx3")
    with pytest.raises(UserError, match=r"SKETCHTUNE_ISA=avx2: this CPU \(x86-64\) has no AVX2"):
        restrict_isa(SSE, "avx2")


AVX2_NETWORK = """
    import numpy as np
    from compiler.codegen.build import assembly
    from compiler.lower.lower import lower
    from compiler.schedule.default import default_schedule
    from compiler.target import host_target
    from models.compare import max_errors, ort_session, seeded_inputs
    from models.load import load_graph
    from models.network import compile_network
    from models.zoo import build

    assert host_target().isa == "avx2", host_target().describe()
    net = compile_network(load_graph("zoo:mobilenet_v2"), threads=1)
    model = build("mobilenet_v2")
    inputs = seeded_inputs(net)
    session = ort_session(model, threads=1)
    names = [o.name for o in session.get_outputs()]
    theirs = dict(zip(names, session.run(names, inputs)))
    print("rel_err", max_errors(net.run(inputs), theirs)[1])
    text = "".join(assembly(lower(default_schedule(t.dag))) for t in net.tasks[:6])
    print("zmm", text.count("zmm"), "ymm", text.count("ymm"))
"""


def test_a_network_compiled_for_avx2_matches_onnxruntime_without_avx512(tmp_path):
    if "+avx2" not in llvm.get_host_cpu_features().flatten().split(","):
        pytest.skip("this CPU has no AVX2")
    env = {**os.environ, "SKETCHTUNE_ISA": "avx2", "SKETCHTUNE_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(AVX2_NETWORK)],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    words = done.stdout.split()
    rel_err = float(words[words.index("rel_err") + 1])
    assert rel_err < 1e-4
    assert int(words[words.index("zmm") + 1]) == 0
    assert int(words[words.index("ymm") + 1]) > 0
