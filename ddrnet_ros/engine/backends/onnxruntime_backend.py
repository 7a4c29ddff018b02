"""ONNX Runtime inference on the CPU: the BN-folded network exported once, in memory.

One session with free height and width serves every frame size (no re-export when a camera
changes resolution), with every graph optimisation enabled and ``num_threads`` intra-op threads
(0: ONNX Runtime's default, one per core).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from ..onnx_export import INPUT_NAME, export_onnx

log = logging.getLogger(__name__)


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise RuntimeError("backend 'onnxruntime' needs the onnxruntime package: pip install onnxruntime") from None
    return onnxruntime


class OnnxRuntimeModel:
    """Normalised (1, 3, H, W) float32 frame -> (1, C, H/8, W/8) float32 logits, via ONNX Runtime."""

    name = "onnxruntime"

    def __init__(self, model: nn.Module, num_threads: int = 0) -> None:
        ort = _import_onnxruntime()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # warnings about unused initialisers are noise here
        if num_threads > 0:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(export_onnx(model, 64, 128, dynamic=True), options,
                                            providers=["CPUExecutionProvider"])
        self.num_threads = num_threads

    def infer(self, frame: torch.Tensor) -> torch.Tensor:
        x = frame.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {INPUT_NAME: x})[0])
