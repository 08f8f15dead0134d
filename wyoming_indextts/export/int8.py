"""int8 copies of the graphs that dominate synthesis time (export `--int8`).

ONNX Runtime's dynamic quantisation, per output channel, MatMul weights only: activations
are quantised per call and attention stays float. On x86 with VNNI or AMX the int8 GEMM runs
several times faster than float, and the weights take a quarter of the memory. Conv is left
alone on purpose: ORT's int8 Conv is slower than its float Conv, which is why the exporter
writes the diffusion wavenet's convolutions as MatMuls (`acoustic._SConvAsMatMul`).
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path


def quantize_matmul_weights(source: Path, target: Path) -> Path:
    """Write `target`: `source` with its constant MatMul weights in int8."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    quiet = _DropRecords()  # the quantizer's advice to run its pre-processing goes to the root logger
    root.addFilter(quiet)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(
                os.fspath(source),
                os.fspath(target),
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul"],
                use_external_data_format=Path(os.fspath(source) + ".data").exists(),
            )
    finally:
        root.removeFilter(quiet)
    return target


class _DropRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR
