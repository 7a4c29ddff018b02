"""What a :class:`~ddrnet_ros.engine.Segmenter` is asked to do, checked before any model loads.

Every check lives in :meth:`SegmenterConfig.validate`; its error names the field, the value and
what is allowed, so that the node can re-word it with the parameter's name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ddrnet_ros.classes import ClassMap
from ddrnet_ros.model import INPUT_MULTIPLE, VARIANTS

from .backends import BACKENDS as BACKEND_SPECS
from .backends import auto_backend, auto_precision
from .loading import CHECKPOINT_CHOICES, CHECKPOINT_WORDS, SHIPPED

AUTO = "auto"
BACKENDS = (AUTO, *BACKEND_SPECS)
PRECISIONS = (AUTO, "fp32", "fp16", "bf16", "int8")
DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
_CUDA_DEVICE = re.compile(r"^cuda(:\d+)?$")


class EngineConfigError(ValueError):
    """A :class:`SegmenterConfig` field has a value the engine cannot use."""

    def __init__(self, field: str, value: Any, allowed: str | Sequence[str], reason: str = "") -> None:
        allowed_text = allowed if isinstance(allowed, str) else ", ".join(map(str, allowed))
        message = f"{field} = {value!r} is invalid: expected {allowed_text}"
        super().__init__(message + (f" ({reason})" if reason else ""))
        self.field = field
        self.value = value
        self.allowed = allowed_text
        self.reason = reason


@dataclass(frozen=True)
class SegmenterConfig:
    """Model, device, backend and geometry of a Segmenter.

    ``checkpoint``: a file, ``"shipped"`` (the packaged checkpoint; also None) or ``"random"``
    (seeded random weights, for tests and benchmarks); see :mod:`.loading`.
    ``input_size``: (height, width) images are scaled to, multiples of 8; None takes the size the
    checkpoint's sidecar recommends (``network_input_size``, the size its quality was measured
    at), else runs each image at its own size. Either way the network frame is padded at the
    bottom/right to multiples of 64, where the branches align (:func:`.preprocess.plan_frame`).
    Outputs always have the input image's size.
    ``keep_aspect``: scale to fit ``input_size`` keeping the aspect ratio (True) or stretch to it (False).
    ``pad_to_input_size``: with ``keep_aspect``, run an image of another aspect in a frame of
    ``input_size`` padded at the bottom/right (one static shape for every camera) instead of a frame
    trimmed to the scaled image (less work, no padding band the model never saw).
    ``class_map``: a ClassMap, a class YAML path, or None for the built-in Cityscapes classes.
    """

    variant: str = "ddrnet23_slim"
    checkpoint: str | Path | None = SHIPPED
    num_classes: int | None = None
    device: str = "auto"
    backend: str = "torch"
    precision: str = "fp32"
    input_size: tuple[int, int] | None = None
    keep_aspect: bool = True
    pad_to_input_size: bool = False
    channels_last: bool = False
    num_threads: int = 0
    class_map: ClassMap | str | Path | None = None

    def validate(self) -> None:
        """Raise :class:`EngineConfigError` for the first field with an unusable value."""
        if self.variant_name not in VARIANTS:
            raise EngineConfigError("variant", self.variant, tuple(VARIANTS))
        if self.checkpoint is not None and str(self.checkpoint) not in CHECKPOINT_WORDS:
            reason = "an empty name" if not str(self.checkpoint) else "file not found"
            if not str(self.checkpoint) or not Path(self.checkpoint).is_file():
                raise EngineConfigError("checkpoint", str(self.checkpoint), CHECKPOINT_CHOICES, reason)
        if self.num_classes is not None and (not _is_int(self.num_classes) or not 1 <= self.num_classes <= 255):
            raise EngineConfigError("num_classes", self.num_classes, "None or an integer in 1..255")
        if self.backend not in BACKENDS:
            raise EngineConfigError("backend", self.backend, BACKENDS)
        if self.precision not in PRECISIONS:
            raise EngineConfigError("precision", self.precision, PRECISIONS)
        device = self.resolved_device()  # raises for malformed or unavailable devices
        if AUTO not in (self.backend, self.precision):
            self._validate_backend_precision(device)
        self._validate_geometry_and_threads()

    def _validate_backend_precision(self, device: str) -> None:
        spec = BACKEND_SPECS[self.backend]
        if device.split(":")[0] not in spec.devices:
            raise EngineConfigError("device", self.device, "cpu or auto with backend " + self.backend,
                                    f"the {self.backend} backend runs on the CPU")
        if self.precision not in spec.precisions:
            raise EngineConfigError("precision", self.precision, f"{', '.join(spec.precisions)} with backend "
                                    + self.backend)
        if self.precision == "fp16" and not device.startswith("cuda"):
            raise EngineConfigError("precision", self.precision, "fp32 or bf16 on the CPU",
                                    "fp16 inference needs a CUDA device")

    def _validate_geometry_and_threads(self) -> None:
        if self.input_size is not None:
            size = tuple(self.input_size)
            if (len(size) != 2 or not all(_is_int(s) and s > 0 and s % INPUT_MULTIPLE == 0 for s in size)):
                raise EngineConfigError("input_size", self.input_size,
                                        f"None or (height, width), positive multiples of {INPUT_MULTIPLE}")
        for name in ("keep_aspect", "pad_to_input_size"):
            if not isinstance(getattr(self, name), bool):
                raise EngineConfigError(name, getattr(self, name), "true or false")
        if not isinstance(self.channels_last, bool):
            raise EngineConfigError("channels_last", self.channels_last, "true or false")
        if not _is_int(self.num_threads) or self.num_threads < 0:
            raise EngineConfigError("num_threads", self.num_threads, "an integer >= 0 (0: library default)")
        if self.class_map is not None and not isinstance(self.class_map, (ClassMap, str, Path)):
            raise EngineConfigError("class_map", self.class_map, "a ClassMap, a class YAML path or None")
        if isinstance(self.class_map, (str, Path)) and str(self.class_map) and not Path(self.class_map).is_file():
            raise EngineConfigError("class_map", str(self.class_map), "an existing class YAML file or ''",
                                    "file not found")

    def resolve_auto(self, model_key: str, network_size: tuple[int, int] | None = None,
                     ) -> tuple[SegmenterConfig, list[str]]:
        """This config with ``backend``/``precision`` ``auto`` replaced by what this machine runs fastest
        (int8 where a model calibrated at ``network_size`` passed the gate), and one line per choice
        saying why (validated again once resolved)."""
        device_type = self.resolved_device().split(":")[0]
        backend, precision, reasons = self.backend, self.precision, []
        if backend == AUTO:
            backend, why = auto_backend(device_type)
            reasons.append(f"backend auto -> {backend}: {why}")
        if precision == AUTO:
            precision, why = auto_precision(backend, device_type, model_key, network_size)
            reasons.append(f"precision auto -> {precision}: {why}")
        resolved = replace(self, backend=backend, precision=precision)
        resolved.validate()
        return resolved, reasons

    @property
    def variant_name(self) -> str:
        """The variant's canonical name (``DDRNet-23-slim`` -> ``ddrnet23_slim``), or the value as given."""
        key = str(self.variant).lower().replace("-", "").replace("_", "")
        return {name.replace("_", ""): name for name in VARIANTS}.get(key, str(self.variant))

    def resolved_device(self) -> str:
        """The torch device string inference will use: ``auto`` becomes ``cuda:0`` or ``cpu``."""
        device = str(self.device).strip().lower()
        if device == "auto":
            spec = BACKEND_SPECS.get(self.backend)
            gpu = self.backend == AUTO or (spec is not None and "cuda" in spec.devices)
            return "cuda:0" if gpu and torch.cuda.is_available() else "cpu"
        if device == "cpu":
            return "cpu"
        if not _CUDA_DEVICE.match(device):
            raise EngineConfigError("device", self.device, DEVICE_CHOICES)
        if not torch.cuda.is_available():
            raise EngineConfigError("device", self.device, "cpu or auto", cuda_unavailable_reason())
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise EngineConfigError("device", self.device, f"cuda:0..cuda:{torch.cuda.device_count() - 1}",
                                    "no such CUDA device")
        return f"cuda:{index}"


def cuda_unavailable_reason() -> str:
    """Why torch sees no GPU, in the words a ROS user needs: a CPU-only build (what rosdep's
    python3-torch installs) is a different fix from a machine without a working driver."""
    if torch.version.cuda is None:
        return (f"this torch ({torch.__version__}) is a CPU-only build, as rosdep's python3-torch installs; "
                "install a CUDA build of torch next to ROS (README: GPU torch next to ROS)")
    return f"torch {torch.__version__} (CUDA {torch.version.cuda}) finds no usable GPU: check the driver (nvidia-smi)"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
