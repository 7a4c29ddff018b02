"""The synthetic scene generator: deterministic, exact labels, resolution-independent, varied."""

import cv2
import numpy as np
import pytest

from ddrnet_ros.classes import IGNORE_LABEL
from ddrnet_ros.data.synthetic import (
    HELDOUT_SEED_START,
    TRAIN_SEED_RANGE,
    generate_scene,
    generate_sequence,
)

VALID_LABELS = set(range(19)) | {IGNORE_LABEL}


def test_same_seed_gives_identical_bytes_and_other_seeds_differ():
    a = generate_scene(7, 64, 128)
    b = generate_scene(7, 64, 128)
    c = generate_scene(8, 64, 128)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.labels.tobytes() == b.labels.tobytes()
    assert a.image.tobytes() != c.image.tobytes()
    assert (a.labels != c.labels).mean() > 0.05


@pytest.mark.parametrize("size", [(64, 128), (72, 200), (120, 212)])
def test_frames_are_rgb_uint8_with_train_id_labels(size):
    frame = generate_scene(3, *size)
    assert frame.image.shape == (*size, 3) and frame.image.dtype == np.uint8
    assert frame.labels.shape == size and frame.labels.dtype == np.uint8
    assert set(np.unique(frame.labels).tolist()) <= VALID_LABELS


def test_image_varies_inside_every_large_region():
    # texture, lighting and noise: no class is painted as one flat colour
    frame = generate_scene(11, 128, 256)
    for label in np.unique(frame.labels):
        pixels = frame.image[frame.labels == label]
        if len(pixels) > 500:
            assert pixels.std(axis=0).max() > 2.0, f"class {label} is flat"


@pytest.mark.parametrize("seed", [0, 5, 12345])
@pytest.mark.parametrize("small,large", [((80, 160), (240, 480)), ((106, 188), (212, 376))])
def test_a_seed_draws_the_same_scene_at_any_resolution(seed, small, large):
    low = generate_scene(seed, *small).labels
    high = generate_scene(seed, *large).labels
    resized = cv2.resize(high, (small[1], small[0]), interpolation=cv2.INTER_NEAREST)
    assert (resized == low).mean() > 0.95


def test_at_least_twelve_classes_appear_in_half_the_frames():
    frames = 24
    present = np.zeros(256, int)
    for seed in range(1000, 1000 + frames):
        present[np.unique(generate_scene(seed, 128, 256).labels)] += 1
    regular = [c for c in range(19) if present[c] >= frames / 2]
    assert len(regular) >= 12, f"only {regular} appear in half the frames"


def test_sequence_is_deterministic_and_changes_gradually():
    first = list(generate_sequence(42, 5, 64, 128))
    again = list(generate_sequence(42, 5, 64, 128))
    assert len(first) == 5
    for a, b in zip(first, again):
        assert a.image.tobytes() == b.image.tobytes() and a.labels.tobytes() == b.labels.tobytes()
    for prev, nxt in zip(first, first[1:]):
        changed = (prev.labels != nxt.labels).mean()
        assert 0.0 < changed < 0.25


def test_sequence_frames_are_not_training_frames():
    frame = next(generate_sequence(5, 1, 64, 128))
    assert frame.labels.tobytes() != generate_scene(5, 64, 128).labels.tobytes()


def test_driving_forward_brings_the_scene_closer():
    # ego motion: the same world, seen from further along the road, keeps most of its layout
    frames = list(generate_sequence(9, 10, 96, 192))
    drift = [(frames[0].labels != f.labels).mean() for f in frames[1:]]
    assert drift[-1] > drift[0]


def test_seed_ranges_do_not_overlap():
    assert TRAIN_SEED_RANGE.start == 0
    assert HELDOUT_SEED_START >= TRAIN_SEED_RANGE.stop


def test_tiny_frames_are_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="at least 8x8"):
        generate_scene(0, 4, 4)


@pytest.mark.parametrize("seed", [-1, 1.5, "3"])
def test_bad_seeds_are_refused_with_a_clear_error(seed):
    with pytest.raises(ValueError, match="non-negative integers"):
        generate_scene(seed, 16, 32)
