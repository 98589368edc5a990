"""sketchtune as an ONNX backend (onnx.backend.base.Backend), so onnx's own backend tests
run on it:

    import onnx.backend.test
    from models.onnx_backend import SketchtuneBackend

    tests = onnx.backend.test.BackendTest(SketchtuneBackend, __name__)
    tests.include(r"^test_relu_cpu$")
    globals().update(tests.test_cases)

or directly: `SketchtuneBackend.run_model(model, [x])`. A model is imported,
partitioned and compiled with default schedules (models/network.py) on its first run.

sketchtune compiles static programs, where the node tests feed some arguments that
real models hold as constants (shapes, axes, pads, Clip bounds, BatchNorm statistics)
as graph inputs. The first run binds those inputs to its values as constants: an
input is bound when some node needs it constant (`CONSTANT_SLOTS`), directly or
through nodes the importer folds, or when it is fed a zero-size array. Every other input stays an input of the compiled
network, whatever its dtype (float32, int64, int32, bool, int8, uint8).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.backend.base import Backend, BackendRep

from models.network import Network, compile_network
from models.onnx_import import import_model

# op type -> input positions the importer takes as constants only (None: every input)
CONSTANT_SLOTS: dict[str, tuple[int, ...] | None] = {
    "Reshape": (1,), "Expand": (1,), "Tile": (1,), "Squeeze": (1,), "Unsqueeze": (1,),
    "Slice": (1, 2, 3, 4), "Split": (1,), "Pad": (1, 2, 3), "ConstantOfShape": (0,),
    "Range": None, "Clip": (1, 2), "BatchNormalization": (1, 2, 3, 4), "TopK": (1,),
    "ReduceSum": (1,), "ReduceMean": (1,), "ReduceMax": (1,), "ReduceMin": (1,),
    "ReduceProd": (1,), "ReduceL1": (1,), "ReduceL2": (1,), "ReduceLogSum": (1,),
    "ReduceLogSumExp": (1,), "ReduceSumSquare": (1,), "Resize": (1, 2, 3), "Upsample": (1,),
    "OneHot": (1, 2), "CumSum": (1,), "Trilu": (1,), "Dropout": (1, 2), "CenterCropPad": (1,),
    "ConvTranspose": (1,), "RNN": (1, 2, 3, 4), "GRU": (1, 2, 3, 4), "LSTM": (1, 2, 3, 4, 7),
}  # fmt: skip
STATIC = {"Shape", "Size"}  # read only their input's static shape


class SketchtuneRep(BackendRep):
    """A model compiled on its first run, for that run's input shapes (inputs named by
    CONSTANT_SLOTS bound to its values); later runs reuse the network."""

    def __init__(self, model: onnx.ModelProto):
        self.model = model
        initializers = {t.name for t in model.graph.initializer}
        self.inputs = [i.name for i in model.graph.input if i.name not in initializers]
        self.net: Network | None = None

    def run(self, inputs: object, **kwargs: object) -> tuple[np.ndarray, ...]:
        items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if isinstance(inputs, dict):
            arrays = {k: np.asarray(v) for k, v in inputs.items()}
        else:
            arrays = {name: np.asarray(a) for name, a in zip(self.inputs, items)}
        if self.net is None:
            bound = bind_constant_inputs(self.model, arrays)
            shapes = {i.name: arrays[i.name].shape for i in bound.graph.input if i.name in arrays}
            self.net = compile_network(import_model(bound, input_shapes=shapes))
        outputs = self.net.run({v.name: arrays[v.name] for v in self.net.graph.inputs})
        return tuple(outputs[v.name] for v in self.net.graph.outputs)


def constant_inputs(model: onnx.ModelProto) -> set[str]:
    """Values some node needs constant: in a CONSTANT_SLOTS position, or an input of a
    node whose output is needed constant (that node is then folded)."""
    needed: set[str] = set()
    for node in reversed(model.graph.node):
        if any(o in needed for o in node.output) and node.op_type not in STATIC:
            needed.update(i for i in node.input if i)
        slots = CONSTANT_SLOTS.get(node.op_type, ())
        positions = range(len(node.input)) if slots is None else slots
        needed.update(node.input[k] for k in positions if k < len(node.input) and node.input[k])
    return needed


def bind_constant_inputs(model: onnx.ModelProto, arrays: dict[str, np.ndarray]) -> onnx.ModelProto:
    """A copy of `model` whose inputs in `constant_inputs`, and those fed zero-size arrays
    (no data, only a shape: sketchtune has no zero-size buffers), are initializers of
    `arrays`."""
    bound = onnx.ModelProto()
    bound.CopyFrom(model)
    needed = constant_inputs(model)
    keep = []
    for inp in bound.graph.input:
        empty = inp.name in arrays and arrays[inp.name].size == 0  # a shape and dtype only
        if (inp.name in needed or empty) and inp.name in arrays:
            bound.graph.initializer.append(numpy_helper.from_array(arrays[inp.name], inp.name))
        else:
            keep.append(inp)
    del bound.graph.input[:]
    bound.graph.input.extend(keep)
    return bound


class SketchtuneBackend(Backend):
    """onnx.backend.base.Backend: prepare(model) -> a rep whose run(inputs) compiles once."""

    @classmethod
    def prepare(
        cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: object
    ) -> SketchtuneRep:
        super().prepare(model, device, **kwargs)
        return SketchtuneRep(model)

    @classmethod
    def run_model(
        cls,
        model: onnx.ModelProto,
        inputs: Sequence[np.ndarray],
        device: str = "CPU",
        **kwargs: object,
    ) -> tuple[np.ndarray, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device == "CPU"


prepare = SketchtuneBackend.prepare
run_model = SketchtuneBackend.run_model
supports_device = SketchtuneBackend.supports_device
