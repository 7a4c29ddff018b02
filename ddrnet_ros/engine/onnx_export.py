"""A DDRNet as an ONNX graph: the in-memory export the ONNX Runtime and OpenVINO backends build
on, and the file ``ddrnet-ros export`` writes.

The graph is the BN-folded network (same outputs up to float rounding): input ``image``
(1, 3, H, W) float32, normalised as in :mod:`~ddrnet_ros.engine.preprocess` (0-1 RGB, ImageNet
mean/std), H and W multiples of 8; output ``logits`` (1, C, H/8, W/8). ``--dynamic`` leaves H
and W free. Upsampling to the image size and argmax stay outside the graph (the engine does
them; see :mod:`~ddrnet_ros.engine.postprocess`). A JSON sidecar next to the file records the
variant, classes, normalisation and the checkpoint it came from.
"""

from __future__ import annotations

import io
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ddrnet_ros.model import INPUT_MULTIPLE
from ddrnet_ros.model.folding import fold_batchnorm

from .loading import LoadedModel
from .preprocess import IMAGENET_MEAN, IMAGENET_STD

INPUT_NAME = "image"
OUTPUT_NAME = "logits"
OPSET = 17


class ExportError(RuntimeError):
    """The model cannot be exported (or exporting is not supported by this torch build)."""


def export_onnx(model: nn.Module, height: int = 512, width: int = 1024, dynamic: bool = True,
                fold_bn: bool = True) -> bytes:
    """The network as ONNX bytes, traced at ``height`` x ``width`` (free H and W if ``dynamic``)."""
    if height % INPUT_MULTIPLE or width % INPUT_MULTIPLE or height < 1 or width < 1:
        raise ExportError(f"export size {height}x{width} must be positive multiples of {INPUT_MULTIPLE}")
    net = fold_batchnorm(model) if fold_bn else model.eval()
    example = torch.zeros(1, 3, height, width)
    dynamic_axes = {INPUT_NAME: {2: "height", 3: "width"}, OUTPUT_NAME: {2: "height_8", 3: "width_8"}}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated in favour of the torch.export one, which
        # needs onnxscript; this one works with the pinned torch and no extra dependency.
        warnings.simplefilter("ignore")
        try:
            # f is annotated as a path only, but the TorchScript exporter (dynamo=False) writes file objects
            torch.onnx.export(net, (example,), buffer, dynamo=False, input_names=[INPUT_NAME],  # type: ignore[arg-type]
                              output_names=[OUTPUT_NAME], opset_version=OPSET, do_constant_folding=True,
                              dynamic_axes=dynamic_axes if dynamic else None)
        except Exception as exc:  # the exporter raises many types
            raise ExportError(f"ONNX export failed: {type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
    return buffer.getvalue()


def export_metadata(loaded: LoadedModel, height: int, width: int, dynamic: bool) -> dict[str, Any]:
    """What a consumer of the ONNX file needs to feed it and read it."""
    class_map = loaded.class_map
    return {
        "variant": loaded.variant,
        "num_classes": loaded.num_classes,
        "class_names": list(class_map.names),
        "palette": class_map.colors.tolist(),
        "ignore_label": class_map.ignore_label,
        "input": {"name": INPUT_NAME, "shape": [1, 3, "height" if dynamic else height, "width" if dynamic else width],
                  "layout": "NCHW", "dtype": "float32", "multiple_of": INPUT_MULTIPLE,
                  "normalization": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "scale": "0-1 RGB"}},
        "output": {"name": OUTPUT_NAME, "stride": 8,
                   "note": "bilinear upsample (align_corners=False) to the input size, then argmax"},
        "checkpoint": str(loaded.checkpoint_path) if loaded.checkpoint_path else None,
        "checkpoint_sha256": loaded.checkpoint_sha256,
        "opset": OPSET,
        "torch_version": torch.__version__,
    }


def check_with_onnxruntime(module: nn.Module, path: Path, height: int, width: int) -> str | None:
    """Run the written graph once and compare with eager PyTorch; an error line or None."""
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime is not installed: skipped the check of the exported graph", file=sys.stderr)
        return None
    x = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {INPUT_NAME: x.numpy()})[0])
    with torch.inference_mode():
        expected = module.eval()(x)
    scale = float(expected.abs().max())
    error = float((got - expected).abs().max()) / max(scale, 1e-6)
    agree = float((got.argmax(1) == expected.argmax(1)).double().mean())
    print(f"checked with ONNX Runtime: max |logit error| {error:.2e} of the logit range, "
          f"1/8 argmax agreement {agree:.4%}")
    if error > 1e-3:
        return f"exported graph disagrees with PyTorch: relative logit error {error:.2e}"
    return None
