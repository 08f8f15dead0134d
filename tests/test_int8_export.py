"""The int8 export quantises MatMul weights per output channel.

Closeness to float alone cannot tell per-channel from per-tensor scales on random weights of
one magnitude. Here the weight's columns differ by six orders of magnitude: with one scale for
the whole tensor the small column rounds to zero, with one scale per column it survives."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper

from wyoming_indextts.export.int8 import quantize_matmul_weights

IN, OUT = 16, 4


def matmul_graph(weight: np.ndarray) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "one_matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, IN])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, OUT])],
        initializer=[numpy_helper.from_array(weight, "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_each_output_channel_keeps_its_own_scale(tmp_path):
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((IN, OUT)).astype(np.float32)
    weight[:, 0] *= 1e-3  # a column far smaller than the others
    weight[:, 1] *= 1e3
    source, target = tmp_path / "float.onnx", tmp_path / "int8.onnx"
    onnx.save(matmul_graph(weight), source)

    quantize_matmul_weights(source, target)

    quantized = onnx.load(target)
    scales = [numpy_helper.to_array(t) for t in quantized.graph.initializer if t.name.endswith("_scale") and t.name.startswith("w")]
    assert [s.shape for s in scales] == [(OUT,)], "one weight scale per output channel"

    x = rng.standard_normal((1, IN)).astype(np.float32)
    expected = x @ weight
    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    [got] = session.run(None, {"x": x})
    relative = np.abs(got - expected) / np.abs(expected)
    assert relative.max() < 0.05, relative  # per-tensor scales leave the small column at 0 (error 1.0)
