"""The Segmenter: uint8 images of any size in, pixel-aligned uint8 label maps out.

One object per model, shared by the callers of a process. ``segment`` may be called from
several threads with different ``stream_key`` values (one per camera); calls with the same key
are serialised. Buffers (input frame, pinned memory on CUDA) are kept per key and reused while
the image size stays the same; results are always fresh arrays the caller may keep.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from ddrnet_ros.classes import colorize, overlay

from .backends import BackendOptions, NetworkBackend, create_backend
from .backends.torch_backend import BATCH_STREAM_KEY, CudaPipeline, TorchModel, bf16_unsupported_reason
from .config import EngineConfigError, SegmenterConfig
from .loading import LoadedModel, load_model, wrap_model
from .postprocess import (
    ImageMap,
    apply_threshold,
    confidence_to_uint8,
    fast_labels,
    labels_and_confidence,
    reference_logits,
    tiled_labels,
)
from .preprocess import CHANNEL_ORDERS, PAD_COLOR, FramePlan, fill_network_input, plan_frame
from .requests import FrameRequest

log = logging.getLogger(__name__)

@dataclass
class SegmentationResult:
    """One frame's outputs, all at the input image's size."""

    labels: np.ndarray              # (H, W) uint8 class ids; low-confidence pixels are the ignore label
    color: np.ndarray | None        # (H, W, 3) uint8 RGB class colours
    overlay: np.ndarray | None      # (H, W, 3) uint8 RGB: colours blended onto the input
    confidence: np.ndarray | None   # (H, W) uint8: max softmax x 255
    inference_ms: float             # engine time for this frame (in a batch: up to this frame's results)
    batch_size: int = 1             # frames that shared this frame's forward pass


@dataclass
class _Slot:
    """Per-``stream_key`` state on the host path."""

    lock: threading.Lock
    frame: torch.Tensor | None = None
    frame_plan: FramePlan | None = None
    #: the uint8 network frame of backends that take camera pixels (padding pre-filled), and its key
    pixels: np.ndarray | None = None
    pixels_key: tuple[FramePlan, str] | None = None
    #: the plans of a batch slot's frames, one per position
    batch_plans: tuple[FramePlan, ...] = ()


class Segmenter:
    """Semantic segmentation of uint8 HxWx3 images with one DDRNet (see :class:`SegmenterConfig`).

    ``model``: a hook for callers that already hold a network (the trainer's in-memory model,
    geometry probes in the tests). Any ``nn.Module`` that maps a normalised (N, 3, H, W) input,
    H and W multiples of 8, to (N, C, H/8, W/8) logits; it replaces create_model +
    load_checkpoint, and ``config.checkpoint`` is then ignored. A :class:`LoadedModel` (a checkpoint
    loaded once and shared, as the bench does) keeps its file's sha256, so caches keyed on it (the
    int8 calibration) are the ones a node loading the same file finds.
    ``optimize``: False gives the plain eager baseline (benchmarks, tests): the module exactly as
    written (no BatchNorm folding) and every class upsampled to full size before the argmax,
    instead of the exact border-only label shortcut of
    :func:`~ddrnet_ros.engine.postprocess.fast_labels` and the tiled confidence of
    :func:`~ddrnet_ros.engine.postprocess.tiled_labels`, whose memory per frame is bounded.
    """

    def __init__(self, config: SegmenterConfig, model: nn.Module | LoadedModel | None = None, *, warmup: bool = False,
                 optimize: bool = True) -> None:
        config.validate()
        self.device = config.resolved_device()
        self.variant = config.variant_name
        self.optimize = optimize
        loaded = self._load(config, model)
        self.loaded = loaded
        self.metadata: dict[str, Any] = loaded.metadata
        self.checkpoint_path: Path | None = loaded.checkpoint_path
        self.checkpoint_sha256: str | None = loaded.checkpoint_sha256
        self.input_size = self._input_size(config)
        #: why backend/precision ``auto`` became what they are (empty when nothing was auto)
        config, self.choices = config.resolve_auto(loaded.weights_key, self.input_size)
        for line in self.choices:
            log.info(line)
        self.config = config
        self.num_classes = self._num_classes(loaded.module)
        self.class_map = loaded.class_map
        self.class_map.check_num_classes(self.num_classes)
        if config.num_threads > 0:
            torch.set_num_threads(config.num_threads)
        self.module = loaded.module  # the official-layout module (export, tests)
        if self.device.startswith("cuda"):
            check_cuda_precision(config.precision, self.device)
        options = BackendOptions(self.device, config.precision, config.channels_last, config.num_threads, optimize,
                                 loaded.weights_key, self.input_size)
        self.backend: NetworkBackend = create_backend(config.backend, loaded.module, options)
        self._cuda: CudaPipeline | None = None
        if self.device.startswith("cuda"):
            assert isinstance(self.backend, TorchModel)  # the only backend that runs on CUDA (validate)
            self._cuda = CudaPipeline(self.backend, self.class_map)
        self._plans: dict[tuple[int, int], tuple[FramePlan, ImageMap | None]] = {}
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Lock()
        if warmup:
            self.warm_up()

    # ------------------------------------------------------------------ construction
    def _load(self, config: SegmenterConfig, model: nn.Module | LoadedModel | None) -> LoadedModel:
        if isinstance(model, LoadedModel):
            return model
        if model is not None:
            return wrap_model(model, self.variant, config.class_map)
        return load_model(self.variant, config.checkpoint, config.num_classes, config.class_map)

    def _input_size(self, config: SegmenterConfig) -> tuple[int, int] | None:
        """The configured network size, else the one the checkpoint was measured at (sidecar)."""
        if config.input_size is not None:
            height, width = config.input_size  # exactly two values (validate)
            return height, width
        recommended = self.metadata.get("network_input_size")
        if recommended is None:
            return None
        size = tuple(int(v) for v in recommended)
        if len(size) != 2 or any(v <= 0 or v % 8 for v in size):
            raise EngineConfigError("input_size", recommended, "positive multiples of 8",
                                    f"the sidecar of {self.checkpoint_path} recommends an unusable size")
        log.info("network input %dx%d, as recommended by %s", size[0], size[1], self.checkpoint_path)
        return size

    def _num_classes(self, model: nn.Module) -> int:
        num_classes = getattr(model, "num_classes", None) or self.config.num_classes
        if num_classes is None:
            raise EngineConfigError("num_classes", None, "the class count of the given model",
                                    "the model has no num_classes attribute")
        return int(num_classes)

    # ------------------------------------------------------------------ geometry
    def network_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) the network runs at for an image of this size."""
        return self._plan(height, width)[0].network

    def frame_plan(self, height: int, width: int) -> FramePlan:
        """Where an image of this size lands in the network frame (resize, padding)."""
        return self._plan(height, width)[0]

    def _plan(self, height: int, width: int) -> tuple[FramePlan, ImageMap | None]:
        key = (height, width)
        entry = self._plans.get(key)
        if entry is None:
            plan = plan_frame(height, width, self.input_size, self.config.keep_aspect,
                              self.config.pad_to_input_size)
            entry = (plan, ImageMap.build(plan) if self._cuda is None else None)
            with self._lock:
                if len(self._plans) >= 16:  # many sizes in one process: keep the cache bounded
                    self._plans.clear()
                self._plans[key] = entry
        return entry

    def _slot(self, key: str) -> _Slot:
        with self._lock:
            if key not in self._slots:
                self._slots[key] = _Slot(threading.Lock())
            return self._slots[key]

    # ------------------------------------------------------------------ inference
    def segment(self, image: np.ndarray, channel_order: str = "rgb", want_color: bool = False,
                want_overlay: bool = False, want_confidence: bool = False, overlay_alpha: float = 0.5,
                confidence_threshold: float = 0.0, stream_key: str = "default") -> SegmentationResult:
        """Labels (and optional colour mask, overlay, confidence) for one HxWx3 uint8 image."""
        check_image(image, channel_order)
        check_blending(overlay_alpha, confidence_threshold)
        plan, image_map = self._plan(image.shape[0], image.shape[1])
        if self._cuda is not None:
            out = self._cuda.run(image, plan, channel_order, want_color=want_color, want_overlay=want_overlay,
                                 want_confidence=want_confidence, overlay_alpha=overlay_alpha,
                                 confidence_threshold=confidence_threshold, stream_key=stream_key)
            return SegmentationResult(out.labels, out.color, out.overlay, out.confidence, out.inference_ms)
        started = time.perf_counter()
        logits = self._run_network(image, plan, channel_order, stream_key)
        request = FrameRequest(image, channel_order, want_color, want_overlay, want_confidence, stream_key)
        return self._host_result(request, logits, plan, image_map, overlay_alpha, confidence_threshold, started)

    def _labels(self, logits: torch.Tensor, plan: FramePlan, image_map: ImageMap | None, need_confidence: bool,
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Host path: labels (H, W) uint8 and, when needed, max softmax (H, W) from (1, C, h, w) logits.

        Optimised, the memory of a frame is bounded (outputs plus postprocess.TILE_PIXELS of logits,
        whatever the size or content): labels by the border-only shortcut, which hands noise-like
        frames to the tiled path; confidence by the tiled path. The plain baseline upsamples
        every class to the full image first (C x H x W floats)."""
        if not self.optimize:
            return labels_and_confidence(reference_logits(logits, plan), need_confidence)
        assert image_map is not None  # built for every plan off the CUDA path
        if need_confidence:
            return tiled_labels(logits, image_map, want_confidence=True)
        return fast_labels(logits, image_map, fallback=True), None

    def logits(self, image: np.ndarray, channel_order: str = "rgb") -> np.ndarray:
        """(C, H, W) float32 logits at the image size (reference upsampling), e.g. to compare backends."""
        check_image(image, channel_order)
        plan, _ = self._plan(image.shape[0], image.shape[1])
        if self._cuda is not None:
            frame = torch.zeros((1, 3, *plan.network), dtype=self._cuda.model.dtype, device=self.device)
            fill_network_input(frame, torch.from_numpy(_writable(image)).to(self.device), plan, channel_order)
            logits = self.backend.infer(frame)
        else:
            logits = self._run_network(image, plan, channel_order, "logits", camera_pixels=False)
        return reference_logits(logits, plan)[0].float().cpu().numpy()

    def _run_network(self, image: np.ndarray, plan: FramePlan, channel_order: str, stream_key: str,
                     camera_pixels: bool = True) -> torch.Tensor:
        """Host path: fill the key's reused frame and run the backend; (1, C, h, w) float32 logits.

        Backends that take camera pixels (``infer_uint8``: OpenVINO) get the uint8 frame, resized and
        padded as planned (the image itself where it already is the frame); the rest a float frame."""
        slot = self._slot(stream_key)
        infer_uint8 = getattr(self.backend, "infer_uint8", None)
        if camera_pixels and infer_uint8 is not None:
            with slot.lock:
                return infer_uint8(uint8_frame(slot, image, plan, channel_order), channel_order)
        with slot.lock:
            if slot.frame is None or slot.frame_plan != plan:
                slot.frame = torch.zeros((1, 3, *plan.network), dtype=torch.float32)
                slot.frame_plan = plan
            # A copy into our own frame: no reference to the caller's (possibly read-only) array stays.
            fill_network_input(slot.frame, torch.from_numpy(_writable(image)), plan, channel_order)
            return self.backend.infer(slot.frame)

    def warm_up(self, stream_keys: Sequence[str] = ("default",), batch: bool = False) -> None:
        """One frame with every output on each key at the network size (default 256x512 without one),
        and with ``batch`` one batch of all keys: CUDA's lazy set-up, each key's stream and buffers and
        cuDNN's choice of kernels for those shapes then happen here, not on each camera's first frame."""
        image = np.zeros((*(self.input_size or (256, 512)), 3), np.uint8)
        requests = [FrameRequest(image, want_color=True, want_overlay=True, want_confidence=True, stream_key=key)
                    for key in stream_keys]
        for r in requests:
            self.segment(r.image, r.channel_order, r.want_color, r.want_overlay, r.want_confidence,
                         stream_key=r.stream_key)
        if batch and len(requests) > 1:
            self.segment_batch(requests)

    # ------------------------------------------------------------------ cross-camera batches
    @property
    def batches(self) -> bool:
        """Whether frames of one network size share a forward pass in :meth:`segment_batch` (the torch
        backend, CUDA or CPU); other backends take their frames one by one."""
        return isinstance(self.backend, TorchModel)

    def segment_batch(self, requests: Sequence[FrameRequest], overlay_alpha: float = 0.5,
                      confidence_threshold: float = 0.0) -> list[SegmentationResult]:
        """Several cameras' frames, each result what :meth:`segment` gives for that frame alone; frames
        of one network size go through one forward pass where the backend :attr:`batches`. Results
        come in the order of ``requests``."""
        for request in requests:
            check_image(request.image, request.channel_order)
        check_blending(overlay_alpha, confidence_threshold)
        results: dict[int, SegmentationResult] = {}
        for indices in self._network_groups(requests):
            group = [requests[index] for index in indices]
            if len(group) > 1 and self.batches:
                done = self._segment_group(group, overlay_alpha, confidence_threshold)
            else:
                done = [self.segment(r.image, r.channel_order, r.want_color, r.want_overlay, r.want_confidence,
                                     overlay_alpha, confidence_threshold, r.stream_key) for r in group]
            results.update(zip(indices, done))
        return [results[index] for index in range(len(requests))]

    def _network_groups(self, requests: Sequence[FrameRequest]) -> list[list[int]]:
        """Indices of ``requests`` grouped by the network size their images run at, in first-seen order."""
        groups: dict[tuple[int, int], list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(self.network_size(*request.image.shape[:2]), []).append(index)
        return list(groups.values())

    def _segment_group(self, requests: list[FrameRequest], overlay_alpha: float,
                       confidence_threshold: float) -> list[SegmentationResult]:
        """Frames of one network size through one forward pass (CUDA: one stream, one sync)."""
        plans = [self._plan(*request.image.shape[:2]) for request in requests]
        size = len(requests)
        if self._cuda is not None:
            outs = self._cuda.run_batch(requests, [plan for plan, _ in plans], overlay_alpha=overlay_alpha,
                                        confidence_threshold=confidence_threshold)
            return [SegmentationResult(o.labels, o.color, o.overlay, o.confidence, o.inference_ms, size)
                    for o in outs]
        started = time.perf_counter()
        logits = self._run_batch_network(requests, [plan for plan, _ in plans])
        return [self._host_result(request, logits[index:index + 1], plan, image_map, overlay_alpha,
                                  confidence_threshold, started, size)
                for index, (request, (plan, image_map)) in enumerate(zip(requests, plans))]

    def _run_batch_network(self, requests: list[FrameRequest], plans: list[FramePlan]) -> torch.Tensor:
        """Host path of a batch: the batch slot's frames (made again when any plan changes: padding is
        zeroed once, never written), filled and run as one (N, 3, Hn, Wn) input; (N, C, h, w) logits."""
        assert isinstance(self.backend, TorchModel)  # self.batches
        slot = self._slot(BATCH_STREAM_KEY)
        with slot.lock:
            if slot.frame is None or slot.batch_plans != tuple(plans):
                slot.frame = self.backend.new_frame(len(plans), plans[0].network)
                slot.batch_plans = tuple(plans)
            for index, (request, plan) in enumerate(zip(requests, plans)):
                fill_network_input(slot.frame[index:index + 1], torch.from_numpy(_writable(request.image)), plan,
                                   request.channel_order)
            return self.backend.infer(slot.frame)

    def _host_result(self, request: FrameRequest, logits: torch.Tensor, plan: FramePlan,
                     image_map: ImageMap | None, overlay_alpha: float, confidence_threshold: float,
                     started: float, batch_size: int = 1) -> SegmentationResult:
        """Host path: one frame's (1, C, h, w) logits -> its outputs at the image size."""
        need_confidence = request.want_confidence or confidence_threshold > 0.0
        labels, confidence = self._labels(logits, plan, image_map, need_confidence)
        if confidence is not None:
            apply_threshold(labels, confidence, confidence_threshold, self.class_map.ignore_label)
        labels_np = labels.numpy()
        confidence_np = None
        if request.want_confidence:
            assert confidence is not None  # need_confidence
            confidence_np = confidence_to_uint8(confidence).numpy()
        color = colorize(labels_np, self.class_map) if request.want_color else None
        blended = None
        if request.want_overlay:
            rgb = request.image if request.channel_order == "rgb" else request.image[:, :, ::-1]
            blended = overlay(rgb, labels_np, self.class_map, overlay_alpha)
        elapsed_ms = (time.perf_counter() - started) * 1e3
        return SegmentationResult(labels_np, color, blended, confidence_np, elapsed_ms, batch_size)


def check_blending(overlay_alpha: float, confidence_threshold: float) -> None:
    """Both in [0, 1], or a ValueError naming the one that is not."""
    if not 0.0 <= overlay_alpha <= 1.0:
        raise ValueError(f"overlay_alpha must be in [0, 1], got {overlay_alpha}")
    if not 0.0 <= confidence_threshold <= 1.0:
        raise ValueError(f"confidence_threshold must be in [0, 1], got {confidence_threshold}")


def uint8_frame(slot: _Slot, image: np.ndarray, plan: FramePlan, channel_order: str) -> np.ndarray:
    """The (Hn, Wn, 3) uint8 network frame of ``image``: resized (bilinear, half-pixel centres, as the
    float path) and padded bottom/right with the mean colour, which normalises to ~0 like the float
    path's zero padding. An image that already is the frame is used as it is, without a copy."""
    if plan.network == plan.image and image.flags.c_contiguous:
        return image
    key = (plan, channel_order)
    if slot.pixels is None or slot.pixels_key != key:
        pad = PAD_COLOR if channel_order == "rgb" else PAD_COLOR[::-1]
        slot.pixels = np.empty((*plan.network, 3), np.uint8)
        slot.pixels[:] = pad
        slot.pixels_key = key
    height, width = plan.resized
    source = image if not plan.needs_resize else cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    slot.pixels[:height, :width] = source
    return slot.pixels


def check_cuda_precision(precision: str, device: str) -> None:
    """Refuse bf16 on a GPU without native bf16 (EngineConfigError, like validate's), before weights go to it.

    The check needs the GPU itself, so it is not part of :meth:`SegmenterConfig.validate`; it is made
    here, where the CUDA pipeline is set up, because the backends cannot import the config (a cycle).
    """
    if precision != "bf16":
        return
    reason = bf16_unsupported_reason(torch.device(device))
    if reason is not None:
        raise EngineConfigError("precision", precision, "fp32 or fp16 on this GPU", reason)


def check_image(image: Any, channel_order: str) -> None:
    """Raise ValueError (one line) unless ``image`` is an HxWx3 uint8 array in a known order."""
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be one of {', '.join(CHANNEL_ORDERS)}, got {channel_order!r}")
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be HxWx3 uint8, got shape {image.shape} dtype {image.dtype}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image has no pixels (shape {image.shape})")


def _writable(image: np.ndarray) -> np.ndarray:
    """``image`` itself when torch can wrap it without a warning, else a copy (read-only views of messages)."""
    if image.flags.writeable and all(stride >= 0 for stride in image.strides):
        return image
    return np.array(image, copy=True)
