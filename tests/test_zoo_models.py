"""Every zoo model compiled with default schedules matches onnxruntime on seeded input.

The default run uses smaller inputs for the CNNs (the same layers, lower
resolution) to keep compile and run times short; `-m slow` runs every model at
its full size.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from models import zoo
from models.compare import max_errors, ort_session, seeded_inputs
from models.network import compile_network
from models.onnx_import import import_model
from models.zoo.cnn import mobilenet_v2, resnet18, squeezenet
from models.zoo.transformer import bert_encoder

ENCODER_RTOL = 1e-3
RTOL = 1e-4


def check_against_onnxruntime(model: onnx.ModelProto, rtol: float) -> None:
    net = compile_network(import_model(model))
    inputs = seeded_inputs(net, seed=1)
    ours = net.run(inputs)
    session = ort_session(model, threads=2)
    names = [o.name for o in session.get_outputs()]
    theirs = dict(zip(names, session.run(names, inputs)))
    assert set(ours) == set(theirs)
    _, rel = max_errors(ours, theirs)
    assert rel < rtol, rel
    again = net.run(inputs)  # buffers are reused: a second run gives the same outputs
    for name in ours:
        np.testing.assert_array_equal(ours[name], again[name])


SMALL = {
    "mlp": (lambda: zoo.build("mlp"), RTOL),
    "resnet18_64": (lambda: resnet18(resolution=64, classes=100), RTOL),
    "mobilenet_v2_64": (lambda: mobilenet_v2(resolution=64, classes=100), RTOL),
    "squeezenet_64": (lambda: squeezenet(resolution=64, classes=100), RTOL),
    "bert_encoder": (bert_encoder, ENCODER_RTOL),
}


@pytest.mark.parametrize("name", SMALL)
def test_zoo_model_matches_onnxruntime(name):
    make, rtol = SMALL[name]
    check_against_onnxruntime(make(), rtol)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in zoo.ZOO if n not in ("mlp", "bert_encoder")])
def test_full_size_zoo_model_matches_onnxruntime(name):
    check_against_onnxruntime(zoo.build(name), RTOL)
