"""LLVM types of the IR's dtypes, intrinsic declarations and small vector helpers."""

from __future__ import annotations

from collections.abc import Sequence

from llvmlite import ir

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
F32 = ir.FloatType()
F64 = ir.DoubleType()
PTR = ir.PointerType()
VOID = ir.VoidType()

# How a value of each dtype lives in registers: all integers are i64 (index arithmetic).
_VALUE_TYPES: dict[str, ir.Type] = {
    "float32": F32,
    "float64": F64,
    "int32": I64,
    "int64": I64,
    "int8": I64,
    "uint8": I64,
    "int16": I64,
    "uint16": I64,
    "uint32": I64,
    "bool": I1,
}
# How an element of each dtype lives in memory.
_STORAGE_TYPES: dict[str, ir.Type] = {
    "float32": F32,
    "float64": F64,
    "int32": I32,
    "int64": I64,
    "int8": I8,
    "uint8": I8,
    "int16": ir.IntType(16),
    "uint16": ir.IntType(16),
    "uint32": I32,
    "bool": I8,
}
ITEMSIZE = {"float32": 4, "float64": 8, "int32": 4, "int64": 8, "bool": 1}
ITEMSIZE |= {"int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "uint32": 4}


def value_type(dtype: str, lanes: int | None = None) -> ir.Type:
    """The register type of `dtype` (a vector of `lanes` when given)."""
    t = _VALUE_TYPES[dtype]
    return ir.VectorType(t, lanes) if lanes else t


def storage_type(dtype: str, lanes: int | None = None) -> ir.Type:
    """The in-memory element type of `dtype` (a vector of `lanes` when given)."""
    t = _STORAGE_TYPES[dtype]
    return ir.VectorType(t, lanes) if lanes else t


def lanes_of(v: ir.Value | ir.Type) -> int | None:
    """The vector width of a value or type; None for scalars."""
    t = v if isinstance(v, ir.Type) else v.type
    return t.count if isinstance(t, ir.VectorType) else None


def element_type(t: ir.Type) -> ir.Type:
    return t.element if isinstance(t, ir.VectorType) else t


def with_lanes(t: ir.Type, lanes: int | None) -> ir.Type:
    """`t`'s element type widened to `lanes` (or the scalar when lanes is None)."""
    elem = element_type(t)
    return ir.VectorType(elem, lanes) if lanes else elem


def type_suffix(t: ir.Type) -> str:
    """The overload suffix LLVM uses in intrinsic names: f32, v16f32, i64, p0, v8p0."""
    if isinstance(t, ir.VectorType):
        return f"v{t.count}{type_suffix(t.element)}"
    if isinstance(t, ir.FloatType):
        return "f32"
    if isinstance(t, ir.DoubleType):
        return "f64"
    if isinstance(t, ir.IntType):
        return f"i{t.width}"
    if isinstance(t, ir.PointerType):
        return "p0"
    raise TypeError(f"no intrinsic suffix for {t}")


def declare(module: ir.Module, name: str, ret: ir.Type, args: Sequence[ir.Type]) -> ir.Function:
    """The function `name` of the module, declared on first use."""
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    return ir.Function(module, ir.FunctionType(ret, list(args)), name)


def intrinsic(
    module: ir.Module,
    base: str,
    ret: ir.Type,
    args: Sequence[ir.Type],
    overloads: Sequence[ir.Type],
) -> ir.Function:
    """An overloaded LLVM intrinsic such as `llvm.exp.v16f32`."""
    name = ".".join([base, *(type_suffix(t) for t in overloads)])
    return declare(module, name, ret, args)


def splat(builder: ir.IRBuilder, value: ir.Value, lanes: int) -> ir.Value:
    """`value` repeated in every lane of a vector."""
    vt = ir.VectorType(value.type, lanes)
    if isinstance(value, ir.Constant):
        return ir.Constant(vt, [value] * lanes)
    one = builder.insert_element(ir.Constant(vt, ir.Undefined), value, ir.Constant(I32, 0))
    zeros = ir.Constant(ir.VectorType(I32, lanes), [0] * lanes)
    return builder.shuffle_vector(one, ir.Constant(vt, ir.Undefined), zeros)


def ramp(lanes: int, offset: int = 0) -> ir.Constant:
    """The i64 vector <offset, ..., offset+lanes-1>: the value of a vectorized loop variable."""
    return ir.Constant(ir.VectorType(I64, lanes), list(range(offset, offset + lanes)))


def broadcast(builder: ir.IRBuilder, a: ir.Value, b: ir.Value) -> tuple[ir.Value, ir.Value]:
    """Both operands as vectors when either one is (scalars are splatted)."""
    la, lb = lanes_of(a), lanes_of(b)
    if la and not lb:
        return a, splat(builder, b, la)
    if lb and not la:
        return splat(builder, a, lb), b
    return a, b


def to_lanes(builder: ir.IRBuilder, value: ir.Value, lanes: int | None) -> ir.Value:
    """`value` splatted to `lanes` when it is a scalar and lanes is given."""
    if lanes and not lanes_of(value):
        return splat(builder, value, lanes)
    return value


def all_true(lanes: int) -> ir.Constant:
    return ir.Constant(ir.VectorType(I1, lanes), [1] * lanes)


def vector_gep(builder: ir.IRBuilder, elem: ir.Type, base: ir.Value, index: ir.Value) -> ir.Value:
    """`getelementptr elem, ptr base, <L x i64> index`: a vector of element pointers."""
    gep = builder.gep(base, [index], inbounds=True, source_etype=elem)
    gep.type = ir.VectorType(PTR, lanes_of(index))  # llvmlite types a GEP by its base only
    return gep


def stack_slot(entry: ir.IRBuilder, ty: ir.Type, name: str = "", align: int = 0) -> ir.Value:
    """An alloca of `ty` typed as an opaque `ptr` (llvmlite types it as `ty*`)."""
    slot = entry.alloca(ty, name=name)
    if align:
        slot.align = align
    slot.type = PTR
    return slot
