"""Golden snapshots of emitted (unoptimized) LLVM IR for two small kernels.

They catch unintended changes to code generation in review. After an intended
change, regenerate with `python tests/test_codegen_golden.py` and read the diff.
"""

import sys

from compiler.codegen import Target, llvm_ir
from compiler.lower.loop_ir import Buffer, For, ForKind, Load, PrimFunc, Store
from compiler.te.constructors import max_expr, select
from compiler.te.expr import Var

BASELINE = Target("x86-64", "", "x86_64-unknown-linux-gnu")  # SSE2: 4-lane chunks


def relu_affine() -> PrimFunc:
    """Y = max(2 X + 1, 0), a serial row loop around an 8-lane SIMD loop."""
    X, Y = Buffer("X", (2, 8)), Buffer("Y", (2, 8))
    i, j = Var("i"), Var("j")
    value = max_expr(Load(X, i * 8 + j) * 2.0 + 1.0, 0.0)
    return PrimFunc(
        "relu_affine",
        (X, Y),
        For(i, 2, ForKind.SERIAL, For(j, 8, ForKind.VECTORIZED, Store(Y, i * 8 + j, value))),
    )


def pad_par() -> PrimFunc:
    """A parallel loop (outlined) around a padded read (branch + phi)."""
    A, Y = Buffer("A", (10,)), Buffer("Y", (2, 8))
    k, j = Var("k"), Var("j")
    value = select(j >= 1, Load(A, k + j - 1), 0.0)
    return PrimFunc(
        "pad_par",
        (A, Y),
        For(k, 2, ForKind.PARALLEL, For(j, 8, ForKind.SERIAL, Store(Y, k * 8 + j, value))),
    )


CASES = {"relu_affine": relu_affine, "pad_par": pad_par}

GOLDEN = {
    "relu_affine": '; ModuleID = "relu_affine"\ntarget triple = "x86_64-unknown-linux-gnu"\ntarget datalayout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128"\n\ndefine void @"relu_affine"(ptr captures(none) noalias align 64 dereferenceable(64) %"X", ptr captures(none) noalias align 64 dereferenceable(64) %"Y") nounwind\n{\nentry:\n  br label %"body"\nbody:\n  br label %"i.loop"\ni.loop:\n  %"i" = phi  i64 [0, %"body"], [%".27", %"i.loop"]\n  %".5" = mul i64 %"i", 8\n  %".6" = getelementptr inbounds float, ptr %"X", i64 %".5"\n  %".7" = load <4 x float>, ptr %".6", align 32\n  %".8" = fmul contract <4 x float> %".7", <float 0x4000000000000000, float 0x4000000000000000, float 0x4000000000000000, float 0x4000000000000000>\n  %".9" = fadd contract <4 x float> %".8", <float 0x3ff0000000000000, float 0x3ff0000000000000, float 0x3ff0000000000000, float 0x3ff0000000000000>\n  %".10" = fcmp ogt <4 x float> %".9", <float              0x0, float              0x0, float              0x0, float              0x0>\n  %".11" = select  <4 x i1> %".10", <4 x float> %".9", <4 x float> <float              0x0, float              0x0, float              0x0, float              0x0>\n  %".12" = mul i64 %"i", 8\n  %".13" = getelementptr inbounds float, ptr %"Y", i64 %".12"\n  store <4 x float> %".11", ptr %".13", align 32\n  %".15" = mul i64 %"i", 8\n  %".16" = add i64 %".15", 4\n  %".17" = getelementptr inbounds float, ptr %"X", i64 %".16"\n  %".18" = load <4 x float>, ptr %".17", align 16\n  %".19" = fmul contract <4 x float> %".18", <float 0x4000000000000000, float 0x4000000000000000, float 0x4000000000000000, float 0x4000000000000000>\n  %".20" = fadd contract <4 x float> %".19", <float 0x3ff0000000000000, float 0x3ff0000000000000, float 0x3ff0000000000000, float 0x3ff0000000000000>\n  %".21" = fcmp ogt <4 x float> %".20", <float              0x0, float              0x0, float              0x0, float              0x0>\n  %".22" = select  <4 x i1> %".21", <4 x float> %".20", <4 x float> <float              0x0, float              0x0, float              0x0, float              0x0>\n  %".23" = mul i64 %"i", 8\n  %".24" = add i64 %".23", 4\n  %".25" = getelementptr inbounds float, ptr %"Y", i64 %".24"\n  store <4 x float> %".22", ptr %".25", align 16\n  %".27" = add nuw nsw i64 %"i", 1\n  %".28" = icmp slt i64 %".27", 2\n  br i1 %".28", label %"i.loop", label %"i.exit"\ni.exit:\n  ret void\n}\n',
    "pad_par": '; ModuleID = "pad_par"\ntarget triple = "x86_64-unknown-linux-gnu"\ntarget datalayout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128"\n\ndefine void @"pad_par"(ptr captures(none) noalias align 64 dereferenceable(40) %"A", ptr captures(none) noalias align 64 dereferenceable(64) %"Y") nounwind\n{\nentry:\n  %"closure" = alloca {ptr, ptr, i64}\n  br label %"body"\nbody:\n  %".4" = getelementptr inbounds {ptr, ptr, i64}, ptr %"closure", i32 0, i32 0\n  store ptr %"Y", ptr %".4"\n  %".6" = getelementptr inbounds {ptr, ptr, i64}, ptr %"closure", i32 0, i32 1\n  store ptr %"A", ptr %".6"\n  call void @"st_parallel_for"(void (ptr, i64, i64)* @"pad_par_par0", ptr %"closure", i64 2)\n  ret void\n}\n\ndefine internal void @"pad_par_par0_body"(ptr noalias align 64 dereferenceable(64) %"Y", ptr noalias align 64 dereferenceable(40) %"A", i64 %".3", i64 %".4") nounwind\n{\nentry:\n  br label %"body"\nbody:\n  %".6" = icmp slt i64 %".3", %".4"\n  br i1 %".6", label %"k.loop", label %"k.exit"\nk.loop:\n  %"k" = phi  i64 [%".3", %"body"], [%".25", %"j.exit"]\n  br label %"j.loop"\nk.exit:\n  ret void\nj.loop:\n  %"j" = phi  i64 [0, %"k.loop"], [%".22", %"sel.end"]\n  %".9" = icmp sge i64 %"j", 1\n  br i1 %".9", label %"sel.then", label %"sel.else"\nsel.then:\n  %".11" = add i64 %"k", %"j"\n  %".12" = sub i64 %".11", 1\n  %".13" = getelementptr inbounds float, ptr %"A", i64 %".12"\n  %".14" = load float, ptr %".13", align 4\n  br label %"sel.end"\nsel.else:\n  br label %"sel.end"\nsel.end:\n  %".17" = phi  float [%".14", %"sel.then"], [             0x0, %"sel.else"]\n  %".18" = mul i64 %"k", 8\n  %".19" = add i64 %".18", %"j"\n  %".20" = getelementptr inbounds float, ptr %"Y", i64 %".19"\n  store float %".17", ptr %".20", align 4\n  %".22" = add nuw nsw i64 %"j", 1\n  %".23" = icmp slt i64 %".22", 8\n  br i1 %".23", label %"j.loop", label %"j.exit"\nj.exit:\n  %".25" = add nuw nsw i64 %"k", 1\n  %".26" = icmp slt i64 %".25", %".4"\n  br i1 %".26", label %"k.loop", label %"k.exit"\n}\n\ndefine internal void @"pad_par_par0"(ptr %".1", i64 %".2", i64 %".3") nounwind\n{\nentry:\n  %".5" = getelementptr inbounds {ptr, ptr, i64}, ptr %".1", i32 0, i32 0\n  %".6" = load ptr, ptr %".5"\n  %".7" = getelementptr inbounds {ptr, ptr, i64}, ptr %".1", i32 0, i32 1\n  %".8" = load ptr, ptr %".7"\n  call void @"pad_par_par0_body"(ptr %".6", ptr %".8", i64 %".2", i64 %".3")\n  ret void\n}\n\ndeclare void @"st_parallel_for"(ptr %".1", ptr %".2", i64 %".3")\n',
}


def test_golden_ir():
    for name, make in CASES.items():
        assert llvm_ir(make(), target=BASELINE) == GOLDEN[name], name


if __name__ == "__main__":
    for name, make in CASES.items():
        sys.stdout.write(f"----- {name}\n{llvm_ir(make(), target=BASELINE)}")
