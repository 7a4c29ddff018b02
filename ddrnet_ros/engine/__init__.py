"""Inference engine (ROS-free): uint8 images in, pixel-aligned uint8 labels out.

``Segmenter`` runs a DDRNet through one backend (eager PyTorch on CPU or CUDA, ONNX Runtime,
OpenVINO) with shared preprocessing (:mod:`.preprocess`) and postprocessing (:mod:`.postprocess`).
"""

from .config import BACKENDS, PRECISIONS, EngineConfigError, SegmenterConfig
from .faults import EngineFault
from .requests import FrameRequest
from .segmenter import SegmentationResult, Segmenter

__all__ = ["BACKENDS", "PRECISIONS", "EngineConfigError", "EngineFault", "FrameRequest", "SegmentationResult",
           "Segmenter", "SegmenterConfig"]
