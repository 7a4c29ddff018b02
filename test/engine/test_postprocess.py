"""Postprocessing: the composed logits->image map equals the literal resizes, the border-only
label shortcut and the tiled path give the reference labels (and confidence), and a frame's
memory stays bounded whatever its content."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ddrnet_ros import classes
from ddrnet_ros.engine import Segmenter, SegmenterConfig, postprocess
from ddrnet_ros.engine import segmenter as segmenter_module
from ddrnet_ros.engine.postprocess import (
    BLOCK,
    FAST_LABELS_MAX_BORDER_SHARE,
    AxisBlocks,
    AxisMap,
    ImageMap,
    apply_threshold,
    confidence_to_uint8,
    fast_labels,
    labels_and_confidence,
    reference_logits,
    tiled_labels,
)
from ddrnet_ros.engine.preprocess import plan_frame

PLANS = [((1080, 1920), None, True), ((1080, 1920), (512, 1024), True), ((480, 848), (256, 512), False),
         ((61, 203), None, True), ((90, 160), (256, 512), True), ((1024, 2048), None, True)]
IDS = [f"{s[0]}x{s[1]}-{i}-{k}" for s, i, k in PLANS]


def smooth_logits(plan, num_classes: int = 19, seed: int = 0) -> torch.Tensor:
    """Logits with spatially coherent classes (like a trained net), at the plan's 1/8 grid."""
    generator = torch.Generator().manual_seed(seed)
    h, w = plan.logits_size
    coarse = torch.randn(1, num_classes, max(2, h // 6), max(2, w // 6), generator=generator) * 4
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False) + \
        0.3 * torch.randn(1, num_classes, h, w, generator=generator)


@pytest.mark.parametrize("size, input_size, keep", PLANS, ids=IDS)
def test_composed_axis_maps_equal_upsample_crop_resize(size, input_size, keep):
    plan = plan_frame(*size, input_size, keep)
    image_map = ImageMap.build(plan)
    logits = torch.randn(1, 3, *plan.logits_size, dtype=torch.float64)
    composed = torch.einsum("yh,chw,xw->cyx", image_map.rows.dense().double(), logits[0],
                            image_map.cols.dense().double())
    torch.testing.assert_close(composed, reference_logits(logits, plan)[0], atol=1e-5, rtol=0)
    # each image pixel is a convex combination of logit cells
    for axis in (image_map.rows, image_map.cols):
        assert (axis.weights >= 0).all()
        torch.testing.assert_close(axis.weights.sum(1), torch.ones(axis.start.shape[0]))


def test_plain_upsampling_uses_two_cells_per_axis():
    axis = AxisMap.build(n_cells=4, n_network=32, n_resized=32, n_image=32)
    assert axis.taps == 2
    # pixel 3 and 4 straddle the first cell centre (3.5): 1/16 and 15/16 of the way
    assert axis.start[:8].tolist() == [0, 0, 0, 0, 0, 0, 0, 0]
    torch.testing.assert_close(axis.weights[3], torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(axis.weights[4], torch.tensor([15 / 16, 1 / 16]))
    torch.testing.assert_close(axis.weights[31], torch.tensor([0.0, 1.0]))


@pytest.mark.parametrize("n_cells, n_network, n_resized, n_image", [(128, 1024, 1024, 1024), (8, 64, 61, 61),
                                                                    (64, 512, 455, 1080), (32, 256, 256, 90)])
def test_blocks_cover_every_pixel_once_and_share_their_cells(n_cells, n_network, n_resized, n_image):
    axis = AxisMap.build(n_cells, n_network, n_resized, n_image)
    blocks = AxisBlocks.build(axis)
    pixels = blocks.pixels[blocks.pixels >= 0]
    assert sorted(pixels.tolist()) == list(range(n_image))  # each pixel in exactly one block
    assert blocks.pixels.shape[1] == BLOCK
    for b in range(blocks.start.shape[0]):
        members = blocks.pixels[b][blocks.pixels[b] >= 0]
        assert (blocks.block_of[members] == b).all()
        assert (axis.start[members] == blocks.start[b]).all()  # one window of cells per block
        torch.testing.assert_close(blocks.weights[b][: members.shape[0]], axis.weights[members])


@pytest.mark.parametrize("size, input_size, keep", PLANS, ids=IDS)
def test_fast_labels_equal_reference_argmax(size, input_size, keep):
    plan = plan_frame(*size, input_size, keep)
    logits = smooth_logits(plan)
    reference = reference_logits(logits, plan)[0].argmax(0).to(torch.uint8)
    fast = fast_labels(logits, ImageMap.build(plan))
    assert fast.shape == reference.shape == plan.image and fast.dtype == torch.uint8
    agreement = (fast == reference).double().mean().item()
    assert agreement >= 0.99999, agreement  # only exact float ties may differ


@pytest.mark.parametrize("fallback", [False, True])
def test_fast_labels_on_noise_agree_by_blocks_or_on_the_tiled_path(fallback, monkeypatch):
    plan = plan_frame(64, 96)
    logits = torch.randn(1, 19, *plan.logits_size, generator=torch.Generator().manual_seed(1))
    border = ImageMap.build(plan)
    reference = reference_logits(logits, plan)[0].argmax(0).to(torch.uint8)
    tiled_calls = []
    real_label_bands = postprocess._label_bands
    monkeypatch.setattr(postprocess, "_label_bands", lambda *args: tiled_calls.append(1) or real_label_bands(*args))
    monkeypatch.setattr(postprocess, "TILE_PIXELS", 5 * BLOCK * BLOCK)  # mixed blocks in chunks of 5
    assert torch.equal(fast_labels(logits, border, fallback=fallback), reference)
    assert bool(tiled_calls) == fallback  # noise: every block is mixed, over the fallback share
    assert FAST_LABELS_MAX_BORDER_SHARE < 1.0


def test_fast_labels_run_their_shortcut_on_one_thread_and_leave_the_callers_count(monkeypatch):
    """The shortcut's small ops run single-threaded (2.2x faster under load, the same idle); the tiled
    fallback keeps every thread; the caller's setting is restored, also after an error."""
    plan = plan_frame(64, 96)
    smooth = smooth_logits(plan)
    noise = torch.randn(1, 19, *plan.logits_size, generator=torch.Generator().manual_seed(1))
    seen: dict[str, int] = {}
    real_blocks, real_bands = postprocess._label_blocks, postprocess._label_bands
    monkeypatch.setattr(postprocess, "_label_blocks",
                        lambda *a: seen.__setitem__("blocks", torch.get_num_threads()) or real_blocks(*a))
    monkeypatch.setattr(postprocess, "_label_bands",
                        lambda *a: seen.__setitem__("bands", torch.get_num_threads()) or real_bands(*a))
    before = torch.get_num_threads()
    with postprocess.torch_threads(2):
        fast_labels(smooth, ImageMap.build(plan), fallback=True)
        fast_labels(noise, ImageMap.build(plan), fallback=True)
        assert torch.get_num_threads() == 2
    assert seen == {"blocks": 1, "bands": 2}
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError), postprocess.torch_threads(1):
        raise ValueError("labels failed")
    assert torch.get_num_threads() == before


def test_torch_threads_is_the_calling_threads_own_setting():
    """What lets a node's camera threads label frames single-threaded while another thread keeps two
    (torch's OpenMP build: the count is per OS thread)."""
    import threading

    inside: list[int] = []
    ready, done = threading.Event(), threading.Event()

    def worker() -> None:
        with postprocess.torch_threads(1):
            inside.append(torch.get_num_threads())
            ready.set()
            done.wait(10)

    with postprocess.torch_threads(2):
        thread = threading.Thread(target=worker)
        thread.start()
        assert ready.wait(10)
        assert torch.get_num_threads() == 2 and inside == [1]
        done.set()
        thread.join()


#: Plans of the tiled path, small twins of the geometries above (letterbox upscaled, stretched, native
#: odd sizes padded, an image smaller than the network: blocks of single rows), tiny images, and a
#: wide one (one block of rows is over the budget).
TILED_PLANS = [((270, 480), (128, 256), True), ((240, 424), (128, 256), False), ((61, 203), None, True),
               ((90, 160), (256, 512), True), ((1, 1), None, True), ((3, 500), (64, 64), True),
               ((7, 9), None, True), ((9, 4000), None, True)]
TILED_IDS = [f"{s[0]}x{s[1]}-{i}-{k}" for s, i, k in TILED_PLANS]


@pytest.mark.parametrize("budget", [1, 3 * BLOCK * 203, 1 << 16])
@pytest.mark.parametrize("size, input_size, keep", TILED_PLANS, ids=TILED_IDS)
def test_tiled_labels_and_confidence_equal_reference_in_bounded_bands(size, input_size, keep, budget, monkeypatch):
    """Any band height (one block of rows, a few, the default) gives the reference's labels and
    confidence, and no band holds more than the budget (or one block of rows when that is more)."""
    plan = plan_frame(*size, input_size, keep)
    image_map = ImageMap.build(plan)
    logits = 3 * torch.randn(1, 19, *plan.logits_size, generator=torch.Generator().manual_seed(2))
    band_pixels = []
    real_band_logits = postprocess._band_logits

    def recorded(*args):
        band = real_band_logits(*args)  # (rows, C, W)
        band_pixels.append(band.shape[0] * band.shape[2])
        return band

    monkeypatch.setattr(postprocess, "_band_logits", recorded)
    monkeypatch.setattr(postprocess, "TILE_PIXELS", budget)
    labels, confidence = tiled_labels(logits, image_map, want_confidence=True)
    labels_only, none = tiled_labels(logits, image_map, want_confidence=False)
    assert none is None and torch.equal(labels, labels_only)
    assert labels.shape == confidence.shape == plan.image and labels.dtype == torch.uint8
    assert max(band_pixels) <= max(budget, BLOCK * plan.image[1])
    reference, _ = labels_and_confidence(reference_logits(logits, plan), want_confidence=True)
    agreement = (labels == reference).double().mean().item()
    assert agreement >= 0.9999, agreement  # only float-rounding ties may differ (observed: 100 %)
    # The float32 reference itself is up to 2e-5 off in confidence where it resizes (two float32 resizes
    # round more than one composed map); against float64 the tiled path is within 1e-6.
    exact = labels_and_confidence(reference_logits(logits.double(), plan), want_confidence=True)[1]
    torch.testing.assert_close(confidence.double(), exact, atol=1e-5, rtol=0)


@pytest.mark.parametrize("size, input_size, keep", TILED_PLANS[:4], ids=TILED_IDS[:4])
def test_fast_labels_in_small_chunks_of_blocks_equal_reference(size, input_size, keep, monkeypatch):
    plan = plan_frame(*size, input_size, keep)
    logits = smooth_logits(plan)
    monkeypatch.setattr(postprocess, "TILE_PIXELS", 7 * BLOCK * BLOCK)  # 7 mixed blocks at a time
    reference = reference_logits(logits, plan)[0].argmax(0).to(torch.uint8)
    agreement = (fast_labels(logits, ImageMap.build(plan)) == reference).double().mean().item()
    assert agreement >= 0.99999, agreement


class NoiseLogits(nn.Module):
    """Seeded noise logits at 1/8 of the input, whatever the input: every block mixed."""

    num_classes = 19

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        generator = torch.Generator().manual_seed(3)
        return 3 * torch.randn(x.shape[0], self.num_classes, x.shape[2] // 8, x.shape[3] // 8, generator=generator)


@pytest.mark.parametrize("input_size", [None, (128, 256)])
def test_segmenter_confidence_and_noise_labels_take_the_tiled_path_and_match_the_plain_baseline(input_size,
                                                                                                 monkeypatch):
    image = np.random.default_rng(4).integers(0, 256, (203, 301, 3), np.uint8)
    full_size = []  # calls of the reference (all classes at the image size) by the Segmenter
    monkeypatch.setattr(segmenter_module, "reference_logits",
                        lambda *args: full_size.append(1) or reference_logits(*args))
    outputs = {}
    for optimize in (True, False):
        seg = Segmenter(SegmenterConfig(checkpoint="random", input_size=input_size, device="cpu"),
                        model=NoiseLogits(), optimize=optimize)
        outputs[optimize] = (seg.segment(image, want_confidence=True, confidence_threshold=0.5),
                             seg.segment(image).labels)
        assert len(full_size) == (0 if optimize else 2)
    (tiled, noise_labels), (plain, plain_labels) = outputs[True], outputs[False]
    assert (noise_labels == plain_labels).mean() >= 0.9999  # fast_labels fell back to the tiled path
    assert (tiled.labels == plain.labels).mean() >= 0.9999  # thresholded to the ignore label alike
    assert (tiled.labels == 255).any() and (tiled.labels != 255).any()
    assert np.abs(tiled.confidence.astype(int) - plain.confidence).max() <= 1  # rounding to uint8 only


@pytest.mark.parametrize("band_pixels", [1, 1000, 1 << 16])
def test_overlay_in_bands_of_rows_equals_one_go(band_pixels, monkeypatch):
    class_map = classes.ClassMap.builtin()
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (67, 131, 3), np.uint8)
    labels = rng.integers(0, 22, (67, 131), np.uint8)
    labels[labels >= class_map.num_classes] = class_map.ignore_label
    whole = classes._overlay_band(image[:, :, ::-1], labels, class_map, 0.3)  # the formula in one go
    monkeypatch.setattr(classes, "OVERLAY_BAND_PIXELS", band_pixels)
    np.testing.assert_array_equal(classes.overlay(image[:, :, ::-1], labels, class_map, 0.3), whole)


#: Peak RSS growth of one 3840x2160 noise frame with confidence and colours, in a fresh process (so
#: the measure is its own): the Segmenter with a small network input, where only the postprocessing
#: works at the image size. Measured: +93 MiB (~12 B/px: the outputs and the float image of the
#: resize in preprocessing); before the tiled path, +1875 MiB (~237 B/px: all 19 classes at full size,
#: twice). The bound is far from both.
PEAK_MIB_BOUND = 400
PEAK_SCRIPT = textwrap.dedent("""
    import json
    from pathlib import Path
    import numpy as np
    import torch
    from ddrnet_ros.engine import Segmenter, SegmenterConfig
    from ddrnet_ros.model import create_model

    def vm_mib(field):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024

    torch.manual_seed(0)
    model = create_model("ddrnet23_slim", num_classes=19).eval()
    seg = Segmenter(SegmenterConfig(checkpoint="random", input_size=(256, 512), num_threads=1, device="cpu"),
                    model=model)
    image = np.random.default_rng(0).integers(0, 256, (2160, 3840, 3), np.uint8)
    seg.segment(image[:64, :64].copy(), want_color=True, want_confidence=True)  # buffers of the warm-up exist
    seg.frame_plan(2160, 3840)  # the plan and its maps (small) are made before the measure
    before = vm_mib("VmRSS")
    try:  # VmHWM back to the current RSS; where not allowed, the peak read below is an upper bound
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    result = seg.segment(image, want_color=True, want_confidence=True)
    print(json.dumps({"peak_mib": vm_mib("VmHWM") - before, "shape": list(result.confidence.shape)}))
""")


def test_a_large_noise_frame_with_confidence_grows_the_memory_by_a_bounded_amount():
    done = subprocess.run([sys.executable, "-c", PEAK_SCRIPT], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    peak = measured["peak_mib"]
    print(f"3840x2160 noise frame, confidence + colours: peak RSS +{peak:.0f} MiB = "
          f"{peak * 2**20 / (3840 * 2160):.1f} bytes per pixel")
    assert measured["shape"] == [2160, 3840]
    assert peak < PEAK_MIB_BOUND, f"peak +{peak:.0f} MiB"


def test_uniform_logits_give_one_label_everywhere():
    plan = plan_frame(100, 150, (64, 128), True)
    logits = torch.zeros(1, 5, *plan.logits_size)
    logits[:, 3] = 2.0
    labels = fast_labels(logits, ImageMap.build(plan))
    assert torch.equal(labels, torch.full(plan.image, 3, dtype=torch.uint8))


def test_confidence_is_max_softmax_and_threshold_sets_ignore():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0], [-1.0, 3.0]]).T.reshape(1, 3, 1, 2)  # 3 classes, 1x2 image
    labels, confidence = labels_and_confidence(logits, want_confidence=True)
    expected = torch.softmax(logits[0], dim=0).max(dim=0).values
    torch.testing.assert_close(confidence, expected)
    assert labels.tolist() == [[0, 2]]
    assert confidence_to_uint8(torch.tensor([0.0, 0.5, 1.0])).tolist() == [0, 128, 255]
    apply_threshold(labels, confidence, threshold=0.9, ignore_label=255)
    assert labels.tolist() == [[255, 2]]  # first pixel: softmax max 0.79 < 0.9
    labels_only, none = labels_and_confidence(logits, want_confidence=False)
    assert none is None and labels_only.tolist() == [[0, 2]]


@pytest.mark.parametrize("size, input_size, keep, pad, expected_resized, expected_network", [
    ((1080, 1920), None, True, False, (1080, 1920), (1088, 1920)),  # 1920 = 30 x 64; 1080 is not
    ((1082, 1921), None, True, False, (1082, 1921), (1088, 1984)),
    ((1080, 1920), (512, 1024), True, False, (512, 910), (512, 960)),  # trimmed to the image (aligned)
    ((1080, 1920), (512, 1024), True, True, (512, 910), (512, 1024)),  # padded to input_size
    ((1080, 1920), (512, 1024), False, False, (512, 1024), (512, 1024)),
    ((1080, 1920), (512, 1024), False, True, (512, 1024), (512, 1024)),
    ((480, 848), (384, 384), True, False, (217, 384), (256, 384)),
    ((480, 848), (384, 384), True, True, (217, 384), (384, 384)),
    ((1024, 2048), (768, 1024), True, False, (512, 1024), (512, 1024)),  # a 2:1 camera, shipped size
    ((360, 480), (768, 1024), True, False, (768, 1024), (768, 1024)),  # CamVid, upscaled, shipped size
    ((1080, 1920), (768, 1024), True, False, (576, 1024), (576, 1024)),  # 16:9, shipped size
    ((1024, 2048), (720, 960), True, False, (480, 960), (512, 960)),  # 480 rows padded to 512
    ((360, 480), (720, 960), True, False, (720, 960), (768, 960)),  # 720 rows run aligned in 768
    ((360, 480), (720, 960), False, True, (720, 960), (768, 960)),  # stretched, padded the same way
    ((7, 9), None, True, False, (7, 9), (64, 64)),
])
def test_frame_plan_sizes(size, input_size, keep, pad, expected_resized, expected_network):
    plan = plan_frame(*size, input_size, keep, pad)
    assert plan.resized == expected_resized and plan.network == expected_network
    assert plan.logits_size == (expected_network[0] // 8, expected_network[1] // 8)
    assert np.all(np.asarray(plan.network) >= np.asarray(plan.resized))
