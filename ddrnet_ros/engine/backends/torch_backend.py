"""PyTorch inference: eager on the CPU, and a CUDA pipeline with one stream per caller.

CPU: the BN-folded copy of the model (:mod:`ddrnet_ros.model.folding`), optional
channels_last, ``torch.inference_mode``.

CUDA (:class:`CudaPipeline`): per ``stream_key`` a ``torch.cuda.Stream``, a pinned host buffer
for the input image reused across frames, and a zero-padded network frame on the device. The
image goes up with a non-blocking copy; normalisation, resize, network, upsampling, argmax,
confidence, colour and overlay all run on that stream; only the uint8 results come back, into
pinned memory, with non-blocking copies; one synchronisation per frame, also when the frame
fails (the buffers are reused by the next one), waiting on a blocking event so the CPU core
sleeps instead of spinning. CUDA events time it. ``run_batch`` does the same for several
cameras' frames of one network size with one forward pass, on a stream of its own (the
cross-camera batching of the node). A CUDA error in a frame
is re-raised as :class:`CudaFault`: the device is likely unusable, so callers should stop
rather than drop every frame from then on. fp32 means fp32: TF32 is switched off (process-wide)
when an fp32 pipeline is built. Nothing here touches CUDA unless the segmenter runs on a CUDA device.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ddrnet_ros.classes import ClassMap, colorize_torch, overlay_torch
from ddrnet_ros.model.folding import fold_batchnorm

from ..faults import EngineFault
from ..postprocess import apply_threshold, confidence_to_uint8, labels_and_confidence, reference_logits
from ..preprocess import FramePlan, fill_network_input, normalisation_on
from ..requests import FrameRequest

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
#: The stream (and buffers) of cross-camera batches, apart from every camera's own.
BATCH_STREAM_KEY = "\0batch"

#: Exception types torch raises for CUDA failures (AcceleratorError: torch >= 2.8).
_CUDA_ERROR_TYPES: tuple[type[BaseException], ...] = tuple(
    t for t in (getattr(torch, "AcceleratorError", None), getattr(torch.cuda, "CudaError", None),
                torch.cuda.OutOfMemoryError) if t is not None)


class CudaFault(EngineFault):
    """A CUDA error during a frame: the device (or its context) is likely unusable from now on.

    Distinct from the per-frame failures a caller may skip (a bad image, a model bug on one
    input), so that a node can fail loudly instead of dropping every later frame. The CUDA
    error itself is the ``__cause__``.
    """


def is_cuda_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from CUDA: one of torch's CUDA error types or a RuntimeError naming CUDA/cuDNN.

    Older torch raises plain RuntimeErrors ("CUDA error: ...", "cuDNN error: ..."), hence the text test.
    Out-of-memory counts: the same frame size will not fit next time either.
    """
    if isinstance(exc, _CUDA_ERROR_TYPES):
        return True
    return isinstance(exc, RuntimeError) and ("CUDA" in str(exc) or "cuDNN error" in str(exc))


@contextmanager
def cuda_faults() -> Iterator[None]:
    """Re-raise CUDA errors from the block as :class:`CudaFault`; other exceptions pass unchanged."""
    try:
        yield
    except RuntimeError as exc:
        if isinstance(exc, CudaFault) or not is_cuda_error(exc):
            raise
        raise CudaFault(f"CUDA fault during inference: {exc}") from exc


@contextmanager
def synchronised_frame(stream: Any) -> Iterator[None]:
    """One frame's work on ``stream``: always waits for the stream at the end, even when the work raised.

    The stream reads the key's pinned input and device frame asynchronously; leaving before it
    finished would let the next frame overwrite buffers still in use. CUDA errors, from the work
    or from the synchronisation, leave as :class:`CudaFault`.
    """
    with cuda_faults():
        try:
            yield
        finally:
            stream.synchronize()


def configure_cuda_math(dtype: torch.dtype) -> None:
    """fp32 pipelines compute in true fp32: TF32 off for cuBLAS matmuls and cuDNN convolutions.

    On Ampere and newer GPUs cuDNN runs fp32 convolutions in TF32 (10-bit mantissa) by default,
    so "fp32" would silently be less precise than the CPU path it is compared with. These flags
    are **process-wide**: from here on every fp32 CUDA matmul and convolution in this process
    (a trainer's too) runs in full fp32. fp16/bf16 pipelines leave them as they are.
    """
    if dtype == torch.float32:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def bf16_unsupported_reason(device: torch.device) -> str | None:
    """Why ``device`` cannot run bf16 natively, or None when it can.

    Emulated bf16 (pre-Ampere GPUs, where ``is_bf16_supported()`` may still say yes) does not
    count: cuDNN has no bf16 convolutions there, so it would fail or crawl rather than speed up.
    """
    with torch.cuda.device(device):
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return None
    major, minor = torch.cuda.get_device_capability(device)
    return (f"{torch.cuda.get_device_name(device)} (compute capability {major}.{minor}) has no bf16 support: "
            "bf16 needs compute capability 8.0 (Ampere) or newer")


class TorchModel:
    """Eager PyTorch forward of the network: normalised frame in, 1/8 logits (float32) out."""

    name = "torch"

    def __init__(self, model: nn.Module, device: str = "cpu", precision: str = "fp32",
                 channels_last: bool = False, fold_bn: bool = True) -> None:
        self.device = torch.device(device)
        self.dtype = DTYPES[precision]
        self.channels_last = channels_last
        model = model.eval()
        if fold_bn:
            net = fold_batchnorm(model)  # a copy
        elif self.device.type != "cpu" or self.dtype != torch.float32 or channels_last:
            net = copy.deepcopy(model)  # .to() below works in place: leave the caller's module as it is
        else:
            net = model
        net = net.to(self.device, self.dtype)
        if channels_last:
            # torch's Module.to stubs leave out the memory_format form its docstring documents
            net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.net = net

    def new_frame(self, batch: int, network: tuple[int, int]) -> torch.Tensor:
        """A zeroed (batch, 3, Hn, Wn) input on the model's device, in its dtype and memory layout.

        Allocated channels_last when the network runs channels_last, so :meth:`infer` finds it in
        that layout already instead of copying every frame into it."""
        frame = torch.zeros((batch, 3, *network), dtype=self.dtype, device=self.device)
        return frame.contiguous(memory_format=torch.channels_last) if self.channels_last else frame

    def infer(self, frame: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            x = frame.to(self.dtype)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            out = self.net(x)
            if isinstance(out, (list, tuple)):
                out = out[0]
            return out.float()


class BlockingStream:
    """A CUDA stream whose ``synchronize`` sleeps until the work is done instead of spinning.

    ``torch.cuda.Stream.synchronize`` busy-waits a CPU core for the whole frame (CUDA's default
    scheduling); a node with several cameras needs that core for decoding and publishing. Waiting
    on an event made with ``blocking=True`` yields the thread instead.
    """

    def __init__(self, device: torch.device) -> None:
        self.stream = torch.cuda.Stream(device=device)

    def synchronize(self) -> None:
        done = torch.cuda.Event(blocking=True)
        done.record(self.stream)
        done.synchronize()


@dataclass
class _StreamState:
    """Per-caller CUDA resources, reused across frames (a batch keeps one list per position)."""

    stream: BlockingStream
    lock: threading.Lock = field(default_factory=threading.Lock)
    host_images: list[torch.Tensor] = field(default_factory=list)
    frame: torch.Tensor | None = None
    frame_plans: tuple[FramePlan, ...] = ()


@dataclass
class CudaOutputs:
    """uint8 results in pinned host memory (valid once the pipeline has synchronised)."""

    labels: np.ndarray
    color: np.ndarray | None
    overlay: np.ndarray | None
    confidence: np.ndarray | None
    inference_ms: float


def batch_outputs(model: TorchModel, frame: torch.Tensor, images: list[torch.Tensor], plans: list[FramePlan],
                  requests: list[FrameRequest], lookup: torch.Tensor, num_classes: int, ignore_label: int,
                  overlay_alpha: float, confidence_threshold: float) -> list[dict[str, torch.Tensor]]:
    """The CUDA pipeline's device work, entirely on the images' device: uint8 HxWx3 tensors in, uint8
    result tensors out. Several frames (one per camera; a single frame is a batch of one) through one
    forward pass: ``frame`` is the reused, zero-padded (N, 3, Hn, Wn) network input, every plan has
    that network size; then each frame's outputs at its own image size. ``lookup`` is the (256, 3)
    class colour table; ``requests`` say which outputs each frame wants and its colour order. Runs on
    CPU tensors too, which is how the tests check it without a GPU."""
    for index, (image, plan, request) in enumerate(zip(images, plans, requests)):
        fill_network_input(frame[index:index + 1], image, plan, request.channel_order)
    logits = model.infer(frame)
    return [post_outputs(logits[index:index + 1], image, plan, request.channel_order, lookup, num_classes,
                         ignore_label, want_color=request.want_color, want_overlay=request.want_overlay,
                         want_confidence=request.want_confidence, overlay_alpha=overlay_alpha,
                         confidence_threshold=confidence_threshold)
            for index, (image, plan, request) in enumerate(zip(images, plans, requests))]


def post_outputs(logits: torch.Tensor, image: torch.Tensor, plan: FramePlan, channel_order: str, lookup: torch.Tensor,
                 num_classes: int, ignore_label: int, *, want_color: bool, want_overlay: bool, want_confidence: bool,
                 overlay_alpha: float, confidence_threshold: float) -> dict[str, torch.Tensor]:
    """(1, C, h, w) logits of one frame -> its uint8 outputs at the image size, on the logits' device."""
    need_confidence = want_confidence or confidence_threshold > 0.0
    labels, confidence = labels_and_confidence(reference_logits(logits, plan), need_confidence)
    if confidence is not None:
        apply_threshold(labels, confidence, confidence_threshold, ignore_label)
    outputs = {"labels": labels}
    if want_confidence:
        assert confidence is not None  # need_confidence
        outputs["confidence"] = confidence_to_uint8(confidence)
    if want_color:
        outputs["color"] = colorize_torch(labels, lookup)
    if want_overlay:
        rgb = image if channel_order == "rgb" else image.flip(-1)
        outputs["overlay"] = overlay_torch(rgb, labels, lookup, num_classes, overlay_alpha)
    return outputs


class CudaPipeline:
    """The whole frame on one CUDA stream per ``stream_key``; only uint8 results come back."""

    def __init__(self, model: TorchModel, class_map: ClassMap) -> None:
        if model.device.type != "cuda":
            raise ValueError(f"CudaPipeline needs a CUDA model, got device {model.device}")
        self.model = model
        self.device = model.device
        self.num_classes = class_map.num_classes
        self.ignore_label = class_map.ignore_label
        self.lookup = torch.from_numpy(class_map.lookup_table()).to(self.device)
        normalisation_on(self.device, torch.float32)  # shared constants: made here, on the default stream
        configure_cuda_math(model.dtype)
        # Camera frames keep their size: let cuDNN pick the fastest kernels per shape (process-wide).
        torch.backends.cudnn.benchmark = True
        torch.cuda.synchronize(self.device)  # weights and constants are ready before any side stream reads them
        self._states: dict[str, _StreamState] = {}
        self._states_lock = threading.Lock()

    def _state(self, key: str) -> _StreamState:
        with self._states_lock:
            if key not in self._states:
                self._states[key] = _StreamState(stream=BlockingStream(self.device))
            return self._states[key]

    def run(self, image: np.ndarray, plan: FramePlan, channel_order: str, *, want_color: bool,
            want_overlay: bool, want_confidence: bool, overlay_alpha: float, confidence_threshold: float,
            stream_key: str) -> CudaOutputs:
        """One frame on the key's stream (see :class:`CudaOutputs`); CUDA errors raise :class:`CudaFault`."""
        request = FrameRequest(image, channel_order, want_color, want_overlay, want_confidence, stream_key)
        return self._run(self._state(stream_key), [request], [plan], overlay_alpha, confidence_threshold)[0]

    def run_batch(self, requests: list[FrameRequest], plans: list[FramePlan], *, overlay_alpha: float,
                  confidence_threshold: float) -> list[CudaOutputs]:
        """Several cameras' frames of one network size in one forward pass, on the batch stream, with
        one synchronisation; each result carries the batch's device time."""
        if len({plan.network for plan in plans}) != 1:
            raise ValueError("a batch needs one network size; group the frames by plan.network first")
        return self._run(self._state(BATCH_STREAM_KEY), requests, plans, overlay_alpha, confidence_threshold)

    def _run(self, state: _StreamState, requests: list[FrameRequest], plans: list[FramePlan],
             overlay_alpha: float, confidence_threshold: float) -> list[CudaOutputs]:
        with state.lock, torch.cuda.stream(state.stream.stream), cuda_faults():
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            with synchronised_frame(state.stream):
                hosts = self._stage(state, [request.image for request in requests], plans)
                start.record(state.stream.stream)
                images = [host.to(self.device, non_blocking=True) for host in hosts]
                outputs = batch_outputs(self.model, self._frame(state, plans), images, plans, requests, self.lookup,
                                        self.num_classes, self.ignore_label, overlay_alpha, confidence_threshold)
                downloads = [_download(frame) for frame in outputs]
                end.record(state.stream.stream)
            elapsed_ms = start.elapsed_time(end)
            # numpy views keep the pinned blocks alive; the caching host allocator reuses them once freed.
            return [_host_outputs(host, elapsed_ms) for host in downloads]

    @staticmethod
    def _stage(state: _StreamState, images: list[np.ndarray], plans: list[FramePlan]) -> list[torch.Tensor]:
        """Each image copied into the state's pinned buffer for its position, the source of a
        non-blocking upload.

        The previous upload from a buffer finished before its synchronisation (even a failed
        frame's): the buffers are free to overwrite.
        """
        del state.host_images[len(images):]
        for index, (image, plan) in enumerate(zip(images, plans)):
            shape = (*plan.image, 3)
            if index == len(state.host_images):
                state.host_images.append(torch.empty(shape, dtype=torch.uint8, pin_memory=True))
            elif tuple(state.host_images[index].shape) != shape:
                state.host_images[index] = torch.empty(shape, dtype=torch.uint8, pin_memory=True)
            state.host_images[index].numpy()[...] = image
        return state.host_images[:len(images)]

    def _frame(self, state: _StreamState, plans: list[FramePlan]) -> torch.Tensor:
        """The state's zero-padded network frames (one per position), made again only when a plan
        changes: a frame's padding is zeroed once and never written, so it must keep its plan."""
        if state.frame is None or state.frame_plans != tuple(plans):
            state.frame = self.model.new_frame(len(plans), plans[0].network)
            state.frame_plans = tuple(plans)
        return state.frame


def _host_outputs(host: dict[str, torch.Tensor], inference_ms: float) -> CudaOutputs:
    arrays = {name: tensor.numpy() for name, tensor in host.items()}
    return CudaOutputs(labels=arrays["labels"], color=arrays.get("color"), overlay=arrays.get("overlay"),
                       confidence=arrays.get("confidence"), inference_ms=inference_ms)


def _download(outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Non-blocking copies of the uint8 results into fresh pinned host tensors (valid after synchronising)."""
    host = {}
    for name, tensor in outputs.items():
        pinned = torch.empty(tensor.shape, dtype=torch.uint8, pin_memory=True)
        pinned.copy_(tensor, non_blocking=True)
        host[name] = pinned
    return host
