"""`ddrnet-ros evaluate` end to end on small generated bags, and its one-line errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from ddrnet_ros.commands import main as cli
from ddrnet_ros.data.bags import BagReader, BagWriter, typestore
from ddrnet_ros.data.make_bag import DEFAULT_IMAGE_TOPIC as CAMERA
from ddrnet_ros.data.make_bag import DEFAULT_LABEL_TOPIC as LABELS
from ddrnet_ros.data.make_bag import write_synthetic_bag
from ddrnet_ros.evaluation.metrics import ConfusionAccumulator

FRAMES, H, W = 3, 64, 128


@pytest.fixture
def checkpoint(random_checkpoint):
    return random_checkpoint


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    return write_synthetic_bag(tmp_path_factory.mktemp("bags") / "synthetic", FRAMES, H, W)


def _segmenter(checkpoint, **changes):
    from ddrnet_ros.engine import Segmenter, SegmenterConfig

    return Segmenter(SegmenterConfig(variant="ddrnet23_slim", checkpoint=str(checkpoint), backend="torch",
                                     device="cpu", **changes))


def _direct_confusion(bag, segmenter) -> np.ndarray:
    """The confusion matrix of ``segmenter`` over the bag's labelled frames, computed here."""
    direct = ConfusionAccumulator(segmenter.class_map.num_classes)
    with BagReader(bag) as reader:
        for frame, gt in reader.labelled_images(CAMERA, LABELS):
            direct.update(segmenter.segment(frame.pixels).labels, gt.pixels)
    return direct.matrix


def _evaluate(*args: str) -> int:
    return cli(["evaluate", *map(str, args)])


def test_report_matches_a_direct_computation_and_output_bag_keeps_stamps(bag, checkpoint, tmp_path):
    out, out_bag = tmp_path / "report", tmp_path / "segmented"
    assert _evaluate(bag, "--label-topic", LABELS, "--checkpoint", checkpoint, "--device", "cpu",
                     "--output-dir", out, "--output-bag", out_bag) == 0

    segmenter = _segmenter(checkpoint)
    direct = ConfusionAccumulator(segmenter.class_map.num_classes)
    labels_by_stamp = {}
    with BagReader(bag) as reader:
        for frame, gt in reader.labelled_images(CAMERA, LABELS):
            result = segmenter.segment(frame.pixels, channel_order="rgb")
            direct.update(result.labels, gt.pixels)
            labels_by_stamp[frame.stamp_ns] = (frame.frame_id, result.labels)

    doc = json.loads((out / "report.json").read_text())
    assert np.array_equal(np.array(doc["metrics"]["confusion_matrix"]["counts"]), direct.matrix)
    scores = direct.scores()
    assert doc["metrics"]["mIoU"] == pytest.approx(scores.mean_iou)
    assert doc["metrics"]["pixel_accuracy"] == pytest.approx(scores.pixel_accuracy)
    assert doc["frames"] == {"read": FRAMES, "scored": FRAMES, "without_labels": 0}
    assert doc["latency_ms"]["count"] == FRAMES and doc["latency_ms"]["p50_ms"] > 0
    assert doc["model"]["checkpoint_sha256"] == segmenter.checkpoint_sha256
    assert doc["bag"]["topics"] == {CAMERA: {"type": "sensor_msgs/msg/Image", "count": FRAMES},
                                    LABELS: {"type": "sensor_msgs/msg/Image", "count": FRAMES}}
    for name in ("report.md", *doc["pictures"].values()):
        assert (out / name).exists(), name
    for name in doc["pictures"].values():
        assert cv2.imread(str(out / name)) is not None, name

    with BagReader(out_bag) as segmented:
        assert {t: s.count for t, s in segmented.topics.items()} == {
            "/segmentation/labels": FRAMES, "/segmentation/color": FRAMES, "/segmentation/overlay": FRAMES}
        for label in segmented.labels("/segmentation/labels"):
            frame_id, expected = labels_by_stamp[label.stamp_ns]
            assert label.frame_id == frame_id
            np.testing.assert_array_equal(label.pixels, expected)
        stamps = [f.stamp_ns for f in segmented.images("/segmentation/overlay")]
        assert stamps == sorted(labels_by_stamp)
        color = next(segmented.images("/segmentation/color"))
        assert color.pixels.shape == (H, W, 3)


def test_input_size_sets_the_network_size_the_frames_are_scored_at(bag, checkpoint, tmp_path):
    assert _evaluate(bag, "--label-topic", LABELS, "--checkpoint", checkpoint, "--device", "cpu",
                     "--input-size", "32x64", "--output-dir", tmp_path) == 0
    direct = _direct_confusion(bag, _segmenter(checkpoint, input_size=(32, 64)))
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["model"]["network_input_size"] == [32, 64] and doc["model"]["pad_to_input_size"] is False
    assert np.array_equal(np.array(doc["metrics"]["confusion_matrix"]["counts"]), direct)
    # at the frame's own size the same frames give other labels: the option took effect
    assert not np.array_equal(_direct_confusion(bag, _segmenter(checkpoint)), direct)


def test_pad_to_input_size_scores_the_frames_letterboxed_into_the_whole_input(bag, checkpoint, tmp_path):
    # 64x128 frames in a 128x128 input: 64x128 of image, trimmed to 64x128 or padded to 128x128
    matrices = {}
    for pad in (False, True):
        out = tmp_path / f"pad{pad}"
        assert _evaluate(bag, "--label-topic", LABELS, "--checkpoint", checkpoint, "--device", "cpu",
                         "--input-size", "128x128", *(["--pad-to-input-size"] if pad else []), "--output-dir", out) == 0
        doc = json.loads((out / "report.json").read_text())
        assert doc["model"]["pad_to_input_size"] is pad
        segmenter = _segmenter(checkpoint, input_size=(128, 128), pad_to_input_size=pad)
        assert segmenter.network_size(H, W) == ((128, 128) if pad else (64, 128))
        matrices[pad] = np.array(doc["metrics"]["confusion_matrix"]["counts"])
        assert np.array_equal(matrices[pad], _direct_confusion(bag, segmenter))
    assert not np.array_equal(matrices[False], matrices[True])  # the padding band changes the labels


def test_without_ground_truth_only_latency_is_reported(bag, checkpoint, tmp_path):
    assert _evaluate(bag, "--checkpoint", checkpoint, "--device", "cpu", "--max-frames", "2",
                     "--output-dir", tmp_path) == 0
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["metrics"] is None
    assert doc["frames"] == {"read": 2, "scored": 0, "without_labels": 2}
    assert doc["latency_ms"]["count"] == 2


def test_compressed_camera_frames_in_mcap_are_evaluated(tmp_path, checkpoint):
    path = write_synthetic_bag(tmp_path / "jpeg", 2, H, W, storage="mcap", compressed=True)
    assert _evaluate(path, "--label-topic", LABELS, "--checkpoint", checkpoint, "--device", "cpu",
                     "--output-dir", tmp_path / "out") == 0
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert doc["frames"]["scored"] == 2
    assert doc["bag"]["topics"][CAMERA]["type"] == "sensor_msgs/msg/CompressedImage"


def _mismatched_labels(path):
    with BagWriter(path) as writer:
        writer.write_image(CAMERA, np.zeros((H, W, 3), np.uint8), 5, "cam")
        writer.write_image(LABELS, np.zeros((H // 2, W), np.uint8), 5, "cam", encoding="mono8")


def _unknown_encoding(path):
    types = typestore().types
    header = types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=0, nanosec=5),
                                          frame_id="cam")
    with BagWriter(path) as writer:
        writer.write_message(CAMERA, types["sensor_msgs/msg/Image"](
            header=header, height=H, width=W, encoding="weird16", is_bigendian=0, step=W * 2,
            data=np.zeros(H * W * 2, np.uint8)), 5)


def _corrupt(path):
    write_synthetic_bag(path, 2, H, W)
    (db,) = path.glob("*.db3")
    db.write_bytes(b"not a database at all" * 100)


@pytest.mark.parametrize("make,args,message", [
    (None, ["--label-topic", LABELS], "does not exist"),
    (_corrupt, ["--label-topic", LABELS], "cannot open bag"),
    ("synthetic", ["--label-topic", "/front/labels"], "topic /front/labels is not in bag"),
    ("synthetic", ["--image-topic", "/front/image"], f"{CAMERA} (sensor_msgs/msg/Image, 2 msgs)"),
    (_mismatched_labels, ["--label-topic", LABELS], "labels on /camera/labels are 128x32 but the images"),
    (_unknown_encoding, [], "unsupported encoding 'weird16'"),
])
def test_bad_input_exits_nonzero_with_one_line_and_no_report(tmp_path, capsys, checkpoint, make, args, message):
    bag_path = tmp_path / "bag"
    if make == "synthetic":
        write_synthetic_bag(bag_path, 2, H, W)
    elif make is not None:
        make(bag_path)
    out = tmp_path / "out"
    code = _evaluate(bag_path, *args, "--checkpoint", checkpoint, "--device", "cpu", "--output-dir", out,
                     "--output-bag", tmp_path / "segmented")
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert err.startswith("ddrnet-ros evaluate: error:") and message in err, err
    assert "\n" not in err
    assert not (out / "report.json").exists()
    assert not (tmp_path / "segmented").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".segmented")]


# --------------------------------------------------------------------------------------------
# real labelled datasets (CamVid layout) and bags made from them


def test_a_camvid_split_is_scored_in_camvid_classes_with_the_same_report(camvid_root, checkpoint, tmp_path):
    from ddrnet_ros.classes import CAMVID
    from ddrnet_ros.data.camvid import CamVidDataset
    from ddrnet_ros.evaluation.metrics import ScoringSpace

    out = tmp_path / "report"
    assert _evaluate("--dataset", "camvid", camvid_root, "--split", "test", "--checkpoint", checkpoint,
                     "--device", "cpu", "--output-dir", out) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"]["source"] == "camvid" and report["dataset"]["split"] == "test"
    assert report["frames"]["scored"] == 4 and report["label_space"] == "camvid"
    assert set(report["metrics"]["per_class_iou"]) == set(CAMVID.names)
    for picture in ("samples.png", "per_class_iou.png", "confusion_matrix.png"):
        assert (out / picture).is_file()
    assert "scored in the camvid label space" in (out / "report.md").read_text()
    # The same numbers as scoring the engine's labels by hand, frame by frame.
    segmenter = _segmenter(checkpoint)
    space = ScoringSpace(segmenter.class_map, CAMVID)
    accumulator = space.accumulator()
    for image, labels in CamVidDataset(camvid_root, "test"):
        accumulator.update(space.prediction(segmenter.segment(image).labels), labels)
    assert report["metrics"]["mIoU"] == pytest.approx(accumulator.scores().mean_iou)


def test_a_bag_made_from_camvid_keeps_driving_order_stamps_and_scores_like_the_dataset(camvid_root, checkpoint,
                                                                                        tmp_path):
    from ddrnet_ros.data.make_bag import DEFAULT_START_NS, SEQUENCE_GAP_NS

    bag_path = tmp_path / "camvid_bag"
    assert cli(["make-bag", str(bag_path), "--from-camvid", str(camvid_root), "--split", "test"]) == 0
    with BagReader(bag_path) as bag:
        frames = list(bag.images(CAMERA))
        labels = list(bag.images(LABELS))
    stamps = [f.stamp_ns for f in frames]
    # 0001TP_008520, 0001TP_008550 (30 video frames = 1 s later), then Seq05VD_f00000, _f00030.
    assert stamps == [DEFAULT_START_NS, DEFAULT_START_NS + 10**9, DEFAULT_START_NS + 10**9 + SEQUENCE_GAP_NS,
                      DEFAULT_START_NS + 2 * 10**9 + SEQUENCE_GAP_NS]
    assert [lab.stamp_ns for lab in labels] == stamps
    assert set(np.unique(np.concatenate([lab.pixels.ravel() for lab in labels]))) <= {0, 3, 8, 255}
    out_bag, out_set = tmp_path / "from_bag", tmp_path / "from_set"
    assert _evaluate(bag_path, "--label-topic", LABELS, "--label-space", "camvid", "--checkpoint", checkpoint,
                     "--device", "cpu", "--output-dir", out_bag) == 0
    assert _evaluate("--dataset", "camvid", camvid_root, "--checkpoint", checkpoint, "--device", "cpu",
                     "--output-dir", out_set) == 0
    from_bag = json.loads((out_bag / "report.json").read_text())["metrics"]
    from_set = json.loads((out_set / "report.json").read_text())["metrics"]
    assert from_bag["confusion_matrix"]["counts"] == from_set["confusion_matrix"]["counts"]


def test_make_bag_from_camvid_at_a_fixed_rate_spaces_stamps_evenly(camvid_root, tmp_path):
    from ddrnet_ros.data.make_bag import DEFAULT_START_NS

    bag_path = tmp_path / "even"
    assert cli(["make-bag", str(bag_path), "--from-camvid", str(camvid_root), "--split", "val", "--rate", "5"]) == 0
    with BagReader(bag_path) as bag:
        assert [f.stamp_ns for f in bag.images(CAMERA)] == [DEFAULT_START_NS, DEFAULT_START_NS + 200_000_000]


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "camvid", "{missing}"], "is not a directory"),
    (["--dataset", "kitti", "{root}"], "unknown dataset 'kitti'"),
    (["{root}", "--dataset", "camvid", "{root}"], "either a bag or --dataset"),
    ([], "either a bag or --dataset"),
])
def test_dataset_evaluation_errors_are_one_line(camvid_root, tmp_path, capsys, argv, message):
    argv = [a.format(root=camvid_root, missing=tmp_path / "none") for a in argv]
    assert _evaluate(*argv, "--output-dir", tmp_path / "out") == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "out").exists()


def test_perturbed_dataset_scores_say_what_was_done_and_noise_is_repeatable(camvid_root, checkpoint, tmp_path):
    runs = []
    for name in ("noise", "noise", "half-res"):
        out = tmp_path / f"{name}{len(runs)}"
        assert _evaluate("--dataset", "camvid", camvid_root, "--perturb", name, "--checkpoint", checkpoint,
                         "--device", "cpu", "--output-dir", out) == 0
        runs.append(json.loads((out / "report.json").read_text()))
    assert runs[0]["dataset"]["perturbation"]["name"] == "noise"
    assert runs[0]["metrics"]["confusion_matrix"] == runs[1]["metrics"]["confusion_matrix"]
    # half resolution: the labels follow the image, a quarter of the pixels are scored
    pixels = [sum(map(sum, r["metrics"]["confusion_matrix"]["counts"])) for r in (runs[0], runs[2])]
    assert pixels[1] == pytest.approx(pixels[0] / 4, rel=0.1)


def test_each_perturbation_keeps_images_and_labels_aligned_and_changes_the_image():
    from ddrnet_ros.evaluation.perturb import PERTURBATIONS, perturb

    rng = np.random.default_rng(0)
    image = rng.integers(30, 220, (48, 64, 3), dtype=np.uint8)
    labels = rng.integers(0, 11, (48, 64), dtype=np.uint8)
    for name in PERTURBATIONS:
        out_image, out_labels = perturb(name, image, labels, 3)
        assert out_image.dtype == np.uint8 and out_image.shape[:2] == out_labels.shape, name
        if name.endswith("-res"):
            assert out_image.shape != image.shape and set(np.unique(out_labels)) <= set(np.unique(labels)), name
        else:
            assert out_image.shape == image.shape and not np.array_equal(out_image, image), name
            assert out_labels is labels, name
