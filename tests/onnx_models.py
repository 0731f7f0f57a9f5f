"""Small ONNX generators built in the tests, with outputs that can be asserted exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from filmcolor.model.contract import ModelContract


def make_affine_model(
    path: Path,
    cb: tuple[float, float] = (0.0, 0.25),
    cr: tuple[float, float] = (0.0, 0.5),
    contract: ModelContract | None = None,
    input_name: str = "luma",
    output_name: str = "chroma",
    out_channels: int = 2,
    with_contract: bool = True,
) -> Path:
    """A 1x1 convolution: Cb = a*luma + b, Cr = c*luma + d (defaults: constant chroma)."""
    weight = np.zeros((out_channels, 1, 1, 1), np.float32)
    bias = np.zeros((out_channels,), np.float32)
    for i, (scale, shift) in enumerate([cb, cr][:out_channels]):
        weight[i, 0, 0, 0] = scale
        bias[i] = shift
    node = helper.make_node("Conv", [input_name, "w", "b"], [output_name], kernel_shape=[1, 1])
    graph = helper.make_graph(
        [node],
        "affine_chroma",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [
            helper.make_tensor_value_info(
                output_name, TensorProto.FLOAT, ["N", out_channels, "H", "W"]
            )
        ],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if with_contract:
        text = (contract or ModelContract(input_name=input_name, output_name=output_name)).to_json()
        helper.set_model_props(model, {"filmcolor": text})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
