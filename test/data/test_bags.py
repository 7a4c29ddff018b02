"""Bags written by BagWriter read back exactly, are real CDR, and bad bags fail in one line."""

from __future__ import annotations

import numpy as np
import pytest
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore

from ddrnet_ros.data.bags import IMAGE, BagError, BagReader, BagWriter, typestore

H, W = 24, 32
CAMERA, LABELS, COMPRESSED = "/camera/image_raw", "/camera/labels", "/camera/image_raw/compressed"


def _frames(n: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray, int]]:
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, 256, (H, W, 3), np.uint8), rng.integers(0, 19, (H, W), np.uint8),
             1_700_000_000 * 10**9 + i * 100_000_001) for i in range(n)]


def _write(path, storage="sqlite3", frames=None, labels=True, compressed=True):
    frames = frames if frames is not None else _frames(3)
    with BagWriter(path, storage) as writer:
        for image, label, stamp in frames:
            writer.write_image(CAMERA, image, stamp, "camera_optical")
            if labels:
                writer.write_image(LABELS, label, stamp, "camera_optical", encoding="mono8")
            if compressed:
                writer.write_compressed(COMPRESSED, image, stamp, "camera_optical", format="png")
    return frames


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_images_labels_and_compressed_frames_read_back_exactly(tmp_path, storage):
    frames = _write(tmp_path / "bag", storage)
    with BagReader(tmp_path / "bag") as bag:
        assert {t.name: (t.msgtype, t.count) for t in bag.topics.values()} == {
            CAMERA: (IMAGE, 3), LABELS: (IMAGE, 3), COMPRESSED: ("sensor_msgs/msg/CompressedImage", 3)}
        pairs = list(bag.labelled_images(CAMERA, LABELS))
        compressed = list(bag.images(COMPRESSED))
    assert len(pairs) == len(compressed) == 3
    for (image, label, stamp), (frame, gt), packed in zip(frames, pairs, compressed):
        assert frame.stamp_ns == gt.stamp_ns == packed.stamp_ns == stamp
        assert frame.frame_id == gt.frame_id == "camera_optical"
        np.testing.assert_array_equal(frame.pixels, image)
        np.testing.assert_array_equal(gt.pixels, label)
        np.testing.assert_array_equal(packed.pixels, image)  # png is lossless


def test_jpeg_frames_decode_close_to_the_original(tmp_path):
    image = np.full((H, W, 3), (200, 40, 90), np.uint8)
    with BagWriter(tmp_path / "bag", "mcap") as writer:
        writer.write_compressed(CAMERA, image, 5, "cam", format="jpeg", quality=95)
    with BagReader(tmp_path / "bag") as bag:
        (frame,) = bag.images(CAMERA)
    assert np.abs(frame.pixels.astype(int) - image).max() <= 4


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_stored_bytes_are_cdr_that_rclpy_and_rosbags_deserialise(tmp_path, storage):
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CompressedImage, Image

    frames = _write(tmp_path / "bag", storage)
    other_store = get_typestore(Stores.ROS2_HUMBLE)  # a second, independent set of definitions
    with Reader(tmp_path / "bag") as reader:  # rosbags' own reader, not ours
        raw = {(c.topic, ts): data for c, ts, data in reader.messages()}
    image, label, stamp = frames[1]
    camera_bytes = raw[(CAMERA, stamp)]

    ros_msg = deserialize_message(camera_bytes, Image)
    assert (ros_msg.header.stamp.sec, ros_msg.header.stamp.nanosec) == divmod(stamp, 10**9)
    assert ros_msg.header.frame_id == "camera_optical"
    assert (ros_msg.height, ros_msg.width, ros_msg.encoding, ros_msg.step) == (H, W, "rgb8", W * 3)
    np.testing.assert_array_equal(np.frombuffer(bytes(ros_msg.data), np.uint8).reshape(H, W, 3), image)

    ros_label = deserialize_message(raw[(LABELS, stamp)], Image)
    assert ros_label.encoding == "mono8"
    np.testing.assert_array_equal(np.frombuffer(bytes(ros_label.data), np.uint8).reshape(H, W), label)
    assert deserialize_message(raw[(COMPRESSED, stamp)], CompressedImage).format == "png"

    rosbags_msg = other_store.deserialize_cdr(camera_bytes, IMAGE)
    assert rosbags_msg.header.frame_id == "camera_optical"
    np.testing.assert_array_equal(rosbags_msg.data.reshape(H, W, 3), image)


def test_missing_bag_is_a_one_line_error(tmp_path):
    with pytest.raises(BagError, match="does not exist") as err:
        BagReader(tmp_path / "nope")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("storage,suffix", [("sqlite3", ".db3"), ("mcap", ".mcap")])
def test_truncated_bag_is_a_one_line_error(tmp_path, storage, suffix):
    _write(tmp_path / "bag", storage)
    (data_file,) = (tmp_path / "bag").glob("*" + suffix)
    data_file.write_bytes(data_file.read_bytes()[: data_file.stat().st_size // 3])
    with pytest.raises(BagError, match="bag") as err:
        with BagReader(tmp_path / "bag") as bag:
            list(bag.labelled_images(CAMERA, LABELS))
    assert "\n" not in str(err.value)


def test_missing_topic_error_lists_the_topics_of_the_bag(tmp_path):
    _write(tmp_path / "bag", compressed=False)
    with BagReader(tmp_path / "bag") as bag, pytest.raises(BagError) as err:
        list(bag.images("/front/image"))
    text = str(err.value)
    assert "/front/image is not in bag" in text
    assert f"{CAMERA} (sensor_msgs/msg/Image, 3 msgs)" in text and LABELS in text


def test_labels_of_another_size_than_the_camera_are_rejected(tmp_path):
    with BagWriter(tmp_path / "bag") as writer:
        writer.write_image(CAMERA, np.zeros((H, W, 3), np.uint8), 7, "cam")
        writer.write_image(LABELS, np.zeros((H // 2, W // 2), np.uint8), 7, "cam", encoding="mono8")
    mismatch = r"labels on /camera/labels are 16x12 but the images on /camera/image_raw are 32x24"
    with BagReader(tmp_path / "bag") as bag, pytest.raises(BagError, match=mismatch):
        list(bag.labelled_images(CAMERA, LABELS))


def test_unknown_image_encoding_is_a_one_line_error(tmp_path):
    types = typestore().types
    header = types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=1, nanosec=0), frame_id="c")
    odd = types[IMAGE](header=header, height=2, width=2, encoding="32FC1", is_bigendian=0, step=8,
                       data=np.zeros(16, np.uint8))
    with BagWriter(tmp_path / "bag") as writer:
        writer.write_message(CAMERA, odd, 1)
    with BagReader(tmp_path / "bag") as bag, pytest.raises(BagError, match="unsupported encoding '32FC1'"):
        list(bag.images(CAMERA))


def test_rgb_labels_are_rejected_as_labels(tmp_path):
    with BagWriter(tmp_path / "bag") as writer:
        writer.write_image(CAMERA, np.zeros((H, W, 3), np.uint8), 7, "cam")
        writer.write_image(LABELS, np.zeros((H, W, 3), np.uint8), 7, "cam")
    with BagReader(tmp_path / "bag") as bag, pytest.raises(BagError, match="expected mono8"):
        list(bag.labelled_images(CAMERA, LABELS))


def test_frames_without_a_label_come_out_in_order_without_one(tmp_path):
    frames = _frames(4)
    with BagWriter(tmp_path / "bag") as writer:
        for i, (image, label, stamp) in enumerate(frames):
            writer.write_image(CAMERA, image, stamp, "cam")
            if i != 1:
                writer.write_image(LABELS, label, stamp, "cam", encoding="mono8")
    with BagReader(tmp_path / "bag") as bag:
        pairs = list(bag.labelled_images(CAMERA, LABELS))
    assert [f.stamp_ns for f, _ in pairs] == [s for _, _, s in frames]
    assert [gt is not None for _, gt in pairs] == [True, False, True, True]


def test_labels_recorded_before_their_frame_still_pair(tmp_path):
    frames = _frames(2)
    with BagWriter(tmp_path / "bag") as writer:
        for image, label, stamp in frames:
            writer.write_image(LABELS, label, stamp, "cam", encoding="mono8", log_time_ns=stamp)
            writer.write_image(CAMERA, image, stamp, "cam", log_time_ns=stamp + 1)
    with BagReader(tmp_path / "bag") as bag:
        pairs = list(bag.labelled_images(CAMERA, LABELS))
    assert [(f.stamp_ns, gt.stamp_ns) for f, gt in pairs] == [(s, s) for _, _, s in frames]


def test_a_failed_write_leaves_no_bag_behind(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with BagWriter(tmp_path / "bag") as writer:
            writer.write_image(CAMERA, np.zeros((H, W, 3), np.uint8), 1, "cam")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_to_replace_an_existing_path(tmp_path):
    (tmp_path / "bag").mkdir()
    with pytest.raises(BagError, match="already exists"):
        BagWriter(tmp_path / "bag")


@pytest.mark.parametrize("storage,compressed", [("sqlite3", False), ("mcap", True)])
def test_make_bag_pairs_each_synthetic_frame_with_its_labels(tmp_path, storage, compressed):
    from ddrnet_ros.data.make_bag import write_synthetic_bag
    from ddrnet_ros.data.synthetic import HELDOUT_SEED_START, generate_sequence

    write_synthetic_bag(tmp_path / "bag", frames=3, height=32, width=64, storage=storage, rate_hz=20.0,
                        compressed=compressed)
    expected = list(generate_sequence(HELDOUT_SEED_START, 3, 32, 64))
    with BagReader(tmp_path / "bag") as bag:
        assert bag.topics[CAMERA].msgtype == ("sensor_msgs/msg/CompressedImage" if compressed else IMAGE)
        pairs = list(bag.labelled_images(CAMERA, LABELS))
    assert len(pairs) == 3
    stamps = [frame.stamp_ns for frame, _ in pairs]
    assert np.diff(stamps).tolist() == [50_000_000, 50_000_000]  # 20 Hz
    for (frame, gt), synthetic in zip(pairs, expected):
        assert gt.stamp_ns == frame.stamp_ns and gt.frame_id == frame.frame_id == "camera"
        np.testing.assert_array_equal(gt.pixels, synthetic.labels)
        if not compressed:
            np.testing.assert_array_equal(frame.pixels, synthetic.image)


def test_make_bag_scenes_mode_writes_independent_scenes_of_consecutive_seeds(tmp_path):
    from ddrnet_ros.commands import main
    from ddrnet_ros.data.synthetic import generate_scene

    assert main(["make-bag", str(tmp_path / "bag"), "--frames", "3", "--height", "32", "--width", "64",
                 "--seed", "77", "--scenes"]) == 0
    with BagReader(tmp_path / "bag") as bag:
        pairs = list(bag.labelled_images(CAMERA, LABELS))
    assert len(pairs) == 3
    for seed, (frame, gt) in zip((77, 78, 79), pairs):
        scene = generate_scene(seed, 32, 64)
        np.testing.assert_array_equal(frame.pixels, scene.image)
        np.testing.assert_array_equal(gt.pixels, scene.labels)


def test_make_bag_cli_refuses_an_existing_output_with_one_line(tmp_path, capsys):
    from ddrnet_ros.commands import main

    (tmp_path / "bag").mkdir()
    assert main(["make-bag", str(tmp_path / "bag"), "--frames", "1", "--height", "16", "--width", "32"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ddrnet-ros make-bag: error:") and "already exists" in err and "\n" not in err


def test_a_damaged_message_inside_a_readable_bag_is_a_one_line_error(tmp_path):
    import sqlite3

    _write(tmp_path / "bag", compressed=False)
    (db,) = (tmp_path / "bag").glob("*.db3")
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE messages SET data = substr(data, 1, 40) WHERE id = 3")
    with BagReader(tmp_path / "bag") as bag, pytest.raises(BagError, match="cannot be deserialised") as err:
        list(bag.labelled_images(CAMERA, LABELS))
    assert "\n" not in str(err.value)
