"""Reading ONNX node attributes and optional inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from models.onnx_import.context import ImportContext


def node_attrs(node: onnx.NodeProto) -> dict[str, Any]:
    """Attribute name -> Python value (strings decoded)."""
    out: dict[str, Any] = {}
    for a in node.attribute:
        value = onnx.helper.get_attribute_value(a)
        out[a.name] = value.decode() if isinstance(value, bytes) else value
    return out


def input_name(node: onnx.NodeProto, k: int) -> str | None:
    """The k-th input's name, None when absent or left empty (an omitted optional input)."""
    return node.input[k] if k < len(node.input) and node.input[k] else None


def const_input(ctx: ImportContext, node: onnx.NodeProto, k: int, what: str) -> np.ndarray | None:
    """The k-th input as a constant array (None when absent); an error if it is computed."""
    name = input_name(node, k)
    if name is None:
        return None
    value = ctx.const(name)
    if value is None:
        raise ctx.fail(f"{what} (input {k}) must be a constant")
    return value


def int_list(value: object) -> list[int]:
    return [int(v) for v in np.asarray(value).reshape(-1)]


def axes_arg(
    ctx: ImportContext, node: onnx.NodeProto, attrs: dict[str, object], k: int
) -> list[int] | None:
    """Axes from the attribute (older opsets) or from input k (newer ones); None when absent."""
    if "axes" in attrs:
        return int_list(attrs["axes"])
    value = const_input(ctx, node, k, "axes")
    return None if value is None else int_list(value)
