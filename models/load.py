"""A model argument (a path or `zoo:NAME`) to an ONNX ModelProto or an imported Graph."""

from __future__ import annotations

import onnx

from models import zoo
from models.errors import ModelError
from models.graph import Graph
from models.onnx_import import import_model
from models.onnx_import.loader import check_size, read_model

Shapes = dict[str, tuple[int, ...]]


def load_proto(spec: str) -> onnx.ModelProto:
    return zoo.build(spec) if zoo.is_zoo(spec) else read_model(spec)


def load_graph(spec: str, input_shapes: Shapes | None = None) -> Graph:
    return import_model(load_proto(spec), input_shapes=input_shapes, label=spec)


def parse_input_shapes(items: list[str]) -> Shapes:
    """`["x=1,3,224,224", "ids=1,128", ...]` -> {"x": (1, 3, 224, 224), "ids": (1, 128)}
    (one binding per input, token inputs included; an item may hold several, separated
    by spaces: `--input-shape "ids=1,128 mask=1,128"`; the importer binds the symbolic
    dims they name in every input); a ModelError for a bad or repeated binding or for
    a shape over the size limit (compiler/settings.py)."""
    out: Shapes = {}
    for item in (binding for text in items for binding in text.split()):
        name, sep, dims = item.partition("=")
        try:
            shape = tuple(int(d) for d in dims.split(","))
        except ValueError:
            shape = ()
        if not sep or not name or not shape or min(shape) <= 0:
            raise ModelError(f"--input-shape {item!r}: expected NAME=D1,D2,... (positive ints)")
        check_size(f"--input-shape {item!r}", f"input {name!r}", shape)
        if name in out:
            raise ModelError(f"--input-shape {item!r}: input {name!r} is given twice")
        out[name] = shape
    return out
