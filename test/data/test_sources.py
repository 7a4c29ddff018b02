"""Training sources by name, mixing them by weight, and camera augmentation."""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np
import pytest
import torch

from ddrnet_ros.classes import CAMVID, ClassMap, TrainingLabelSets
from ddrnet_ros.data.camvid import CamVidDataset
from ddrnet_ros.data.datasets import AugmentedPairs
from ddrnet_ros.data.sources import SOURCES, EncodedLabels, MixedSources, SourceError, data_argument, flatten_data
from ddrnet_ros.data.transforms import CameraAugmentation, TrainAugmentation


class Tagged(torch.utils.data.Dataset):
    """``n`` frames whose pixels say which source and frame they are."""

    def __init__(self, tag: int, n: int) -> None:
        self.tag, self.n = tag, n

    def __len__(self):
        return self.n

    def __getitem__(self, key):
        epoch, index = key
        return torch.tensor([self.tag, index]), torch.tensor(epoch)


def test_data_argument_reads_sources_and_weights():
    assert data_argument("camvid") == [("camvid", 1.0)]
    assert data_argument("camvid:3+synthetic:1") == [("camvid", 3.0), ("synthetic", 1.0)]
    assert flatten_data([[("camvid", 3.0)], [("synthetic", 1.0)]]) == [("camvid", 3.0), ("synthetic", 1.0)]
    assert flatten_data(None) == [("synthetic", 1.0)]


@pytest.mark.parametrize("text, message", [("kitti", "unknown data source 'kitti'"), ("camvid:0", "must be > 0"),
                                           ("camvid:x", "must be a number")])
def test_bad_data_arguments_are_one_line_errors(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        data_argument(text)


def test_a_source_named_twice_is_refused():
    with pytest.raises(SourceError, match="twice"):
        flatten_data([[("camvid", 1.0)], [("camvid", 2.0)]])


def test_mixed_sources_sample_in_the_requested_ratio_and_walk_on_through_the_smaller_source():
    mixed = MixedSources([("real", 3.0, Tagged(0, 30)), ("synthetic", 1.0, Tagged(1, 1000))])
    assert len(mixed) == 40 and mixed.shares() == {"real": 0.75, "synthetic": 0.25}
    seen = Counter()
    synthetic_frames = set()
    for epoch in range(3):
        for index in range(len(mixed)):
            (tag, frame), _ = mixed[(epoch, index)]
            seen[int(tag)] += 1
            if tag == 1:
                synthetic_frames.add(int(frame))
    assert seen == {0: 90, 1: 30}
    assert len(synthetic_frames) == 30  # three epochs took 30 different synthetic frames


def test_the_first_source_is_passed_over_once_per_epoch():
    mixed = MixedSources([("real", 1.0, Tagged(0, 12)), ("synthetic", 1.0, Tagged(1, 5))])
    frames = sorted(int(mixed[(0, i)][0][1]) for i in range(len(mixed)) if mixed[(0, i)][0][0] == 0)
    assert frames == list(range(12))


def test_camvid_labels_are_recoded_to_training_ids(camvid_root):
    sets = TrainingLabelSets.build(ClassMap.builtin(), [CAMVID])
    source = EncodedLabels(CamVidDataset(camvid_root, "train"), sets)
    _, labels = source[0]
    assert set(np.unique(labels)) == {19 + 0, 19 + 3, 19 + 8, 255}


def test_real_sources_are_marked_real():
    assert SOURCES["camvid"].real and not SOURCES["synthetic"].real


def _image(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (64, 96, 3), dtype=np.uint8)


def test_camera_augmentation_changes_only_the_image_and_is_deterministic_per_seed():
    augmentation = TrainAugmentation(crop=(64, 96), scale_range=(1.0, 1.0), flip=False,
                                     camera=CameraAugmentation(p=1.0))
    labels = np.random.default_rng(1).integers(0, 19, (64, 96), dtype=np.uint8)
    image = _image()
    a_image, a_labels = augmentation(image, labels, np.random.default_rng(7))
    b_image, _ = augmentation(image, labels, np.random.default_rng(7))
    np.testing.assert_array_equal(a_labels, labels)
    np.testing.assert_array_equal(a_image, b_image)
    assert a_image.shape == image.shape and a_image.dtype == np.uint8
    assert np.abs(a_image.astype(int) - image).mean() > 2


@pytest.mark.parametrize("effect", ["brightness", "contrast", "saturation", "hue", "gamma", "blur", "noise", "jpeg"])
def test_each_camera_effect_alone_changes_the_image_and_off_changes_nothing(effect):
    image = _image()
    strengths = {name: 0 for name in ("brightness", "contrast", "saturation", "hue", "gamma", "blur", "noise", "jpeg")}
    only = CameraAugmentation(p=1.0, **{**strengths, effect: getattr(CameraAugmentation, effect)})
    changed = [not np.array_equal(only(image, np.random.default_rng(s)), image) for s in range(4)]
    assert any(changed)
    off = CameraAugmentation(p=1.0, **strengths)
    np.testing.assert_array_equal(off(image, np.random.default_rng(0)), image)


def test_camera_noise_is_added_at_the_sources_resolution_before_the_scaling():
    """Sensor noise on a 2x-upscaled frame comes in 2x2 blobs, as the engine's upscaling makes it."""
    strengths = {name: 0 for name in ("brightness", "contrast", "saturation", "hue", "gamma", "blur", "jpeg")}
    noisy = CameraAugmentation(p=1.0, **strengths, noise=40.0)
    augmentation = TrainAugmentation(crop=(128, 192), scale_range=(2.0, 2.0), flip=False, camera=noisy)
    grey = np.full((64, 96, 3), 128, np.uint8)
    image, _ = augmentation(grey, np.zeros((64, 96), np.uint8), np.random.default_rng(3))
    signal = image[..., 0].astype(np.float32) - 128.0
    assert signal.std() > 5  # the draw added noise
    # neighbours in one upscaled cell are strongly correlated; pixel-fine noise would give ~0
    neighbours = np.corrcoef(signal[:, :-1].ravel(), signal[:, 1:].ravel())[0, 1]
    assert neighbours > 0.5, neighbours


def test_augmented_pairs_of_a_mixed_run_share_one_label_encoding(camvid_root):
    sets = TrainingLabelSets.build(ClassMap.builtin(), [CAMVID])
    augmentation = TrainAugmentation(crop=(48, 64), scale_range=(1.0, 1.0))
    camvid = AugmentedPairs(EncodedLabels(CamVidDataset(camvid_root, "train"), sets), augmentation)
    _, labels = camvid[(0, 1)]
    assert labels.dtype == torch.int64 and set(labels.unique().tolist()) <= {19, 22, 27, 255}
