"""Live evaluation over real DDS: bag -> a segmenting node -> labels scored by stamp."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from ddrnet_ros.classes import ClassMap
from ddrnet_ros.data.bags import BagWriter
from ddrnet_ros.evaluation.metrics import ConfusionAccumulator
from ddrnet_ros.evaluation.report import write_report
from ddrnet_ros.ros.live_eval import evaluate_live

CAMERA, GROUND_TRUTH = "/camera/image_raw", "/camera/labels"
START_NS = 1_700_000_000 * 10**9
FRAMES, H, W = 9, 24, 32
SKIPPED = {2, 5}  # frames the echo node leaves unanswered


def _truth(i: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    gt = rng.choice([0, 1, 2, 10, 13], size=(H, W)).astype(np.uint8)
    gt[0, :4] = 255
    return gt


def _prediction(gt: np.ndarray, i: int) -> np.ndarray:
    """What the echo node answers: the truth with row i wrong (so scores are not perfect)."""
    pred = np.where(gt == 255, 0, gt).astype(np.uint8)
    pred[i % H] = 8
    return pred


class EchoSegmenter(Node):
    """A stand-in segmentation node: reads the class ids hidden in the red channel, answers with labels.

    It copies the input header like the real node and leaves some frames unanswered, as the real
    node does when it falls behind.
    """

    def __init__(self, context) -> None:
        super().__init__("echo_segmenter", context=context)
        profile = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.publisher = self.create_publisher(Image, "/segmentation/labels", profile)
        self.create_subscription(Image, CAMERA, self._on_image, profile)

    def _on_image(self, msg: Image) -> None:
        pixels = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)
        index = int(pixels[0, 0, 1])  # frame index in the green channel of the first pixel
        if index in SKIPPED:
            return
        out = Image(header=msg.header, height=msg.height, width=msg.width, encoding="mono8", step=msg.width)
        out.data = _prediction(pixels[:, :, 0], index).tobytes()
        self.publisher.publish(out)


@pytest.fixture
def bag(tmp_path):
    path = tmp_path / "bag"
    with BagWriter(path) as writer:
        for i in range(FRAMES):
            gt = _truth(i)
            image = np.zeros((H, W, 3), np.uint8)
            image[:, :, 0] = gt  # the echo node reads its answer from here
            image[0, 0, 1] = i
            stamp = START_NS + i * 50_000_000
            writer.write_image(CAMERA, image, stamp, "cam")
            writer.write_image(GROUND_TRUTH, gt, stamp, "cam", encoding="mono8")
    return path


@pytest.fixture
def echo_node(ros_domain_id):
    domain_id = ros_domain_id
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(EchoSegmenter(context))
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    yield domain_id
    executor.shutdown()
    context.try_shutdown()


def test_live_scores_match_a_direct_computation_and_unanswered_frames_count_as_dropped(bag, echo_node, tmp_path):
    classes = ClassMap.builtin()
    report = evaluate_live(bag, CAMERA, GROUND_TRUTH, rate=2.0, class_map=classes, node_wait_s=30.0,
                           drain_s=2.0, domain_id=echo_node)

    expected = ConfusionAccumulator(classes.num_classes, classes.names)
    for i in range(FRAMES):
        if i not in SKIPPED:
            expected.update(_prediction(np.where(_truth(i) == 255, 0, _truth(i)), i), _truth(i))
    assert report.frames["published"] == FRAMES
    assert report.frames["answered"] == FRAMES - len(SKIPPED)
    assert report.frames["dropped"] == len(SKIPPED)
    assert report.frames["scored"] == FRAMES - len(SKIPPED)
    np.testing.assert_array_equal(report.scores.confusion, expected.matrix)
    assert report.scores.mean_iou == pytest.approx(expected.scores().mean_iou)
    assert report.latency.count == FRAMES - len(SKIPPED) and report.latency.p50_ms > 0

    write_report(report, tmp_path / "report")
    doc = json.loads((tmp_path / "report" / "report.json").read_text())
    assert doc["mode"] == "live" and doc["frames"]["dropped"] == len(SKIPPED)
    assert doc["metrics"]["mIoU"] == pytest.approx(expected.scores().mean_iou)
    assert set(doc["pictures"]) == {"iou", "confusion", "latency", "samples"}


def test_live_labels_are_scored_in_camvid_classes_when_the_bag_holds_camvid_ids(bag, echo_node):
    from ddrnet_ros.classes import CAMVID
    from ddrnet_ros.evaluation.metrics import ScoringSpace

    report = evaluate_live(bag, CAMERA, GROUND_TRUTH, rate=2.0, class_map=ClassMap.builtin(), node_wait_s=30.0,
                           drain_s=2.0, domain_id=echo_node, label_space=CAMVID)
    space = ScoringSpace(ClassMap.builtin(), CAMVID)
    expected = space.accumulator()
    for i in range(FRAMES):
        if i not in SKIPPED:
            expected.update(space.prediction(_prediction(np.where(_truth(i) == 255, 0, _truth(i)), i)), _truth(i))
    assert report.class_map.names == CAMVID.names and report.extra["label_space"] == "camvid"
    np.testing.assert_array_equal(report.scores.confusion, expected.matrix)


def test_live_evaluation_without_a_node_fails_in_one_line(bag, ros_domain_id):
    from ddrnet_ros.ros.live_eval import LiveEvalError

    with pytest.raises(LiveEvalError, match="no node subscribed to /camera/image_raw") as err:
        evaluate_live(bag, CAMERA, GROUND_TRUTH, node_wait_s=1.0, domain_id=ros_domain_id)
    assert "\n" not in str(err.value)


def test_real_node_labels_score_like_the_engine_on_the_same_frames(tmp_path, random_checkpoint, monkeypatch,
                                                                  ros_domain_id):
    """`ddrnet-ros run` in its own process, fed by the player; its labels equal the engine's own."""
    from ddrnet_ros.data.bags import BagReader
    from ddrnet_ros.data.make_bag import write_synthetic_bag
    from ddrnet_ros.engine import Segmenter, SegmenterConfig
    from ddrnet_ros.ros.live_eval import NodeProcess, node_params

    domain_id = ros_domain_id
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain_id))
    bag = write_synthetic_bag(tmp_path / "bag", 4, 64, 128, rate_hz=5.0)
    params = node_params(CAMERA, False, str(random_checkpoint), "ddrnet23_slim", "cpu", "torch")
    with NodeProcess(params, tmp_path / "node.log", checkpoint=str(random_checkpoint)) as node:
        # 0.5x: a frame every 0.4 s, far slower than the node needs at 64x128, so none is dropped
        report = evaluate_live(bag, CAMERA, GROUND_TRUTH, rate=0.5, node_wait_s=120.0, drain_s=5.0,
                               node_process=node, domain_id=domain_id)

    segmenter = Segmenter(SegmenterConfig(checkpoint=str(random_checkpoint), device="cpu"))
    expected = ConfusionAccumulator(segmenter.class_map.num_classes, segmenter.class_map.names)
    with BagReader(bag) as reader:
        for frame, gt in reader.labelled_images(CAMERA, GROUND_TRUTH):
            expected.update(segmenter.segment(frame.pixels, channel_order="rgb").labels, gt.pixels)
    assert report.frames["published"] == 4 and report.frames["dropped"] == 0, report.frames
    assert report.frames["scored"] == 4
    np.testing.assert_array_equal(report.scores.confusion, expected.matrix)
    assert report.model["variant"] == "ddrnet23_slim"
    assert report.model["checkpoint_sha256"] == segmenter.checkpoint_sha256
    assert node.process.returncode is not None  # stopped on leaving the block


def test_demo_runs_end_to_end_and_prints_the_headline(tmp_path, random_checkpoint, ros_env):
    import subprocess
    import sys

    env = ros_env
    done = subprocess.run(
        [sys.executable, "-m", "ddrnet_ros", "demo", "--output-dir", str(tmp_path / "demo"), "--frames", "3",
         "--height", "64", "--width", "128", "--checkpoint", str(random_checkpoint), "--device", "cpu",
         "--rate", "0.5"], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "mIoU" in done.stdout and "latency p50" in done.stdout
    assert "frames: published 3, answered" in done.stdout and "dropped" in done.stdout
    doc = json.loads((tmp_path / "demo" / "report" / "report.json").read_text())
    assert doc["mode"] == "live" and doc["frames"]["published"] == 3
    assert (tmp_path / "demo" / "report" / "samples.png").exists()
    assert (tmp_path / "demo" / "node.log").exists()
