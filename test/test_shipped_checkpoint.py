"""The checkpoint shipped in the package: present, small, official layout, and it segments.

The floor below is well under what the model card measured (README, "Model card"), so that a
broken or swapped checkpoint fails here while ordinary numeric noise does not.
"""

from __future__ import annotations

import numpy as np
import pytest

from ddrnet_ros.data.synthetic import HELDOUT_SEED_START, generate_scene
from ddrnet_ros.engine import Segmenter, SegmenterConfig
from ddrnet_ros.evaluation.metrics import ConfusionAccumulator
from ddrnet_ros.model import create_model, read_metadata, read_state_dict, sha256_of
from ddrnet_ros.resources import DEFAULT_VARIANT, default_checkpoint

PIXEL_ACCURACY_FLOOR = 0.80
MAX_SIZE_BYTES = 25 * 1024 * 1024


def test_shipped_checkpoint_is_in_the_package_and_small_enough():
    path = default_checkpoint()
    assert path.is_file(), f"{path} is missing"
    assert path.stat().st_size <= MAX_SIZE_BYTES


def test_shipped_checkpoint_has_the_official_key_layout_and_its_metadata():
    path = default_checkpoint()
    state = read_state_dict(path)
    expected = create_model(DEFAULT_VARIANT).state_dict()
    assert list(state) == list(expected)
    assert all(state[k].shape == expected[k].shape for k in expected)
    meta = read_metadata(path)
    assert meta["variant"] == DEFAULT_VARIANT
    assert meta["sha256"] == sha256_of(path)
    assert len(meta["class_names"]) == len(meta["palette"]) == 19
    # chosen on CamVid val; sides that divide by 64, DDRNet's deepest stride, keep the branches aligned
    assert meta["network_input_size"] == [768, 1024]
    assert all(side % 64 == 0 for side in meta["network_input_size"])
    assert 0.0 < meta["heldout"]["mIoU"] <= 1.0 and 0.0 < meta["camvid_test"]["mIoU"] <= 1.0


@pytest.mark.parametrize("offset", [500, 501])
def test_shipped_checkpoint_segments_a_held_out_scene(offset):
    frame = generate_scene(HELDOUT_SEED_START + offset, 512, 1024)
    segmenter = Segmenter(SegmenterConfig(device="cpu"))  # every default but the device: the shipped checkpoint
    assert segmenter.checkpoint_path == default_checkpoint()
    labels = segmenter.segment(frame.image).labels
    assert labels.shape == frame.labels.shape
    scores = ConfusionAccumulator(19)
    scores.update(labels, frame.labels)
    accuracy = scores.scores().pixel_accuracy
    assert accuracy >= PIXEL_ACCURACY_FLOOR, f"pixel accuracy {accuracy:.3f} < {PIXEL_ACCURACY_FLOOR}"
    # and it is not painting one class everywhere
    assert len(np.unique(labels)) >= 5
