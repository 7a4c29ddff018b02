"""The CUDA path's own code, checked on the CPU: everything here runs without a GPU.

Normalisation rounds once (float32 constants, whatever the frame's dtype); preprocessing reads
nothing from host memory per frame; a frame that raises still synchronises its stream, and CUDA
errors come out as CudaFault; fp32 pipelines switch TF32 off; bf16 is refused on GPUs without
it. What only a GPU can show is in test_cuda.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from ddrnet_ros.classes import ClassMap
from ddrnet_ros.engine import EngineConfigError, Segmenter, SegmenterConfig
from ddrnet_ros.engine.backends.torch_backend import (
    CudaFault,
    TorchModel,
    batch_outputs,
    configure_cuda_math,
    cuda_faults,
    is_cuda_error,
    synchronised_frame,
)
from ddrnet_ros.engine.preprocess import FramePlan, fill_network_input, normalisation, normalisation_on, plan_frame
from ddrnet_ros.engine.requests import FrameRequest
from ddrnet_ros.engine.segmenter import check_cuda_precision

PLANS = {"native": plan_frame(30, 44), "letterbox": plan_frame(30, 44, (24, 48), pad_to_input_size=True),
         "trimmed": plan_frame(30, 44, (24, 48))}
TWO_CLASSES = ClassMap(names=("dark", "bright"), colors=np.array([[0, 0, 0], [255, 255, 255]]))


def every_value_image(height: int = 30, width: int = 44) -> torch.Tensor:
    """HxWx3 uint8 holding every value 0..255 in every channel, each channel in another order."""
    values = np.arange(height * width) % 256
    planes = [values, values[::-1], (values * 7) % 256]
    return torch.from_numpy(np.stack(planes, -1).reshape(height, width, 3).astype(np.uint8))


def reference_frame(image: torch.Tensor, plan: FramePlan, channel_order: str) -> torch.Tensor:
    """The float32 network frame, written without the engine's helpers."""
    rgb = image if channel_order == "rgb" else image.flip(-1)
    chw = rgb.permute(2, 0, 1).to(torch.float32).unsqueeze(0)
    if plan.needs_resize:
        chw = F.interpolate(chw, size=plan.resized, mode="bilinear", align_corners=False)
    scale, shift = normalisation()
    frame = torch.zeros((1, 3, *plan.network))
    frame[:, :, :plan.resized[0], :plan.resized[1]] = chw * scale.view(1, 3, 1, 1) - shift.view(1, 3, 1, 1)
    return frame


# ----------------------------------------------------------------------------- normalisation
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("geometry", PLANS)
@pytest.mark.parametrize("channel_order", ["rgb", "bgr"])
def test_a_low_precision_frame_is_the_float32_frame_rounded_once(dtype, geometry, channel_order):
    """Constants rounded to fp16/bf16 before use put bf16 frames up to 3 half-ulps off; rounding once, none."""
    plan = PLANS[geometry]
    rgb = every_value_image()
    image = rgb if channel_order == "rgb" else rgb.flip(-1).contiguous()
    frame = torch.zeros((1, 3, *plan.network), dtype=dtype)
    fill_network_input(frame, image, plan, channel_order)
    expected = reference_frame(rgb, plan, "rgb")
    if dtype == torch.float32:
        torch.testing.assert_close(frame, expected, rtol=0, atol=1e-6)
    else:
        assert torch.equal(frame, expected.to(dtype))


class OpRecorder(TorchDispatchMode):
    """Every aten op torch runs inside the block."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


#: ops that make a tensor from host data (an index list, torch.tensor(...)) or wait for one (.item(), nonzero)
HOST_READS = ("aten.lift_fresh", "aten._local_scalar_dense", "aten.nonzero")


@pytest.mark.parametrize("geometry", PLANS)
@pytest.mark.parametrize("channel_order", ["rgb", "bgr"])
def test_preprocessing_reads_no_index_from_the_host(geometry, channel_order):
    """On CUDA an index list (``x[[2, 1, 0]]``) is a host-to-device copy, and a sync, every frame."""
    plan = PLANS[geometry]
    frame = torch.zeros((1, 3, *plan.network), dtype=torch.float16)
    image = every_value_image()
    normalisation_on("cpu")  # the shared constants are made once, on first use: not per frame
    with OpRecorder() as recorder:
        fill_network_input(frame, image, plan, channel_order)
    assert recorder.ops and not [op for op in recorder.ops if op.startswith((*HOST_READS, "aten.index"))], recorder.ops


class Mean8(nn.Module):
    """Logits of each 8x8 cell: (dark, bright) from its mean normalised value; nothing from the host."""

    num_classes = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        level = F.avg_pool2d(x.mean(dim=1, keepdim=True), 8)
        return torch.cat([-level, level], dim=1)


LOOKUP = torch.from_numpy(TWO_CLASSES.lookup_table())


def one_frame(model: TorchModel, frame: torch.Tensor, image: torch.Tensor, plan: FramePlan, request: FrameRequest,
              overlay_alpha: float, confidence_threshold: float) -> dict[str, torch.Tensor]:
    """batch_outputs on a batch of one, as the CUDA pipeline runs a single camera's frame."""
    return batch_outputs(model, frame, [image], [plan], [request], LOOKUP, 2, 255, overlay_alpha,
                         confidence_threshold)[0]


def run_frame(model: TorchModel, plan: FramePlan, channel_order: str = "rgb",
              image: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """One frame with every output asked for and a confidence threshold."""
    frame = torch.zeros((1, 3, *plan.network), dtype=model.dtype)
    image = every_value_image(*plan.image) if image is None else image
    request = FrameRequest(image.numpy(), channel_order, want_color=True, want_overlay=True, want_confidence=True)
    return one_frame(model, frame, image, plan, request, overlay_alpha=0.5, confidence_threshold=0.6)


def test_the_whole_device_frame_reads_nothing_from_the_host():
    model = TorchModel(Mean8(), "cpu", fold_bn=False)
    image = every_value_image()
    run_frame(model, PLANS["letterbox"], "bgr", image)  # constants made
    with OpRecorder() as recorder:
        run_frame(model, PLANS["letterbox"], "bgr", image)
    assert not [op for op in recorder.ops if op.startswith(HOST_READS)]


def test_a_batch_of_cameras_gives_each_frame_exactly_what_it_gets_alone():
    """Cross-camera batching: one forward pass over frames of one network size but other image sizes,
    colour orders and wanted outputs; each comes back at its own size, as it would alone."""
    model = TorchModel(Mean8(), "cpu", fold_bn=False)
    plans = [plan_frame(30, 44, (24, 48)), plan_frame(40, 60, (24, 48)), plan_frame(24, 48)]
    requests = [FrameRequest(every_value_image(*plans[0].image).numpy(), "rgb", want_color=True),
                FrameRequest(every_value_image(*plans[1].image).numpy(), "bgr", want_overlay=True,
                             want_confidence=True),
                FrameRequest(every_value_image(*plans[2].image).numpy()[::-1].copy(), "rgb")]
    images = [torch.from_numpy(r.image) for r in requests]
    batched = batch_outputs(model, model.new_frame(3, (24, 48)), images, plans, requests, LOOKUP, 2, 255,
                            overlay_alpha=0.4, confidence_threshold=0.55)
    for outputs, image, plan, r in zip(batched, images, plans, requests):
        alone = one_frame(model, model.new_frame(1, (24, 48)), image, plan, r, overlay_alpha=0.4,
                          confidence_threshold=0.55)
        assert outputs.keys() == alone.keys()
        assert outputs["labels"].shape == plan.image
        for name in alone:
            assert torch.equal(outputs[name], alone[name]), name


def test_frames_are_made_in_the_layout_the_network_runs_in_so_infer_copies_nothing():
    model = TorchModel(Mean8(), "cpu", channels_last=True, fold_bn=False)
    plan = PLANS["letterbox"]
    frame = model.new_frame(2, plan.network)
    assert frame.is_contiguous(memory_format=torch.channels_last) and not frame.any()
    fill_network_input(frame[1:2], every_value_image(), plan, "rgb")
    assert torch.equal(frame[1:2], reference_frame(every_value_image(), plan, "rgb")) and not frame[0].any()
    with OpRecorder() as recorder:
        model.infer(frame)
    assert not [op for op in recorder.ops if op.startswith(("aten.clone", "aten.copy"))], recorder.ops


# ----------------------------------------------------------------------------- failing frames
class FakeStream:
    """Stands in for torch.cuda.Stream: counts synchronisations, may fail like a broken device."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.synchronised = 0
        self.error = error

    def synchronize(self) -> None:
        self.synchronised += 1
        if self.error is not None:
            raise self.error


class Failing(nn.Module):
    """A network that raises ``error`` in its forward."""

    num_classes = 2

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise self.error


CUDA_ERRORS = [RuntimeError("CUDA error: an illegal memory access was encountered"),
               RuntimeError("cuDNN error: CUDNN_STATUS_EXECUTION_FAILED"),
               torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")]
if hasattr(torch, "AcceleratorError"):  # torch >= 2.8
    CUDA_ERRORS.append(torch.AcceleratorError("CUDA error: unspecified launch failure"))


def frame_in(stream: FakeStream, model: nn.Module) -> dict[str, torch.Tensor]:
    """One frame of ``model`` inside the pipeline's per-frame guard, as CudaPipeline.run has it."""
    with synchronised_frame(stream):
        return run_frame(TorchModel(model, "cpu", fold_bn=False), PLANS["native"])


@pytest.mark.parametrize("error", CUDA_ERRORS, ids=lambda e: type(e).__name__ + ":" + str(e)[:12])
def test_a_cuda_error_in_a_frame_is_a_cuda_fault_after_the_stream_is_synchronised(error):
    stream = FakeStream()
    with pytest.raises(CudaFault, match="CUDA fault during inference") as info:
        frame_in(stream, Failing(error))
    assert info.value.__cause__ is error and isinstance(info.value, RuntimeError)
    assert stream.synchronised == 1


@pytest.mark.parametrize("error", [ValueError("bad input"), RuntimeError("shape mismatch in layer 3")])
def test_other_errors_pass_unchanged_and_still_synchronise(error):
    stream = FakeStream()
    with pytest.raises(type(error)) as info:
        frame_in(stream, Failing(error))
    assert info.value is error and not isinstance(info.value, CudaFault)
    assert stream.synchronised == 1


def test_a_failing_synchronisation_is_a_cuda_fault_too():
    broken = RuntimeError("CUDA error: misaligned address")
    stream = FakeStream(broken)
    with pytest.raises(CudaFault) as info:
        frame_in(stream, Mean8())
    assert info.value.__cause__ is broken


def test_a_good_frame_synchronises_once_and_the_next_one_reuses_nothing_stale():
    stream = FakeStream()
    first = frame_in(stream, Mean8())
    assert stream.synchronised == 1
    second = frame_in(stream, Mean8())
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_cuda_faults_does_not_wrap_twice():
    inner = CudaFault("CUDA fault during inference: x")
    with pytest.raises(CudaFault) as info, cuda_faults():
        raise inner
    assert info.value is inner
    assert not is_cuda_error(ValueError("CUDA")) and not is_cuda_error(RuntimeError("expected cuda:0, got cpu"))


# ----------------------------------------------------------------------------- numerics and precision
@pytest.fixture
def tf32_flags() -> Iterator[None]:
    """Leave torch's process-wide TF32 flags as they were."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_an_fp32_pipeline_switches_tf32_off_and_low_precision_leaves_it(tf32_flags):
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    for dtype in (torch.float16, torch.bfloat16):
        configure_cuda_math(dtype)
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    configure_cuda_math(torch.float32)
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32


@pytest.fixture
def gpu_without_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch's view of a Tesla T4 (compute capability 7.5): a CUDA device, no native bf16."""
    from contextlib import nullcontext

    monkeypatch.setattr(SegmenterConfig, "resolved_device", lambda self: "cuda:0")
    monkeypatch.setattr(torch.cuda, "device", lambda device: nullcontext())
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")


def test_bf16_on_a_gpu_without_it_is_refused_before_the_weights_move(gpu_without_bf16):
    config = SegmenterConfig(checkpoint="random", device="cuda", precision="bf16", backend="torch",
                             class_map=TWO_CLASSES)
    with pytest.raises(EngineConfigError) as info:
        Segmenter(config, model=Mean8())
    message = str(info.value)
    assert info.value.field == "precision" and info.value.value == "bf16"
    assert "Tesla T4 (compute capability 7.5) has no bf16 support" in message and "fp32 or fp16" in message
    assert "\n" not in message
    check_cuda_precision("fp16", "cuda:0")  # the other precisions pass
    check_cuda_precision("fp32", "cuda:0")


def test_bf16_passes_on_a_gpu_with_it(gpu_without_bf16, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    check_cuda_precision("bf16", "cuda:0")
