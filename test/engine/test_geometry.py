"""Outputs are pixel-aligned with the input, whatever the network size, resize or padding.

The probe is a real nn.Module plugged in through ``Segmenter(config, model=...)``. Test images
encode each pixel's own coordinate in their colour (x = R + 256 G), so the probe's 1/8 logits
are a known function of position: the mean coordinate of each 8x8 cell. Every step of the
engine (resize, pad, pool-to-1/8 inside the probe, upsample, crop, resize back) is linear, so
in the image interior the engine's logits must reproduce the coordinate of the pixel itself:
logit(x) = x - T exactly. A half-pixel (or 0.01-pixel) shift anywhere breaks that, and the
label edge at x = T must fall between the two expected pixels.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ddrnet_ros.classes import ClassMap
from ddrnet_ros.engine import Segmenter, SegmenterConfig
from ddrnet_ros.engine.preprocess import IMAGENET_MEAN, IMAGENET_STD, plan_frame, round_up
from ddrnet_ros.model import create_model


class PositionProbe(nn.Module):
    """Decodes x = R + 256 G from the normalised input; class 0 where the cell's mean x > threshold."""

    num_classes = 2

    def __init__(self, threshold: float) -> None:
        super().__init__()
        self.threshold = threshold
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pixels = (x * self.std + self.mean) * 255.0
        position = pixels[:, 0:1] + 256.0 * pixels[:, 1:2]
        cell = F.avg_pool2d(position, 8)  # mean of a linear function = its value at the cell centre
        return torch.cat([cell - self.threshold, self.threshold - cell], dim=1)


TWO_CLASSES = ClassMap(names=("above", "below"), colors=np.array([[255, 0, 0], [0, 0, 255]]))


def probe_config(input_size: tuple[int, int] | None, keep_aspect: bool = True, pad: bool = False) -> SegmenterConfig:
    return SegmenterConfig(checkpoint="random", input_size=input_size, keep_aspect=keep_aspect,
                           pad_to_input_size=pad, class_map=TWO_CLASSES, device="cpu")


def ramp_image(height: int, width: int, axis: int) -> np.ndarray:
    """RGB image whose R + 256 G is each pixel's column (axis=1) or row (axis=0) index."""
    coords = np.arange((height, width)[axis])
    plane = np.broadcast_to(coords[None, :] if axis == 1 else coords[:, None], (height, width))
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = plane % 256
    image[..., 1] = plane // 256
    return image


def interior(n_image: int, n_resized: int, margin_net: int = 12) -> slice:
    """Image pixels whose network position is >= margin_net from both ends of the image area.

    Near the ends, bilinear clamping and padding cells make the probe's output non-linear.
    """
    scale = n_image / n_resized
    first = int(np.ceil((margin_net + 0.5) * scale - 0.5))
    last = int(np.floor((n_resized - 8 - margin_net + 0.5) * scale - 0.5))
    assert last - first > 8, "image too small for an interior"
    return slice(first, last + 1)


GEOMETRIES = [
    # (image height, width), input_size, keep_aspect, pad_to_input_size
    ((1080, 1920), None, True, False),          # native: 1080 rows in a 1088-row frame
    ((480, 848), None, True, False),
    ((61, 203), None, True, False),             # odd sides: padded to 64 x 256
    ((1080, 1920), (512, 1024), True, False),   # 512 x 910 in a frame trimmed to 512 x 960
    ((1080, 1920), (512, 1024), True, True),    # letterbox: 512 x 910 plus padding at the right
    ((1080, 1920), (512, 1024), False, False),  # stretch
    ((480, 848), (256, 512), True, False),      # 256 x 452 in 256 x 512
    ((480, 848), (256, 512), True, True),       # 256 x 452 plus padding
    ((480, 848), (384, 384), True, False),      # tall: 217 x 384 in 256 x 384
    ((480, 848), (384, 384), True, True),       # tall letterbox: 217 x 384 plus padding below
    ((90, 160), (256, 512), True, False),       # upscaled into the network
    ((61, 203), (96, 160), False, False),
]
GEOMETRY_IDS = [f"{s[0]}x{s[1]}-{i}-{'pad' if p else 'keep' if k else 'stretch'}" for s, i, k, p in GEOMETRIES]


@pytest.mark.parametrize("size, input_size, keep_aspect, pad", GEOMETRIES, ids=GEOMETRY_IDS)
@pytest.mark.parametrize("axis", [1, 0], ids=["x", "y"])
def test_logits_reproduce_each_pixels_own_coordinate(size, input_size, keep_aspect, pad, axis):
    height, width = size
    threshold = 0.0
    seg = Segmenter(probe_config(input_size, keep_aspect, pad), model=PositionProbe(threshold))
    plan = seg.frame_plan(height, width)
    logits = seg.logits(ramp_image(height, width, axis))
    assert logits.shape == (2, height, width) and logits.dtype == np.float32
    along = interior(size[axis], plan.resized[axis])
    across = interior(size[1 - axis], plan.resized[1 - axis])
    window = (across, along) if axis == 1 else (along, across)
    coords = np.arange(size[axis])[along].astype(np.float32)
    expected = coords[None, :] if axis == 1 else coords[:, None]
    np.testing.assert_allclose(logits[0][window], np.broadcast_to(expected, logits[0][window].shape), atol=0.01)


@pytest.mark.parametrize("size, input_size, keep_aspect, pad", GEOMETRIES, ids=GEOMETRY_IDS)
@pytest.mark.parametrize("offset", [0.25, 0.75])
def test_label_edge_lands_between_the_expected_pixels(size, input_size, keep_aspect, pad, offset):
    height, width = size
    along = interior(width, plan_frame(height, width, input_size, keep_aspect, pad).resized[1])
    edge = (along.start + along.stop) // 2
    # Edge at x = edge - 1 + offset: pixel edge-1 is below it (class 1), pixel edge above (class 0).
    # offset 0.25 catches a shift of the output to the left by > 0.25 px, 0.75 one to the right by > 0.25 px.
    threshold = edge - 1 + offset
    for fast in (True, False):
        seg = Segmenter(probe_config(input_size, keep_aspect, pad),
                        model=PositionProbe(threshold), optimize=fast)
        labels = seg.segment(ramp_image(height, width, axis=1)).labels
        assert labels.shape == (height, width) and labels.dtype == np.uint8
        rows = interior(height, seg.frame_plan(height, width).resized[0])
        expected = np.where(np.arange(width) > threshold, 0, 1).astype(np.uint8)[along]
        np.testing.assert_array_equal(labels[rows, along], np.broadcast_to(expected, labels[rows, along].shape))


def test_bgr_input_gives_the_same_logits_as_rgb():
    seg = Segmenter(probe_config((256, 512)), model=PositionProbe(100.0))
    image = ramp_image(270, 480, axis=1)
    np.testing.assert_array_equal(seg.logits(image[:, :, ::-1].copy(), channel_order="bgr"), seg.logits(image))


class FrameRecorder:
    """Forward hooks that keep what a real DDRNet received and returned."""

    def __init__(self, model: nn.Module) -> None:
        self.inputs: list[torch.Tensor] = []
        self.outputs: list[torch.Tensor] = []
        model.register_forward_pre_hook(lambda _m, args: self.inputs.append(args[0].detach().clone()))
        model.register_forward_hook(lambda _m, _a, out: self.outputs.append(out.detach().clone()))


@pytest.mark.parametrize("size, input_size, keep_aspect, pad", [((480, 848), (192, 256), True, False),
                                                               ((480, 848), (192, 256), True, True),
                                                               ((61, 203), None, True, False),
                                                               ((120, 200), (64, 128), False, False)])
def test_ddrnet_sees_the_image_at_the_planned_place_and_its_logits_come_back_aligned(size, input_size, keep_aspect,
                                                                                     pad):
    height, width = size
    torch.manual_seed(0)
    ddrnet = create_model("ddrnet23_slim", num_classes=19).eval()
    seg = Segmenter(SegmenterConfig(checkpoint="random", input_size=input_size, keep_aspect=keep_aspect,
                                    pad_to_input_size=pad, device="cpu"), model=ddrnet)
    recorder = FrameRecorder(seg.backend.net)  # the backend runs a BN-folded copy of ddrnet
    plan = seg.frame_plan(height, width)
    logits = seg.logits(ramp_image(height, width, axis=1))

    frame = recorder.inputs[-1]
    assert tuple(frame.shape) == (1, 3, *plan.network)
    assert all(side % 64 == 0 for side in plan.network)  # the branches align (ALIGNED_MULTIPLE)
    rh, rw = plan.resized
    if keep_aspect and input_size:
        assert abs(rh / height - rw / width) < 1.0 / min(rh, rw)  # aspect kept
        assert rh == input_size[0] or rw == input_size[1]         # touches the frame on one side
        # padded to input_size, or trimmed to the image: either rounded up to multiples of 64
        content = input_size if pad else (rh, rw)
        assert plan.network == (round_up(content[0]), round_up(content[1]))
    padding = frame.clone()
    padding[:, :, :rh, :rw] = 0
    assert torch.count_nonzero(padding) == 0  # everything outside the image area is zero padding
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    pixels = (frame[0, :, :rh, :rw] * std + mean) * 255.0
    decoded_x = pixels[0] + 256.0 * pixels[1]  # where each network pixel sampled the image
    u = torch.arange(rw, dtype=torch.float32)
    expected_x = ((u + 0.5) * width / rw - 0.5).clamp(0, width - 1)
    torch.testing.assert_close(decoded_x, expected_x.expand(rh, rw), atol=0.02, rtol=0)

    # The returned logits are the network's 1/8 logits, upsampled to the frame, cropped, resized back.
    net_logits = recorder.outputs[-1]
    assert tuple(net_logits.shape[-2:]) == plan.logits_size
    up = F.interpolate(net_logits, size=plan.network, mode="bilinear", align_corners=False)[:, :, :rh, :rw]
    back = F.interpolate(up, size=(height, width), mode="bilinear", align_corners=False)
    np.testing.assert_allclose(logits, back[0].numpy(), atol=1e-4)
