"""The inference backends, one registry: name -> how to build it, what it needs, where it runs.

A backend turns a normalised (1, 3, Hn, Wn) float32 frame into (1, C, Hn/8, Wn/8) float32
logits. Adding one is one module here and one entry in :data:`BACKENDS`; the Segmenter, the
benchmark, the command line and the node's ``backend`` parameter all read this table.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from ..quantize import Int8Artifact, calibrate, calibration_size, cpu_runs_bf16, find_artifact
from .onnxruntime_backend import OnnxRuntimeModel
from .openvino_backend import OpenVinoModel, _import_openvino, float_openvino_model
from .torch_backend import TorchModel


class NetworkBackend(Protocol):
    """A way to run the network: normalised (1, 3, Hn, Wn) float32 frame -> (1, C, Hn/8, Wn/8) float32."""

    name: str

    def infer(self, frame: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class BackendOptions:
    """How the engine wants the network run; each backend reads what applies to it."""

    device: str = "cpu"
    precision: str = "fp32"
    channels_last: bool = False
    num_threads: int = 0                      # 0: the library's default
    optimize: bool = True                     # False: the model exactly as written (the eager baseline)
    #: the checkpoint's sha256 (or "random"): finds cached artifacts such as a quantized model
    model_key: str = "random"
    #: the network frame size when the engine runs one fixed size (input_size or the checkpoint's
    #: recommendation); int8 is calibrated at it. None: frames keep their own sizes.
    network_size: tuple[int, int] | None = None


Factory = Callable[[nn.Module, BackendOptions], NetworkBackend]


@dataclass(frozen=True)
class BackendSpec:
    """One backend: its factory, the Python package it needs, and where and how it can run."""

    name: str
    factory: Factory
    package: str | None          # import name of the optional package it needs (None: torch only)
    devices: tuple[str, ...]     # device types: "cpu", "cuda"
    precisions: tuple[str, ...]  # inference precisions it offers
    summary: str
    #: packages a precision needs besides ``package`` (int8 calibration: nncf)
    precision_packages: tuple[tuple[str, str], ...] = ()

    def available(self) -> bool:
        """Whether its package is installed (the import itself waits until it is built)."""
        return self.package is None or importlib.util.find_spec(self.package) is not None

    def missing_hint(self) -> str:
        return f"backend '{self.name}' needs the {self.package} package: pip install {self.package}"


def _torch(model: nn.Module, options: BackendOptions) -> NetworkBackend:
    return TorchModel(model, options.device, options.precision, options.channels_last, fold_bn=options.optimize)


def _onnxruntime(model: nn.Module, options: BackendOptions) -> NetworkBackend:
    return OnnxRuntimeModel(model, num_threads=options.num_threads)


def _openvino(model: nn.Module, options: BackendOptions) -> NetworkBackend:
    int8_xml = None
    if options.precision == "int8":
        int8_xml = int8_artifact(model, options.model_key, options.network_size).xml
    return OpenVinoModel(model, num_threads=options.num_threads, precision=options.precision, int8_xml=int8_xml)


def int8_artifact(model: nn.Module, model_key: str, network_size: tuple[int, int] | None = None) -> Int8Artifact:
    """The cached quantized model of this checkpoint at this network size; calibrated now (synthetic
    scenes, plus CamVid training frames where $DDRNET_ROS_CAMVID names a copy) when there is none yet."""
    size = calibration_size(network_size)
    found = find_artifact(model_key, size)
    if found is not None:
        return found
    if importlib.util.find_spec("nncf") is None:
        raise RuntimeError("precision int8 needs the nncf package to calibrate (pip install nncf), or a model "
                           "calibrated before: ddrnet-ros export --precision int8")
    float_model = float_openvino_model(model, _import_openvino().Core())
    return calibrate(float_model, model_key, size, camvid_root=os.environ.get("DDRNET_ROS_CAMVID") or None)


BACKENDS: dict[str, BackendSpec] = {spec.name: spec for spec in (
    BackendSpec("torch", _torch, None, ("cpu", "cuda"), ("fp32", "fp16", "bf16"),
                "eager PyTorch, BN folded; CUDA streams on a GPU"),
    BackendSpec("onnxruntime", _onnxruntime, "onnxruntime", ("cpu",), ("fp32",),
                "ONNX Runtime CPU execution provider, all graph optimisations"),
    BackendSpec("openvino", _openvino, "openvino", ("cpu",), ("fp32", "bf16", "int8"),
                "OpenVINO CPU plugin: uint8 frames in, preprocessing in the graph, precision pinned",
                precision_packages=(("int8", "nncf"),)),
)}


def available_backends() -> list[str]:
    """Names of the backends whose packages are installed here, in registry order."""
    return [name for name, spec in BACKENDS.items() if spec.available()]


def create_backend(name: str, model: nn.Module, options: BackendOptions | None = None) -> NetworkBackend:
    """Build the named backend for ``model`` (RuntimeError with the install hint if its package is missing)."""
    spec = BACKENDS[name]
    if not spec.available():
        raise RuntimeError(spec.missing_hint())
    return spec.factory(model, options or BackendOptions())


#: CPU backends in the order ``backend: auto`` prefers them: fastest first, as measured by
#: ``ddrnet-ros bench`` on x86 CPUs (OpenVINO with uint8 input ahead of ONNX Runtime and eager).
AUTO_CPU_ORDER = ("openvino", "onnxruntime", "torch")


def auto_backend(device_type: str) -> tuple[str, str]:
    """(backend, why) for ``backend: auto`` on this machine."""
    if device_type == "cuda":
        return "torch", "CUDA device: the torch backend runs the CUDA stream pipeline"
    for name in AUTO_CPU_ORDER:
        if BACKENDS[name].available():
            return name, f"the fastest installed CPU backend (preference {', '.join(AUTO_CPU_ORDER)})"
    return "torch", "no other backend installed"


def cpu_supports_bf16() -> bool:
    """Whether this CPU runs bf16 natively (AVX512-BF16 or AMX), as OpenVINO reports it."""
    if not BACKENDS["openvino"].available():
        return False
    import openvino as ov

    return cpu_runs_bf16(ov.Core())


def auto_precision(backend: str, device_type: str, model_key: str,
                   network_size: tuple[int, int] | None = None) -> tuple[str, str]:
    """(precision, why) for ``precision: auto``: the fastest precision that this machine runs natively
    and that passed the accuracy gate (int8 only with a model calibrated at this network size whose
    labels agree with fp32)."""
    if device_type == "cuda":
        return "fp16", "CUDA device"
    if backend != "openvino":
        return "fp32", f"the {backend} backend runs fp32 on the CPU"
    artifact = find_artifact(model_key, calibration_size(network_size))
    if artifact is not None and artifact.passes_gate:
        return "int8", f"a calibrated int8 model agrees with fp32 on {artifact.agreement:.1%} of labels"
    if cpu_supports_bf16():
        why = "no calibrated int8 model passing the gate" if artifact is None else (
            f"the int8 model agrees with fp32 on only {artifact.agreement:.1%} of labels")
        return "bf16", f"this CPU runs bf16 natively; {why}"
    return "fp32", "this CPU has no native bf16"
