"""``ddrnet-ros evaluate-live``: play a bag into the running node and score what it publishes.

The bag's camera frames are played over DDS (by the in-process :class:`BagPlayer`); every
label image the node publishes is matched to the bag's ground truth by header stamp (the
node copies the input header) and scored on arrival. Frames the node never answers are
counted as dropped: the node keeps only the newest frame, so a CPU that cannot keep up
drops frames instead of queueing them. Latency here is end to end: from the player's
publish of a frame to the arrival of its labels. The report has the same files as the
offline one (:mod:`ddrnet_ros.report`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
import yaml
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from ddrnet_ros.classes import ClassMap, CoarseLabelSpace
from ddrnet_ros.data.bags import BagReader, decode_labels, stamp_to_ns
from ddrnet_ros.encodings import ImageDecodeError
from ddrnet_ros.evaluation.metrics import ScoringSpace
from ddrnet_ros.evaluation.report import EvaluationReport, Sample, sample_indices, shrink
from ddrnet_ros.model.checkpoint import sha256_of
from ddrnet_ros.ros.player import BagPlayer

DEFAULT_LABELS_TOPIC = "/segmentation/labels"
DEFAULT_INFO_TOPIC = "/segmentation/label_info"
DEFAULT_OUTPUT_DIR = Path("out/evaluate-live")
#: Deep enough that the evaluator itself never drops a label image the node sent.
RECEIVE_DEPTH = 100


class LiveEvalError(RuntimeError):
    """evaluate-live cannot go on; the text is one line."""


class LabelScorer(Node):
    """Scores each received label image against the ground truth of the same stamp."""

    def __init__(self, context: rclpy.Context, labels_topic: str, ground_truth: dict[int, np.ndarray],
                 class_map: ClassMap, info_topic: str | None = DEFAULT_INFO_TOPIC,
                 label_space: CoarseLabelSpace | None = None) -> None:
        super().__init__("live_evaluator", context=context)
        self.ground_truth = ground_truth
        self.space = ScoringSpace(class_map, label_space)
        self.class_map = self.space.class_map
        self.accumulator = self.space.accumulator()
        self.lock = threading.Lock()
        self.published_at: dict[int, float] = {}  # stamp -> when the player sent the frame
        self.answered: dict[int, float] = {}  # stamp -> end-to-end latency ms
        self.unknown_stamps = 0
        self.bad_messages = 0
        self.predictions: dict[int, np.ndarray] = {}  # shrunk, for the sample strip
        self.model_info: dict[str, Any] = {}
        self.last_arrival = time.monotonic()
        profile = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=RECEIVE_DEPTH,
                             reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
        self.create_subscription(Image, labels_topic, self._on_labels, profile)
        self.labels_topic = labels_topic
        if info_topic:
            self._subscribe_info(info_topic)

    def _subscribe_info(self, topic: str) -> None:
        """The node's latched label info names the model; skipped where the messages are not built."""
        try:
            from ddrnet_ros.msg import SegmentationInfo
        except ImportError:
            return
        latched = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.create_subscription(SegmentationInfo, topic, self._on_info, latched)

    def _on_info(self, msg: Any) -> None:
        self.model_info = {"variant": msg.model_variant, "checkpoint_sha256": msg.checkpoint_sha256,
                           "classes": len(msg.classes)}

    def frame_published(self, topic: str, log_time_ns: int, stamp_ns: int) -> None:
        with self.lock:
            self.published_at[stamp_ns] = time.monotonic()

    def _on_labels(self, msg: Image) -> None:
        arrival = time.monotonic()
        stamp = stamp_to_ns(msg.header.stamp)
        try:
            labels = self.space.prediction(decode_labels(msg))
        except ImageDecodeError as exc:  # logged and skipped: one bad message must not end the run
            self.bad_messages += 1
            self.get_logger().warning(f"skipping label image at stamp {stamp}: {exc}",
                                      throttle_duration_sec=5.0)
            return
        with self.lock:
            self.last_arrival = arrival
            sent = self.published_at.get(stamp)
            if sent is None or stamp in self.answered:
                self.unknown_stamps += 1
                return
        try:
            gt = self.ground_truth.get(stamp)
            if gt is not None:
                if gt.shape != labels.shape:
                    self.bad_messages += 1
                    self.get_logger().warning(f"labels at stamp {stamp} are {labels.shape[1]}x{labels.shape[0]}, "
                                              f"ground truth {gt.shape[1]}x{gt.shape[0]}: not scored")
                    return
                self.accumulator.update(labels, gt)
            self.predictions[stamp] = shrink(labels)
        finally:
            # Counted as answered only once scored: the run ends when every frame is answered,
            # and must not read the scores while the last frame is still being added.
            with self.lock:
                self.answered[stamp] = (arrival - sent) * 1000.0


def load_ground_truth(bag: BagReader, image_topic: str, label_topic: str | None) -> dict[int, np.ndarray]:
    """Label images by stamp, checked against the camera frames' size."""
    if not label_topic:
        return {}
    truth = {}
    for frame, label in bag.labelled_images(image_topic, label_topic):
        if label is not None:
            truth[frame.stamp_ns] = label.pixels
    return truth


def frame_stamps(bag: BagReader, image_topic: str) -> dict[int, int]:
    """log time -> header stamp of the camera frames (the player reports log times)."""
    return {log_time: stamp_to_ns(message.header.stamp) for _, log_time, message in bag.messages([image_topic])}


def _sample_strip(bag_path: Path, image_topic: str, scorer: LabelScorer, truth: dict[int, np.ndarray]
                  ) -> list[Sample]:
    stamps = sorted(scorer.predictions)
    if not stamps:
        return []
    chosen = {stamps[i] for i in sample_indices(len(stamps))}
    samples = []
    with BagReader(bag_path) as bag:
        for frame in bag.images(image_topic):
            if frame.stamp_ns in chosen:
                gt = truth.get(frame.stamp_ns)
                samples.append(Sample(frame.stamp_ns, shrink(frame.pixels), scorer.predictions[frame.stamp_ns],
                                      None if gt is None else shrink(gt)))
    return samples


def evaluate_live(bag_path: str | Path, image_topic: str = "/camera/image_raw", label_topic: str | None = None,
                  labels_topic: str = DEFAULT_LABELS_TOPIC, rate: float = 1.0, class_map: ClassMap | None = None,
                  node_wait_s: float = 120.0, drain_s: float = 5.0, node_process: NodeProcess | None = None,
                  domain_id: int | None = None, label_space: CoarseLabelSpace | None = None) -> EvaluationReport:
    """Play the bag's camera topic, score the node's labels, and return the report."""
    bag_path = Path(bag_path)
    class_map = class_map or ClassMap.builtin()
    with BagReader(bag_path) as bag:
        bag.require_topic(image_topic)
        truth = load_ground_truth(bag, image_topic, label_topic)
        stamps_by_log_time = frame_stamps(bag, image_topic)
        description = {"path": str(bag_path), "image_topic": image_topic, "label_topic": label_topic,
                       "labels_topic": labels_topic,
                       "topics": {t.name: {"type": t.msgtype, "count": t.count} for t in bag.topics.values()}}
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    executor = SingleThreadedExecutor(context=context)
    try:
        scorer = LabelScorer(context, labels_topic, truth, class_map, label_space=label_space)
        player_node = Node("live_eval_player", context=context)
        executor.add_node(scorer)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        _wait_for_node(scorer, image_topic, node_wait_s, node_process)
        player = BagPlayer(player_node, bag_path, rate=rate, topics=[image_topic])
        _wait_for_match(player, image_topic, 30.0)
        on_publish = lambda topic, log_time: scorer.frame_published(topic, log_time, stamps_by_log_time[log_time])  # noqa: E731
        started = time.monotonic()
        stats = player.play(on_publish=on_publish)
        _drain(scorer, stats.total, drain_s)
        wall = time.monotonic() - started
    finally:
        executor.shutdown()
        context.try_shutdown()

    published = len(scorer.published_at)
    answered = len(scorer.answered)
    frames = {"published": published, "answered": answered, "dropped": published - answered,
              "scored": scorer.accumulator.frames, "labels_unmatched": scorer.unknown_stamps,
              "labels_bad": scorer.bad_messages}
    info = scorer.model_info
    model = {"variant": info.get("variant"), "checkpoint_sha256": info.get("checkpoint_sha256"),
             "checkpoint": node_process.checkpoint if node_process else None, "backend": None, "device": None,
             "source": "the running node's label_info" if scorer.model_info else "unknown (no label_info received)"}
    if node_process is not None:
        model.update(node_process.model)
        if not model["checkpoint_sha256"] and node_process.checkpoint and Path(node_process.checkpoint).is_file():
            model["checkpoint_sha256"] = sha256_of(node_process.checkpoint)
    return EvaluationReport(
        mode="live", bag=description, model=model, class_map=scorer.class_map, frames=frames,
        latency_samples_ms=[scorer.answered[s] for s in sorted(scorer.answered)],
        latency_label="end-to-end latency (player publish -> labels received)",
        scores=scorer.accumulator.scores() if label_topic else None, wall_time_s=wall,
        throughput_fps=answered / stats.wall_time_s if stats.wall_time_s > 0 else None,
        samples=_sample_strip(bag_path, image_topic, scorer, truth),
        extra={"playback": {"rate": rate, "wall_time_s": stats.wall_time_s, "max_lag_ms": stats.max_lag_ms},
               **({"label_space": label_space.name} if label_space else {})})


def _wait_for_node(scorer: LabelScorer, image_topic: str, timeout_s: float,
                   node_process: NodeProcess | None) -> None:
    """Until a node subscribes to the camera topic and publishes labels (seen in the ROS graph).

    The player's publisher is created only after this, so the node is fully up (configured and
    active) before it discovers any camera publisher.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if node_process is not None:
            node_process.check_alive()
        if scorer.count_subscribers(image_topic) > 0 and scorer.count_publishers(scorer.labels_topic) > 0:
            return
        time.sleep(0.05)
    raise LiveEvalError(f"no node subscribed to {image_topic} and publishing {scorer.labels_topic} "
                        f"within {timeout_s:g} s; is the segmentation node running (same ROS_DOMAIN_ID)?")


def _wait_for_match(player: BagPlayer, image_topic: str, timeout_s: float) -> None:
    """Until the player's camera publisher has matched the node's subscription."""
    if not player.wait_for_subscribers(timeout_s, [image_topic]):
        raise LiveEvalError(f"the node's subscription to {image_topic} did not match the player's publisher "
                            f"within {timeout_s:g} s (incompatible QoS?)")
    time.sleep(0.5)  # the match is seen here first; give the node's side a moment too


def _drain(scorer: LabelScorer, published: int, drain_s: float) -> None:
    """After the last frame: wait for late labels until all came or none came for ``drain_s``."""
    while True:
        with scorer.lock:
            if len(scorer.answered) >= published:
                return
            quiet = time.monotonic() - max(scorer.last_arrival, max(scorer.published_at.values(), default=0.0))
        if quiet > drain_s:
            return
        time.sleep(0.05)


class NodeProcess:
    """``ddrnet-ros run`` as a child process, stopped (with its children) on ``stop()`` or exit."""

    def __init__(self, params: dict[str, Any], log_path: Path, checkpoint: str | None = None,
                 model: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> None:
        self.checkpoint = checkpoint
        self.model = model or {}
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.params_path = self.log_path.with_name("node_params.yaml")
        self.params_path.write_text(_params_yaml(params))
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ddrnet_ros", "run", "--params-file", str(self.params_path)],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def __enter__(self) -> NodeProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            tail = self.log_tail()
            raise LiveEvalError(f"the segmentation node exited with code {self.process.returncode} "
                                f"(log {self.log_path}; last line: {tail})")

    def log_tail(self) -> str:
        self._log.flush()
        lines = [line.strip() for line in self.log_path.read_text(errors="replace").splitlines() if line.strip()]
        return lines[-1] if lines else "(no output)"

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGINT (a clean ROS shutdown), then SIGKILL to the whole process group if it lingers."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGINT)
                self.process.wait(timeout=timeout_s)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
        self._log.close()


def _params_yaml(params: dict[str, Any]) -> str:
    return yaml.safe_dump({"/**": {"ros__parameters": params}}, sort_keys=False)


def node_params(image_topic: str, compressed: bool, checkpoint: str | None, variant: str, device: str,
                backend: str) -> dict[str, Any]:
    """Parameters for a node that reads ``image_topic`` and publishes on /segmentation/*."""
    return {"autostart": True, "variant": variant, "checkpoint": checkpoint or "", "device": device,
            "backend": backend, "cameras": ["camera"],
            "camera": {"camera": {"topic": image_topic, "compressed": compressed}}}
