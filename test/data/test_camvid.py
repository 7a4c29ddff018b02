"""CamVid in SegNet's layout: the reader on good and broken trees written by the tests."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from ddrnet_ros.data.camvid import CamVidDataset, list_frames, parse_frame_name, stamp_ns
from ddrnet_ros.data.datasets import DatasetLayoutError


def test_frames_come_in_driving_order_sequence_by_sequence(camvid_root):
    names = [frame.name for frame in list_frames(camvid_root, "test")]
    assert names == ["0001TP_008520", "0001TP_008550", "Seq05VD_f00000", "Seq05VD_f00030"]


@pytest.mark.parametrize("name, expected", [("0016E5_07959", ("0016E5", 7959)), ("Seq05VD_f00120", ("Seq05VD", 120)),
                                            ("0001TP_006690", ("0001TP", 6690))])
def test_frame_names_give_sequence_and_video_frame_number(name, expected):
    assert parse_frame_name(name) == expected


def test_a_frame_name_without_a_number_is_a_layout_error():
    with pytest.raises(DatasetLayoutError, match="not <sequence>_<frame number>"):
        parse_frame_name("holiday")


def test_pairs_are_rgb_images_with_camvid_ids_and_unlabelled_as_255(camvid_root):
    dataset = CamVidDataset(camvid_root, "train")
    assert len(dataset) == len(list((camvid_root / "train").glob("*.png")))
    image, labels = dataset[0]
    on_disk_rgb = cv2.cvtColor(cv2.imread(str(dataset.frames[0].image)), cv2.COLOR_BGR2RGB)
    assert image.dtype == np.uint8 and np.array_equal(image, on_disk_rgb)
    on_disk = cv2.imread(str(dataset.frames[0].labels), cv2.IMREAD_UNCHANGED)
    assert set(np.unique(on_disk)) == {0, 3, 8, 11}
    assert set(np.unique(labels)) == {0, 3, 8, 255}
    np.testing.assert_array_equal(labels == 255, on_disk == 11)
    # RGB, not OpenCV's BGR: the sky rows are blue-ish (B > R).
    sky = image[labels == 0].mean(axis=0)
    assert sky[2] > sky[0]


def test_stamps_are_video_time_at_30_fps(camvid_root):
    frames = list_frames(camvid_root, "test")
    assert stamp_ns(frames[1]) - stamp_ns(frames[0]) == 1_000_000_000  # 30 frames apart


@pytest.mark.parametrize("break_tree, message", [
    (lambda root: shutil.rmtree(root / "testannot"), "testannot is not a directory"),
    (lambda root: shutil.rmtree(root / "test"), "test is not a directory"),
    (lambda root: [p.unlink() for p in (root / "test").glob("*.png")], "no .png frames"),
    (lambda root: (root / "testannot" / "0001TP_008520.png").unlink(), "1 of 4 frames .* have no label file"),
])
def test_a_broken_tree_is_one_line_naming_the_expected_layout(camvid_root, tmp_path, break_tree, message):
    root = shutil.copytree(camvid_root, tmp_path / "CamVid")
    break_tree(root)
    with pytest.raises(DatasetLayoutError, match=message) as info:
        CamVidDataset(root, "test")
    assert "\n" not in str(info.value)
    if "directory" in message or "no .png" in message:
        assert "testannot/<name>.png" in str(info.value)


def test_an_unknown_split_names_the_known_ones(camvid_root):
    with pytest.raises(DatasetLayoutError, match="train, val, test"):
        CamVidDataset(camvid_root, "holdout")


def test_a_missing_root_is_a_layout_error(tmp_path):
    with pytest.raises(DatasetLayoutError, match="is not a directory"):
        CamVidDataset(tmp_path / "nowhere", "train")
