"""The CPU features an artifact's code needs, named as Linux's /proc/cpuinfo names them.

Code is compiled for the host's LLVM CPU with all its features, so any instruction
set extension LLVM has switched on may appear in it. The ones that add instructions
generated code can contain (SIMD, FMA, bit manipulation, ...) are mapped here to
their /proc/cpuinfo flag; a CPU without one of them refuses the artifact at load.
LLVM features of other kinds (`64bit`, `cx8`, `shstk`, `xsave`, ...: system state,
or always present) are recorded in the manifest but not checked: some of them are
hidden from guests (`shstk` is on in LLVM's host features here and absent from the
flags), and a check on them would refuse CPUs that run the code fine.
"""

from __future__ import annotations

from compiler.target import Target

# LLVM feature -> /proc/cpuinfo flag (arch/x86/include/asm/cpufeatures.h names)
CPUINFO_FLAGS: dict[str, str] = {
    "sse": "sse",
    "sse2": "sse2",
    "sse3": "pni",
    "ssse3": "ssse3",
    "sse4.1": "sse4_1",
    "sse4.2": "sse4_2",
    "sse4a": "sse4a",
    "crc32": "sse4_2",
    "popcnt": "popcnt",
    "lzcnt": "abm",
    "bmi": "bmi1",
    "bmi2": "bmi2",
    "movbe": "movbe",
    "cx16": "cx16",
    "adx": "adx",
    "aes": "aes",
    "pclmul": "pclmulqdq",
    "sha": "sha_ni",
    "avx": "avx",
    "avx2": "avx2",
    "fma": "fma",
    "fma4": "fma4",
    "f16c": "f16c",
    "xop": "xop",
    "gfni": "gfni",
    "vaes": "vaes",
    "vpclmulqdq": "vpclmulqdq",
    "avxvnni": "avx_vnni",
    "avx512f": "avx512f",
    "avx512cd": "avx512cd",
    "avx512bw": "avx512bw",
    "avx512dq": "avx512dq",
    "avx512vl": "avx512vl",
    "avx512ifma": "avx512ifma",
    "avx512vbmi": "avx512vbmi",
    "avx512vbmi2": "avx512_vbmi2",
    "avx512vnni": "avx512_vnni",
    "avx512bitalg": "avx512_bitalg",
    "avx512vpopcntdq": "avx512_vpopcntdq",
    "avx512bf16": "avx512_bf16",
    "avx512fp16": "avx512_fp16",
    "avx512vp2intersect": "avx512_vp2intersect",
    "amx-tile": "amx_tile",
    "amx-bf16": "amx_bf16",
    "amx-int8": "amx_int8",
}


def required_cpu_flags(target: Target) -> dict[str, str]:
    """{LLVM feature: /proc/cpuinfo flag} of the checked features `target` enables."""
    enabled = target.enabled_features
    return {f: flag for f, flag in sorted(CPUINFO_FLAGS.items()) if f in enabled}
