"""The bag player publishes a bag over real DDS on the bag's schedule, with /clock."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image

from ddrnet_ros.data.bags import BagWriter
from ddrnet_ros.ros.player import BagPlayer

CAMERA, LABELS = "/camera/image_raw", "/camera/labels"
START_NS = 1_700_000_000 * 10**9
PERIOD_NS = 200_000_000  # 5 Hz in the bag
FRAMES = 5


@pytest.fixture
def domain_id(ros_domain_id: int) -> int:
    """A DDS domain of this test alone (locked for it: other tests publish the same topic names)."""
    return ros_domain_id


@pytest.fixture
def bag(tmp_path):
    path = tmp_path / "bag"
    with BagWriter(path) as writer:
        for i in range(FRAMES):
            image = np.full((8, 16, 3), i * 40, np.uint8)
            writer.write_image(CAMERA, image, START_NS + i * PERIOD_NS, "cam")
            writer.write_image(LABELS, image[:, :, 0] // 40, START_NS + i * PERIOD_NS, "cam", encoding="mono8")
    return path


class Recorder(Node):
    """A plain rclpy subscriber noting what arrives and when."""

    def __init__(self, context, topics) -> None:
        super().__init__("recorder", context=context)
        self.received: list[tuple[str, int, int, float]] = []  # topic, stamp ns, first byte, arrival
        self.clock: list[int] = []
        self.lock = threading.Lock()
        profile = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        for topic in topics:
            self.create_subscription(Image, topic, lambda msg, t=topic: self._on_image(t, msg), profile)
        self.create_subscription(Clock, "/clock", self._on_clock, 10)

    def _on_image(self, topic: str, msg: Image) -> None:
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        with self.lock:
            self.received.append((topic, stamp, msg.data[0], time.monotonic()))

    def _on_clock(self, msg: Clock) -> None:
        with self.lock:
            self.clock.append(msg.clock.sec * 10**9 + msg.clock.nanosec)


@pytest.fixture
def ros(domain_id):
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    executor = SingleThreadedExecutor(context=context)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    yield context, executor, spinner
    executor.shutdown()
    context.try_shutdown()


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_player_publishes_every_frame_in_order_on_the_bag_schedule_scaled_by_rate(bag, ros):
    context, executor, spinner = ros
    recorder_node = Recorder(context, [CAMERA, LABELS])
    player_node = Node("player", context=context)
    executor.add_node(recorder_node)
    spinner.start()
    player = BagPlayer(player_node, bag, rate=2.0, clock_hz=20.0)
    assert player.wait_for_subscribers(10.0)
    stats = player.play()

    assert _wait_for(lambda: len(recorder_node.received) == 2 * FRAMES, 10.0), recorder_node.received
    assert stats.published == {CAMERA: FRAMES, LABELS: FRAMES}
    camera = [r for r in recorder_node.received if r[0] == CAMERA]
    assert [r[1] for r in camera] == [START_NS + i * PERIOD_NS for i in range(FRAMES)]  # header stamps kept
    assert [r[2] for r in camera] == [i * 40 for i in range(FRAMES)]  # payload bytes kept
    # The bag spans 0.8 s; at rate 2 playback takes 0.4 s: never sooner, and not much later.
    arrivals = np.array([r[3] for r in camera])
    assert np.all(arrivals[1:] - arrivals[0] >= (np.arange(1, FRAMES) * PERIOD_NS / 1e9 / 2.0) - 0.03)
    assert 0.4 - 0.03 <= stats.wall_time_s < 0.4 + 1.5
    # /clock carries the bag's time and never runs backwards.
    assert _wait_for(lambda: len(recorder_node.clock) >= FRAMES, 5.0)
    clock = np.array(recorder_node.clock)
    assert np.all(np.diff(clock) >= 0)
    assert clock.min() >= START_NS and clock.max() == START_NS + (FRAMES - 1) * PERIOD_NS



def _play_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ddrnet_ros", "play", *args]


def _env(domain_id: int) -> dict[str, str]:
    return {**os.environ, "ROS_DOMAIN_ID": str(domain_id)}


def test_play_command_feeds_a_subscriber_in_another_process_with_clock(bag, ros, domain_id):
    context, executor, spinner = ros
    recorder = Recorder(context, [CAMERA])
    executor.add_node(recorder)
    spinner.start()
    done = subprocess.run(_play_command(str(bag), "--topics", CAMERA, "--rate", "4", "--clock",
                                        "--wait-for-subscribers", "20"),
                          env=_env(domain_id), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"played {FRAMES} messages" in done.stdout
    assert _wait_for(lambda: len(recorder.received) == FRAMES, 10.0)
    assert [r[1] for r in recorder.received] == [START_NS + i * PERIOD_NS for i in range(FRAMES)]
    assert {r[0] for r in recorder.received} == {CAMERA}  # --topics left the labels out
    assert _wait_for(lambda: recorder.clock and recorder.clock[-1] == START_NS + (FRAMES - 1) * PERIOD_NS, 5.0)


def test_play_command_stops_a_loop_cleanly_on_sigterm(bag, domain_id):
    process = subprocess.Popen(_play_command(str(bag), "--loop", "--rate", "5"), env=_env(domain_id),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3.0)  # start-up plus a few loops of the 0.16 s bag
        assert process.poll() is None, process.stderr.read()  # still looping
        process.terminate()
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert "played" in out


def test_play_command_names_the_bags_topics_when_one_is_missing(bag, domain_id):
    done = subprocess.run(_play_command(str(bag), "--topics", "/front/image"), env=_env(domain_id),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    err = done.stderr.strip()
    assert err.startswith("ddrnet-ros play: error: topic /front/image is not in bag")
    assert CAMERA in err and LABELS in err and "\n" not in err
