"""The CUDA path against the CPU path, on a real GPU; every test here skips without CUDA.

Reference: the CPU Segmenter in fp32, with the shipped (trained) checkpoint on held-out synthetic
street scenes: random weights give near-tied logits everywhere, where any precision flips labels,
while a trained model's ties are a few border pixels, as on real frames. Stated bounds: labels
agree on >= 99.9 % of the pixels in fp32 (TF32 off: the fp32 pipeline switches it off) and on
>= 99.5 % in fp16 and bf16 (bf16 only where the GPU has it; elsewhere it must be refused).
Runs in ``make gpu-check`` (bench/gpu_check.py); ``make test`` runs it too on a machine with CUDA.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ddrnet_ros.classes import ClassMap
from ddrnet_ros.data.synthetic import HELDOUT_SEED_START, generate_scene
from ddrnet_ros.engine import EngineConfigError, Segmenter, SegmenterConfig
from ddrnet_ros.engine.backends.torch_backend import CudaFault, TorchModel, batch_outputs
from ddrnet_ros.engine.config import cuda_unavailable_reason
from ddrnet_ros.engine.loading import load_model
from ddrnet_ros.engine.preprocess import fill_network_input, normalisation_on, plan_frame
from ddrnet_ros.engine.requests import FrameRequest

CUDA_MISSING = None if torch.cuda.is_available() else cuda_unavailable_reason()
pytestmark = pytest.mark.skipif(CUDA_MISSING is not None, reason=f"needs a CUDA device: {CUDA_MISSING}")

AGREEMENT = {"fp32": 0.999, "fp16": 0.995, "bf16": 0.995}
#: image size, network input_size: scaled into the checkpoint's size (a frame trimmed to 384x680), or run at its
#: own size (padded to 8)
GEOMETRIES = {"scaled": ((480, 848), (384, 768)), "native": ((250, 410), None)}
SEEDS = (500, 501, 502, 503)
TWO_CLASSES = ClassMap(names=("dark", "bright"), colors=np.array([[0, 0, 0], [255, 255, 255]]))


def native_bf16() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)


@functools.cache
def scene(size: tuple[int, int], offset: int = SEEDS[0]) -> np.ndarray:
    """A held-out synthetic street scene, made once (read-only: the engine copies what it keeps)."""
    image = generate_scene(HELDOUT_SEED_START + offset, *size).image
    image.flags.writeable = False
    return image


@pytest.fixture(scope="module")
def trained() -> nn.Module:
    """The shipped checkpoint's network, passed as ``model=``: no sidecar, so geometry is the config's."""
    return load_model("ddrnet23_slim").module


@pytest.fixture(scope="module")
def cpu_results(trained) -> dict[str, dict[str, np.ndarray]]:
    """geometry -> the CPU fp32 outputs for its scene: the reference."""
    results = {}
    for name, (size, input_size) in GEOMETRIES.items():
        seg = Segmenter(SegmenterConfig(checkpoint="random", device="cpu", input_size=input_size), model=trained)
        out = seg.segment(scene(size), want_confidence=True)
        assert out.confidence is not None
        results[name] = {"labels": out.labels, "confidence": out.confidence, "logits": seg.logits(scene(size))}
    return results


def cuda_segmenter(model: nn.Module, precision: str = "fp32", input_size: tuple[int, int] | None = None,
                   channels_last: bool = False, **config) -> Segmenter:
    return Segmenter(SegmenterConfig(checkpoint="random", device="cuda", backend="torch", precision=precision,
                                     input_size=input_size, channels_last=channels_last, **config), model=model)


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float((a == b).mean())


@pytest.fixture
def tf32_flags() -> Iterator[None]:
    """Leave torch's process-wide TF32 flags as they were."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


# ----------------------------------------------------------------------------- parity with the CPU
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("precision", AGREEMENT)
def test_cuda_labels_agree_with_the_cpu(trained, cpu_results, precision, geometry, channels_last):
    if precision == "bf16" and not native_bf16():
        pytest.skip(f"{torch.cuda.get_device_name()} has no native bf16 (refusal: test_bf16_is_refused_...)")
    size, input_size = GEOMETRIES[geometry]
    seg = cuda_segmenter(trained, precision, input_size, channels_last)
    assert seg.device.startswith("cuda") and seg.backend.dtype == {"fp32": torch.float32, "fp16": torch.float16,
                                                                   "bf16": torch.bfloat16}[precision]
    out = seg.segment(scene(size), want_color=True, want_overlay=True, want_confidence=True)
    reference = cpu_results[geometry]
    assert out.labels.shape == size and out.color.shape == out.overlay.shape == (*size, 3)
    assert all(a.dtype == np.uint8 for a in (out.labels, out.color, out.overlay, out.confidence))
    share = agreement(out.labels, reference["labels"])
    assert share >= AGREEMENT[precision], f"{precision} {geometry}: {share:.5f} of the labels agree with the CPU"
    assert len(np.unique(out.labels)) >= 5  # a scene of one class would prove little
    np.testing.assert_array_equal(out.color, seg.class_map.lookup_table()[out.labels])
    if precision == "fp32":
        close = np.abs(out.confidence.astype(int) - reference["confidence"].astype(int)) <= 1
        assert close.mean() >= AGREEMENT["fp32"]


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_fp32_logits_are_the_cpu_logits(trained, cpu_results, geometry):
    """fp32 rounding only (about 1e-5 of the logit range); TF32's 10-bit mantissa typically leaves 1e-3."""
    size, input_size = GEOMETRIES[geometry]
    got = cuda_segmenter(trained, "fp32", input_size).logits(scene(size))
    expected = cpu_results[geometry]["logits"]
    assert got.shape == expected.shape and got.dtype == np.float32
    error = np.abs(got - expected).max() / np.abs(expected).max()
    assert error < 2e-4, error


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_bgr_input_gives_the_rgb_results(trained, geometry):
    size, input_size = GEOMETRIES[geometry]
    seg = cuda_segmenter(trained, "fp32", input_size)
    image = scene(size)
    rgb = seg.segment(image, want_overlay=True)
    bgr = seg.segment(np.ascontiguousarray(image[:, :, ::-1]), channel_order="bgr", want_overlay=True)
    assert agreement(bgr.labels, rgb.labels) >= 0.9999  # the same frame: identical up to kernel choice
    same = bgr.labels == rgb.labels
    np.testing.assert_array_equal(bgr.overlay[same], rgb.overlay[same])  # the overlay is RGB either way


# ----------------------------------------------------------------------------- precision settings
def test_fp32_switches_tf32_off_and_fp16_leaves_it(trained, tf32_flags):
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    cuda_segmenter(trained, "fp16")
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    cuda_segmenter(trained, "fp32")
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32


def test_bf16_is_refused_where_the_gpu_has_none(trained):
    if native_bf16():
        pytest.skip(f"{torch.cuda.get_device_name()} has native bf16 (parity: test_cuda_labels_agree_with_the_cpu)")
    with pytest.raises(EngineConfigError, match="has no bf16 support") as info:
        cuda_segmenter(trained, "bf16")
    assert info.value.field == "precision"


# ----------------------------------------------------------------------------- streams and threads
def test_threads_with_their_own_stream_keys_get_their_own_results(trained):
    """Four cameras at once, two sizes, each size twice: a buffer shared by mistake shows as wrong labels."""
    seg = cuda_segmenter(trained, "fp16", GEOMETRIES["scaled"][1])
    images = {f"cam{i}": scene(GEOMETRIES["scaled" if i < 2 else "native"][0], SEEDS[i]) for i in range(4)}
    expected = {key: seg.segment(image).labels for key, image in images.items()}
    got: dict[str, list[np.ndarray]] = {key: [] for key in images}
    errors: list[BaseException] = []

    def camera(key: str) -> None:
        try:
            for _ in range(5):
                got[key].append(seg.segment(images[key], want_confidence=True, stream_key=key).labels)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=camera, args=(key,)) for key in images]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and not any(thread.is_alive() for thread in threads), errors
    assert set(seg._cuda._states) >= set(images)  # one stream per key
    for key, results in got.items():
        assert len(results) == 5
        for labels in results:
            assert agreement(labels, expected[key]) >= 0.9999, key
    assert not np.shares_memory(got["cam0"][0], got["cam0"][1])  # fresh arrays


# ----------------------------------------------------------------------------- failures and syncs
class Probe(nn.Module):
    """Two logits per 8x8 cell; keeps its stream busy for ``sleep_cycles`` first, then raises ``error`` if set."""

    num_classes = 2

    def __init__(self, sleep_cycles: int = 0) -> None:
        super().__init__()
        self.sleep_cycles = sleep_cycles
        self.error: BaseException | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sleep_cycles:
            torch.cuda._sleep(self.sleep_cycles)  # on the current stream: the camera's
        if self.error is not None:
            raise self.error
        return F.avg_pool2d(x[:, :2].float(), 8)


def slow_probe_segmenter() -> tuple[Segmenter, Probe]:
    """A CUDA segmenter whose network takes ~0.1 s of GPU time, and that network (the segmenter's own copy)."""
    seg = Segmenter(SegmenterConfig(checkpoint="random", device="cuda", class_map=TWO_CLASSES),
                    model=Probe(sleep_cycles=200_000_000), optimize=False)
    assert isinstance(seg.backend, TorchModel) and isinstance(seg.backend.net, Probe)
    return seg, seg.backend.net


def stream_of(seg: Segmenter, key: str) -> torch.cuda.Stream:
    assert seg._cuda is not None
    return seg._cuda._states[key].stream.stream


def test_a_frame_that_raises_still_waits_for_its_stream_and_the_next_frame_works():
    seg, probe = slow_probe_segmenter()
    image = scene((64, 96))
    probe.error = ValueError("model bug")
    with pytest.raises(ValueError, match="model bug"):
        seg.segment(image, stream_key="cam")
    assert stream_of(seg, "cam").query()  # the sleep finished before the error left: the buffers are free
    probe.error = None
    assert seg.segment(image, stream_key="cam").labels.shape == (64, 96)


def test_a_cuda_error_in_a_frame_is_a_cuda_fault():
    seg, probe = slow_probe_segmenter()
    probe.error = injected = RuntimeError("CUDA error: injected by the test")
    with pytest.raises(CudaFault) as info:
        seg.segment(scene((64, 96)), stream_key="cam")
    assert info.value.__cause__ is injected
    assert stream_of(seg, "cam").query()


@contextmanager
def sync_debug_errors() -> Iterator[None]:
    """Every implicit host-device synchronisation (an index copied from the host, ``.item()``) raises."""
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("input_size", [None, (48, 64)], ids=["native", "resized"])
def test_the_device_frame_never_synchronises_with_the_host(input_size):
    """The pipeline's one synchronisation per frame is its own stream.synchronize(): none hides in the work."""
    device = torch.device("cuda:0")
    model = TorchModel(Probe(), "cuda:0", "fp16", fold_bn=False)
    lookup = torch.from_numpy(TWO_CLASSES.lookup_table()).to(device)
    image = torch.from_numpy(np.array(scene((60, 100)))).to(device)
    bgr = image.flip(-1).contiguous()
    plan = plan_frame(60, 100, input_size)
    frame = torch.zeros((1, 3, *plan.network), dtype=torch.float16, device=device)
    normalisation_on(device)  # made once per process, with a copy from the host
    torch.cuda.synchronize()
    with sync_debug_errors():
        fill_network_input(frame, bgr, plan, "bgr")
        request = FrameRequest(np.zeros((1, 1, 3), np.uint8), "rgb", want_color=True, want_overlay=True,
                               want_confidence=True)  # the flags; the image is the device tensor
        batch_outputs(model, frame, [image], [plan], [request], lookup, 2, 255, overlay_alpha=0.5,
                      confidence_threshold=0.6)
    torch.cuda.synchronize()
