"""OpenVINO inference on the CPU (optional: ``pip install openvino``).

The network goes through the same in-memory ONNX export as the ONNX Runtime backend, is read
once, and is compiled per network frame size (static shapes let OpenVINO pick its fastest
kernels; compiling takes about a second and happens on the first frame of a new size). Latency
hint, ``num_threads`` inference threads (0: OpenVINO's default), fp32 inference precision so
that labels match eager PyTorch.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from ..onnx_export import export_onnx

#: Compiled models kept for this many frame sizes.
MAX_COMPILED_SIZES = 4


def _import_openvino():
    try:
        import openvino
    except ImportError:
        raise RuntimeError("backend 'openvino' needs the openvino package: pip install openvino") from None
    return openvino


class OpenVinoModel:
    """Normalised (1, 3, H, W) float32 frame -> (1, C, H/8, W/8) float32 logits, via OpenVINO."""

    name = "openvino"

    def __init__(self, model: nn.Module, num_threads: int = 0) -> None:
        ov = _import_openvino()
        self._ov = ov
        self.core = ov.Core()
        self.model = self.core.read_model(export_onnx(model, 64, 128, dynamic=True))  # ONNX bytes, no temp file
        self.config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        if num_threads > 0:
            self.config["INFERENCE_NUM_THREADS"] = num_threads
        self.num_threads = num_threads
        self._compiled: OrderedDict[tuple[int, int], Any] = OrderedDict()
        self._lock = threading.Lock()

    def _request(self, height: int, width: int) -> Any:
        """An infer request for this frame size (compiled on first use); one per thread."""
        key = (height, width)
        with self._lock:
            if key not in self._compiled:
                sized = self.model.clone()
                sized.reshape({sized.input(0).get_any_name(): self._ov.PartialShape([1, 3, height, width])})
                self._compiled[key] = (self.core.compile_model(sized, "CPU", self.config), threading.local())
                if len(self._compiled) > MAX_COMPILED_SIZES:
                    self._compiled.popitem(last=False)
            compiled, per_thread = self._compiled[key]
            self._compiled.move_to_end(key)
        if not hasattr(per_thread, "request"):
            per_thread.request = compiled.create_infer_request()
        return per_thread.request

    def infer(self, frame: torch.Tensor) -> torch.Tensor:
        x = frame.detach().to("cpu", torch.float32).contiguous().numpy()
        request = self._request(x.shape[2], x.shape[3])
        request.infer({0: x})
        # The output tensor is the request's own buffer: copy before the next inference reuses it.
        return torch.from_numpy(request.get_output_tensor(0).data.copy())
