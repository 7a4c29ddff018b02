"""The inference backends, one registry: name -> how to build it, what it needs, where it runs.

A backend turns a normalised (1, 3, Hn, Wn) float32 frame into (1, C, Hn/8, Wn/8) float32
logits. Adding one is one module here and one entry in :data:`BACKENDS`; the Segmenter, the
benchmark, the command line and the node's ``backend`` parameter all read this table.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from .onnxruntime_backend import OnnxRuntimeModel
from .openvino_backend import OpenVinoModel
from .torch_backend import TorchModel


class NetworkBackend(Protocol):
    """A way to run the network: normalised (1, 3, Hn, Wn) float32 frame -> (1, C, Hn/8, Wn/8) float32."""

    name: str

    def infer(self, frame: torch.Tensor) -> torch.Tensor: ...


#: (model, device, precision, channels_last, num_threads, optimize) -> backend
Factory = Callable[[nn.Module, str, str, bool, int, bool], NetworkBackend]


@dataclass(frozen=True)
class BackendSpec:
    """One backend: its factory, the Python package it needs, and where and how it can run."""

    name: str
    factory: Factory
    package: str | None          # import name of the optional package it needs (None: torch only)
    devices: tuple[str, ...]     # device types: "cpu", "cuda"
    precisions: tuple[str, ...]  # inference precisions it offers
    summary: str

    def available(self) -> bool:
        """Whether its package is installed (the import itself waits until it is built)."""
        return self.package is None or importlib.util.find_spec(self.package) is not None

    def missing_hint(self) -> str:
        return f"backend '{self.name}' needs the {self.package} package: pip install {self.package}"


def _torch(model: nn.Module, device: str, precision: str, channels_last: bool, num_threads: int,
           optimize: bool) -> NetworkBackend:
    return TorchModel(model, device, precision, channels_last, fold_bn=optimize)


def _onnxruntime(model: nn.Module, device: str, precision: str, channels_last: bool, num_threads: int,
                 optimize: bool) -> NetworkBackend:
    return OnnxRuntimeModel(model, num_threads=num_threads)


def _openvino(model: nn.Module, device: str, precision: str, channels_last: bool, num_threads: int,
              optimize: bool) -> NetworkBackend:
    return OpenVinoModel(model, num_threads=num_threads)


BACKENDS: dict[str, BackendSpec] = {spec.name: spec for spec in (
    BackendSpec("torch", _torch, None, ("cpu", "cuda"), ("fp32", "fp16", "bf16"),
                "eager PyTorch, BN folded; CUDA streams on a GPU"),
    BackendSpec("onnxruntime", _onnxruntime, "onnxruntime", ("cpu",), ("fp32",),
                "ONNX Runtime CPU execution provider, all graph optimisations"),
    BackendSpec("openvino", _openvino, "openvino", ("cpu",), ("fp32",),
                "OpenVINO CPU plugin, static shapes per frame size, fp32 pinned"),
)}


def available_backends() -> list[str]:
    """Names of the backends whose packages are installed here, in registry order."""
    return [name for name, spec in BACKENDS.items() if spec.available()]


def create_backend(name: str, model: nn.Module, device: str, precision: str = "fp32", channels_last: bool = False,
                   num_threads: int = 0, optimize: bool = True) -> NetworkBackend:
    """Build the named backend for ``model`` (RuntimeError with the install hint if its package is missing)."""
    spec = BACKENDS[name]
    if not spec.available():
        raise RuntimeError(spec.missing_hint())
    return spec.factory(model, device, precision, channels_last, num_threads, optimize)
