"""Reference implementations the benchmarks time ours against (one thread)."""

from __future__ import annotations

import numpy as np


def ort_conv_call(v: list[int], rng: np.random.Generator):
    """A call running onnxruntime's Conv (N,C,H,W,F,KH,KW,STRIDE,PAD `v`) on one thread."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    n, c, h, w, f, kh, kw, stride, pad = v
    weight = (rng.standard_normal((f, c, kh, kw)) * 0.05).astype(np.float32)
    ho, wo = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], strides=[stride] * 2, pads=[pad] * 4)],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, c, h, w])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, f, ho, wo])],
        [onnx.numpy_helper.from_array(weight, "w")],
    )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    return lambda: sess.run(None, {"x": x})
