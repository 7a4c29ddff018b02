"""Dataset sources and training augmentation on real files and arrays."""

import cv2
import numpy as np
import pytest
import torch

from ddrnet_ros.data.datasets import AugmentedPairs, CityscapesDataset, DatasetLayoutError, ValidationPairs
from ddrnet_ros.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PAD_COLOR,
    TrainAugmentation,
    letterbox_pad,
    normalize,
)
from ddrnet_ros.engine.preprocess import plan_frame


def write_cityscapes_split(root, split, frames):
    """Write real PNGs in the Cityscapes layout; ``frames`` maps 'city/stem' -> (image, labels)."""
    for name, (image, labels) in frames.items():
        city, stem = name.split("/")
        image_dir = root / "leftImg8bit" / split / city
        label_dir = root / "gtFine" / split / city
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(image_dir / f"{stem}_leftImg8bit.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if labels is not None:
            assert cv2.imwrite(str(label_dir / f"{stem}_gtFine_labelTrainIds.png"), labels)


def random_frame(seed, height=16, width=24):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    labels = rng.integers(0, 19, (height, width), dtype=np.uint8)
    labels[0, :] = 255
    return image, labels


def test_cityscapes_pairs_each_image_with_its_train_id_labels(tmp_path):
    frames = {"bonn/bonn_000001_000019": random_frame(1), "aachen/aachen_000000_000019": random_frame(0),
              "aachen/aachen_000002_000019": random_frame(2)}
    write_cityscapes_split(tmp_path, "train", frames)
    write_cityscapes_split(tmp_path, "val", {"lindau/lindau_000000_000019": random_frame(9)})
    train = CityscapesDataset(tmp_path, "train")
    assert len(train) == 3
    expected = [frames[k] for k in sorted(frames)]  # sorted by city, then file name
    for (image, labels), (want_image, want_labels) in zip((train[i] for i in range(3)), expected):
        assert image.dtype == np.uint8 and image.shape == (16, 24, 3)
        np.testing.assert_array_equal(image, want_image)  # RGB order restored
        np.testing.assert_array_equal(labels, want_labels)
    assert len(CityscapesDataset(tmp_path, "val")) == 1


def test_cityscapes_names_the_expected_layout_when_a_folder_is_missing(tmp_path):
    write_cityscapes_split(tmp_path, "train", {"bonn/bonn_000001_000019": random_frame(1)})
    with pytest.raises(DatasetLayoutError, match=r"leftImg8bit/val.*not found.*gtFine/val/<city>"):
        CityscapesDataset(tmp_path, "val")
    with pytest.raises(DatasetLayoutError, match="not a directory"):
        CityscapesDataset(tmp_path / "nowhere", "train")


def test_cityscapes_reports_images_without_train_id_labels(tmp_path):
    write_cityscapes_split(tmp_path, "train", {"bonn/bonn_000001_000019": (random_frame(1)[0], None)})
    (tmp_path / "gtFine" / "train" / "bonn" / "bonn_000001_000019_gtFine_labelIds.png").write_bytes(b"")
    with pytest.raises(DatasetLayoutError, match="1 of 1 images have no label file.*createTrainIdLabelImgs"):
        CityscapesDataset(tmp_path, "train")


def test_crop_larger_than_the_image_pads_labels_with_ignore():
    image = np.full((10, 12, 3), 200, np.uint8)
    labels = np.full((10, 12), 7, np.uint8)
    augment = TrainAugmentation(crop=(16, 16), scale_range=(1.0, 1.0), flip=False)
    out_image, out_labels = augment(image, labels, np.random.default_rng(0))
    assert out_labels.shape == (16, 16) and out_image.shape == (16, 16, 3)
    assert np.count_nonzero(out_labels == 7) == 10 * 12
    assert np.all((out_labels == 7) | (out_labels == 255))
    assert np.all(out_image[out_labels == 255] == PAD_COLOR)
    assert normalize(out_image)[:, out_labels == 255].abs().max() < 0.01  # padding is ~0 after normalisation
    assert np.all(out_image[out_labels == 7] == 200)


@pytest.mark.parametrize("frame, padded", [((100, 200), (150, 200)),   # 2:1 into 4:3: rows at the bottom
                                           ((300, 200), (300, 400)),   # tall: columns at the right
                                           ((90, 120), (90, 120))])    # the network's aspect: unchanged
def test_letterbox_pad_adds_the_band_the_engine_adds_around_a_frame_of_another_aspect(frame, padded):
    image, labels = random_frame(1, *frame)
    out_image, out_labels = letterbox_pad(image, labels, (720, 960))
    assert out_labels.shape == padded and out_image.shape == (*padded, 3)
    # the image keeps its place at the top-left, the band is mean colour and ignore
    assert np.array_equal(out_image[:frame[0], :frame[1]], image)
    assert np.array_equal(out_labels[:frame[0], :frame[1]], labels)
    band = np.ones(padded, bool)
    band[:frame[0], :frame[1]] = False
    assert np.all(out_labels[band] == 255) and np.all(out_image[band] == PAD_COLOR)
    # the engine puts the frame into 720x960 with the same share of padding
    plan = plan_frame(*frame, (720, 960))
    assert frame[0] / padded[0] == pytest.approx(plan.resized[0] / 720, abs=0.01)
    assert frame[1] / padded[1] == pytest.approx(plan.resized[1] / 960, abs=0.01)


def test_letterbox_augmentation_shows_the_band_in_crops_and_costs_nothing_when_off():
    image, labels = random_frame(2, 128, 256)
    labels[0, :] = 3  # no ignore in the frame itself: any 255 in a crop is the band

    def crops_with_band(augment: TrainAugmentation) -> int:
        return sum(bool(np.any(augment(image, labels, np.random.default_rng(seed))[1] == 255)) for seed in range(20))

    # a bottom band of 43 rows under the 128-row frame, crops of 96 rows: over half of them reach it
    boxed = TrainAugmentation(crop=(96, 128), scale_range=(1.0, 1.0), letterbox=(720, 960), letterbox_p=1.0)
    assert crops_with_band(boxed) >= 6
    assert crops_with_band(TrainAugmentation(crop=(96, 128), scale_range=(1.0, 1.0))) == 0
    plain = TrainAugmentation(crop=(96, 128), scale_range=(0.8, 1.2))
    off = TrainAugmentation(crop=(96, 128), scale_range=(0.8, 1.2), letterbox=(720, 960), letterbox_p=0.0)
    for seed in range(5):
        a, b = plain(image, labels, np.random.default_rng(seed)), off(image, labels, np.random.default_rng(seed))
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])  # the same random stream


def test_augmentation_keeps_image_and_labels_aligned_through_scale_and_flip():
    # Left half class 1 (red), right half class 2 (blue): after any scale/crop/flip, each
    # pixel's colour must still say its label (away from the blurred boundary).
    image = np.zeros((64, 64, 3), np.uint8)
    labels = np.zeros((64, 64), np.uint8)
    image[:, :32], labels[:, :32] = (255, 0, 0), 1
    image[:, 32:], labels[:, 32:] = (0, 0, 255), 2
    augment = TrainAugmentation(crop=(32, 32), scale_range=(0.5, 2.0))
    flipped = 0
    for seed in range(12):
        out_image, out_labels = augment(image, labels, np.random.default_rng(seed))
        red = out_image[..., 0] > 200
        blue = out_image[..., 2] > 200
        assert np.all(out_labels[red] == 1) and np.all(out_labels[blue] == 2)
        assert np.count_nonzero(red | blue) > 0.6 * np.count_nonzero(out_labels != 255)
        columns_1 = np.nonzero((out_labels == 1).any(0))[0]
        columns_2 = np.nonzero((out_labels == 2).any(0))[0]
        if len(columns_1) and len(columns_2) and columns_1.min() > columns_2.max():
            flipped += 1
    assert 0 < flipped < 12


def test_augmented_pairs_depend_only_on_seed_epoch_and_index():
    class Frames(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, index):
            return random_frame(index, 48, 64)

    augment = TrainAugmentation(crop=(32, 32))
    pairs = AugmentedPairs(Frames(), augment, seed=5)
    image_a, labels_a = pairs[(0, 1)]
    image_b, labels_b = AugmentedPairs(Frames(), augment, seed=5)[(0, 1)]
    torch.testing.assert_close(image_a, image_b)
    assert torch.equal(labels_a, labels_b)
    assert image_a.shape == (3, 32, 32) and labels_a.dtype == torch.int64
    assert not torch.equal(pairs[(1, 1)][0], image_a)  # another epoch, another augmentation
    assert not torch.equal(AugmentedPairs(Frames(), augment, seed=6)[(0, 1)][0], image_a)


def test_normalize_applies_imagenet_statistics_on_0_1_rgb():
    image = np.zeros((2, 2, 3), np.uint8)
    image[0, 0] = (255, 0, 128)
    out = normalize(image)
    assert out.shape == (3, 2, 2) and out.dtype == torch.float32
    for channel, value in enumerate((255, 0, 128)):
        want = (value / 255.0 - IMAGENET_MEAN[channel]) / IMAGENET_STD[channel]
        assert out[channel, 0, 0].item() == pytest.approx(want, abs=1e-5)


def test_training_input_equals_what_the_engine_feeds_the_network():
    from ddrnet_ros.engine.preprocess import fill_network_input, plan_frame

    image, _ = random_frame(11, 16, 24)
    frame = torch.zeros(1, 3, 16, 24)
    fill_network_input(frame, torch.from_numpy(image), plan_frame(16, 24), "rgb")
    torch.testing.assert_close(normalize(image), frame[0], rtol=0, atol=1e-5)


def test_validation_pairs_resize_the_image_but_keep_labels_at_full_resolution():
    class Frames(torch.utils.data.Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, index):
            return random_frame(3, 32, 64)

    image, labels = ValidationPairs(Frames(), (16, 32))[0]
    assert image.shape == (3, 16, 32)
    assert labels.shape == (32, 64)
    np.testing.assert_array_equal(labels.numpy(), random_frame(3, 32, 64)[1])


def write_labelled_bag(path, frames, label_order=None, image_topic="/cam/image", label_topic="/cam/labels"):
    """A real rosbag2: ``frames`` is a list of (stamp_ns, image, labels or None)."""
    from ddrnet_ros.data.bags import BagWriter

    with BagWriter(path) as writer:
        for stamp, image, _ in frames:
            writer.write_image(image_topic, image, stamp, "camera")
        labelled = [(stamp, labels) for stamp, _, labels in frames if labels is not None]
        for stamp, labels in (labelled if label_order is None else [labelled[i] for i in label_order]):
            writer.write_image(label_topic, labels, stamp, "camera", encoding="mono8", log_time_ns=stamp + 1)
    return path


def test_bag_dataset_pairs_images_with_labels_of_the_same_stamp(tmp_path):
    from ddrnet_ros.data.datasets import BagDataset

    frames = [(1_000_000_000 + i * 50_000_000, *random_frame(20 + i)) for i in range(4)]
    frames[2] = (frames[2][0], frames[2][1], None)  # one frame without a label
    bag = write_labelled_bag(tmp_path / "labelled", frames, label_order=[2, 0, 1])
    dataset = BagDataset(bag, "/cam/image", "/cam/labels")
    assert len(dataset) == 3 and dataset.unlabelled == 1
    assert dataset.stamps_ns == [frames[i][0] for i in (0, 1, 3)]
    for index, source in enumerate((0, 1, 3)):
        image, labels = dataset[index]
        np.testing.assert_array_equal(image, frames[source][1])
        np.testing.assert_array_equal(labels, frames[source][2])
    assert dataset.describe()["unlabelled_frames"] == 1


def test_bag_dataset_errors_name_the_missing_topic_or_the_unmatched_stamps(tmp_path):
    from ddrnet_ros.data.bags import BagError, BagWriter
    from ddrnet_ros.data.datasets import BagDataset

    image, labels = random_frame(1)
    bag = write_labelled_bag(tmp_path / "no_labels", [(5, image, None)])
    with pytest.raises(BagError, match="topic /cam/labels is not in bag"):
        BagDataset(bag, "/cam/image", "/cam/labels")
    with BagWriter(tmp_path / "unmatched") as writer:
        writer.write_image("/cam/image", image, 5, "camera")
        writer.write_image("/cam/labels", labels, 7, "camera", encoding="mono8")
    with pytest.raises(DatasetLayoutError, match="no /cam/image frame with a label of the same stamp"):
        BagDataset(tmp_path / "unmatched", "/cam/image", "/cam/labels")


def test_synthetic_scenes_render_the_generator_frame_for_each_seed():
    from ddrnet_ros.data.datasets import SyntheticScenes
    from ddrnet_ros.data.synthetic import generate_scene

    scenes = SyntheticScenes([7, 3], height=32, width=64)
    assert len(scenes) == 2
    image, labels = scenes[1]
    frame = generate_scene(3, height=32, width=64)
    np.testing.assert_array_equal(image, frame.image)
    np.testing.assert_array_equal(labels, frame.labels)


def test_synthetic_cache_serves_later_reads_from_its_png_files(tmp_path):
    from ddrnet_ros.data.datasets import SyntheticScenes

    first = SyntheticScenes([5], height=32, width=64, cache_dir=tmp_path)
    image, labels = first[0]
    cached = sorted(p.name for p in tmp_path.rglob("*.png"))
    assert cached == ["5_image.png", "5_labels.png"]
    again_image, again_labels = SyntheticScenes([5], height=32, width=64, cache_dir=tmp_path)[0]
    np.testing.assert_array_equal(again_image, image)  # lossless round trip
    np.testing.assert_array_equal(again_labels, labels)
    # Prove the second read comes from disk: overwrite the cached labels and read once more.
    label_file = next(tmp_path.rglob("5_labels.png"))
    assert cv2.imwrite(str(label_file), np.full_like(labels, 4))
    assert np.all(SyntheticScenes([5], height=32, width=64, cache_dir=tmp_path)[0][1] == 4)
    # Another resolution is another cache entry, rendered afresh.
    assert SyntheticScenes([5], height=16, width=32, cache_dir=tmp_path)[0][1].shape == (16, 32)
