"""OpenVINO inference on the CPU (optional: ``pip install openvino``).

The network goes through the same in-memory ONNX export as the ONNX Runtime backend, is read
once, and is compiled per network frame size (static shapes let OpenVINO pick its fastest
kernels; compiling takes about a second and happens on the first frame of a new size). Latency
hint, ``num_threads`` inference threads (0: OpenVINO's default).

Precision is pinned, never OpenVINO's default (bf16 on CPUs that have it): ``fp32``; ``bf16``
(the inference precision hint); ``int8`` (the NNCF-quantized IR of :mod:`..quantize`, its
remaining float layers in bf16 where the CPU runs bf16 natively, else fp32).

Camera frames enter as they are: ``infer_uint8`` takes the uint8 HWC frame (RGB or BGR) and the
compiled graph does the rest with OpenVINO's PrePostProcessor (element type, colour order,
ImageNet mean/std, NHWC -> NCHW), so no float image is made on the host. ``infer`` keeps the
float NCHW input for comparisons with the other backends.

Labels can leave OpenVINO instead of logits: :meth:`OpenVinoModel.infer_labels_uint8` chains a
second compiled graph, the label head of a frame plan (:func:`label_head_model`: bilinear to the
network frame, crop, resize back, argmax; postprocess's reference mapping op for op), fed with the
network's output tensor in place. The head is compiled with an fp32 precision hint whatever the
network runs in, so its labels are the reference's for the logits the network gave: a bf16
upsampling inside the network's own graph moved 0.18 % of labels at 1024x2048. The Segmenter keeps
the host's border-only label step, 1.8-4x faster than the head on every plan measured here;
``ddrnet-ros bench`` times the head side by side so that another machine can show otherwise.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..onnx_export import export_onnx
from ..preprocess import IMAGENET_MEAN, IMAGENET_STD, FramePlan
from ..quantize import float_layers_hint

#: Compiled models kept for this many frame sizes.
MAX_COMPILED_SIZES = 4


def _import_openvino():
    try:
        import openvino
    except ImportError:
        raise RuntimeError("backend 'openvino' needs the openvino package: pip install openvino") from None
    return openvino


#: --precision -> OpenVINO's inference precision hint of the float precisions (int8's float layers:
#: :func:`~ddrnet_ros.engine.quantize.float_layers_hint`).
PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16"}


def openvino_model_for(model: nn.Module, precision: str, int8_xml: Path | None, core: Any) -> Any:
    """The OpenVINO model to compile: the float export, or the quantized IR for int8."""
    if precision == "int8":
        if int8_xml is None:
            raise RuntimeError("precision int8 needs a quantized model (ddrnet_ros.engine.quantize)")
        return core.read_model(str(int8_xml))
    return float_openvino_model(model, core)


def float_openvino_model(model: nn.Module, core: Any, fold_bn: bool = True) -> Any:
    """The network as an OpenVINO model with free height and width, read from the in-memory ONNX
    export (no temporary file): what fp32/bf16 compile, int8 calibrates and the bench's peer runs."""
    return core.read_model(export_onnx(model, 64, 128, dynamic=True, fold_bn=fold_bn))


class OpenVinoModel:
    """Normalised (1, 3, H, W) float32 frame -> (1, C, H/8, W/8) float32 logits, via OpenVINO;
    or the uint8 camera frame itself through :meth:`infer_uint8`."""

    name = "openvino"

    def __init__(self, model: nn.Module, num_threads: int = 0, precision: str = "fp32",
                 int8_xml: Path | None = None) -> None:
        ov = _import_openvino()
        self._ov = ov
        self.core = ov.Core()
        self.precision = precision
        self.model = openvino_model_for(model, precision, int8_xml, self.core)
        hint = float_layers_hint(self.core) if precision == "int8" else PRECISION_HINTS[precision]
        self.config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": hint}
        if num_threads > 0:
            self.config["INFERENCE_NUM_THREADS"] = num_threads
        self.num_threads = num_threads
        self._compiled: OrderedDict[tuple[int, int, str], Any] = OrderedDict()
        self._heads: OrderedDict[tuple[FramePlan, int], Any] = OrderedDict()
        self._lock = threading.Lock()

    def _sized(self, height: int, width: int, channel_order: str) -> Any:
        """The model at a static frame size; with a channel order, taking uint8 NHWC frames of it."""
        sized = self.model.clone()
        sized.reshape({sized.input(0).get_any_name(): self._ov.PartialShape([1, 3, height, width])})
        if channel_order == "float":
            return sized
        return uint8_input(sized, channel_order)

    def _request(self, height: int, width: int, channel_order: str = "float") -> Any:
        """An infer request for this frame size and input kind (compiled on first use); one per thread."""
        return self._cached_request(self._compiled, (height, width, channel_order),
                                    lambda: self._sized(height, width, channel_order), self.config)

    def _cached_request(self, cache: OrderedDict, key: Any, build: Callable[[], Any], config: dict[str, Any]) -> Any:
        """This thread's infer request of the model ``cache`` holds under ``key``; on first use the
        model is built and compiled with ``config``, and the least recently used of more than
        MAX_COMPILED_SIZES entries is dropped."""
        with self._lock:
            if key not in cache:
                cache[key] = (self.core.compile_model(build(), "CPU", config), threading.local())
                if len(cache) > MAX_COMPILED_SIZES:
                    cache.popitem(last=False)
            compiled, per_thread = cache[key]
            cache.move_to_end(key)
        if not hasattr(per_thread, "request"):
            per_thread.request = compiled.create_infer_request()
        return per_thread.request

    def infer(self, frame: torch.Tensor) -> torch.Tensor:
        x = frame.detach().to("cpu", torch.float32).contiguous().numpy()
        request = self._request(x.shape[2], x.shape[3])
        request.infer({0: x})
        # The output tensor is the request's own buffer: copy before the next inference reuses it.
        return torch.from_numpy(request.get_output_tensor(0).data.copy())

    def infer_uint8(self, frame: np.ndarray, channel_order: str) -> torch.Tensor:
        """(Hn, Wn, 3) uint8 frame in ``channel_order`` (rgb/bgr) -> (1, C, Hn/8, Wn/8) float32 logits."""
        request = self._request(frame.shape[0], frame.shape[1], channel_order)
        request.infer({0: frame[None]})
        return torch.from_numpy(request.get_output_tensor(0).data.copy())

    def infer_labels_uint8(self, frame: np.ndarray, channel_order: str, plan: FramePlan) -> np.ndarray:
        """(Hn, Wn, 3) uint8 frame of ``plan`` -> (H, W) uint8 labels at the image size, all inside
        OpenVINO: the network, then the plan's fp32 label head reading the network's output in place."""
        request = self._request(frame.shape[0], frame.shape[1], channel_order)
        request.infer({0: frame[None]})
        logits = request.get_output_tensor(0)
        head = self._head_request(plan, int(logits.shape[1]))
        head.set_input_tensor(0, logits)
        head.infer()
        return head.get_output_tensor(0).data[0, 0].copy()

    def _head_request(self, plan: FramePlan, num_classes: int) -> Any:
        """The label head of ``plan`` (compiled in fp32 on first use), one infer request per thread."""
        return self._cached_request(self._heads, (plan, num_classes), lambda: label_head_model(plan, num_classes),
                                    {**self.config, "INFERENCE_PRECISION_HINT": "f32"})


def label_head_model(plan: FramePlan, num_classes: int) -> Any:
    """(1, C, h, w) float32 logits -> (1, 1, H, W) uint8 labels of ``plan``'s image, as OpenVINO ops.

    The steps of :func:`~ddrnet_ros.engine.postprocess.reference_logits` (bilinear with half-pixel
    centres, i.e. align_corners=False, to the network frame; crop the bottom/right padding; bilinear
    back to the image size), then the first maximum over classes (TopK 1)."""
    ov = _import_openvino()
    ops = ov.opset13
    logits = ops.parameter([1, num_classes, *plan.logits_size], ov.Type.f32, name="logits")
    up = _bilinear(ops, logits, plan.network)
    rh, rw = plan.resized
    if plan.resized != plan.network:
        up = ops.slice(up, np.array([0, 0], np.int64), np.array([rh, rw], np.int64), np.array([1, 1], np.int64),
                       np.array([2, 3], np.int64))
    if plan.needs_resize:
        up = _bilinear(ops, up, plan.image)
    top = ops.topk(up, np.int64(1), axis=1, mode="max", sort="index", index_element_type="i32")
    labels = ops.convert(top.output(1), "u8")
    return ov.Model([labels.output(0)], [logits], "label_head")


def _bilinear(ops: Any, value: Any, size: tuple[int, int]) -> Any:
    """Bilinear resize of the last two axes to ``size``, half-pixel centres, no antialiasing: what
    torch's ``F.interpolate(mode="bilinear", align_corners=False)`` computes."""
    return ops.interpolate(value, np.array(size, np.int64), mode="linear_onnx", shape_calculation_mode="sizes",
                           coordinate_transformation_mode="half_pixel", axes=np.array([2, 3], np.int64))


def uint8_input(model: Any, channel_order: str) -> Any:
    """Fold the engine's preprocessing into ``model``: uint8 NHWC in ``channel_order`` -> normalised
    float NCHW RGB, inside the compiled graph."""
    from openvino.preprocess import ColorFormat, PrePostProcessor

    ov = _import_openvino()
    ppp = PrePostProcessor(model)
    source = ColorFormat.BGR if channel_order == "bgr" else ColorFormat.RGB
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(source)
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    steps = ppp.input().preprocess().convert_element_type(ov.Type.f32)
    if channel_order == "bgr":
        steps.convert_color(ColorFormat.RGB)
    steps.mean([255.0 * m for m in IMAGENET_MEAN]).scale([255.0 * s for s in IMAGENET_STD])
    return ppp.build()
