"""Postprocessing: the composed logits->image map equals the literal resizes, and the border-only
label shortcut gives the reference labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

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


def test_fast_labels_on_noise_fall_back_and_still_agree():
    plan = plan_frame(64, 96)
    logits = torch.randn(1, 19, *plan.logits_size, generator=torch.Generator().manual_seed(1))
    border = ImageMap.build(plan)
    reference = reference_logits(logits, plan)[0].argmax(0).to(torch.uint8)
    assert torch.equal(fast_labels(logits, border), reference)
    assert FAST_LABELS_MAX_BORDER_SHARE < 1.0


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


@pytest.mark.parametrize("size, input_size, keep, expected_resized, expected_network", [
    ((1080, 1920), None, True, (1080, 1920), (1080, 1920)),  # 1080 = 135 x 8: no padding
    ((1082, 1921), None, True, (1082, 1921), (1088, 1928)),
    ((1080, 1920), (512, 1024), True, (512, 910), (512, 1024)),
    ((1080, 1920), (512, 1024), False, (512, 1024), (512, 1024)),
    ((480, 848), (384, 384), True, (217, 384), (384, 384)),
    ((7, 9), None, True, (7, 9), (8, 16)),
])
def test_frame_plan_sizes(size, input_size, keep, expected_resized, expected_network):
    plan = plan_frame(*size, input_size, keep)
    assert plan.resized == expected_resized and plan.network == expected_network
    assert plan.logits_size == (expected_network[0] // 8, expected_network[1] // 8)
    assert np.all(np.asarray(plan.network) >= np.asarray(plan.resized))
