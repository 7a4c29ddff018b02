"""ROS fixtures of the node tests: a real rclpy executor with the node under test and a probe node.

The probe publishes camera images and collects what the node publishes, over real DDS on the
test's own domain (rclpy_context from test/conftest.py). ``node_process`` starts the installed node
executable in a process of its own instead, as launch does.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

#: Seconds a test waits for DDS traffic before it fails.
WAIT_S = 30.0
#: The shipped params file, which the node processes of the tests start with.
PARAMS = Path(__file__).resolve().parents[2] / "config" / "segmentation.yaml"


class Harness:
    """One rclpy context, one executor thread, the probe node and any SegmentationNode started here."""

    def __init__(self, context) -> None:
        import rclpy
        from rclpy.executors import MultiThreadedExecutor

        self.context = context
        self.probe = rclpy.create_node("probe", context=context)
        self.executor = MultiThreadedExecutor(num_threads=2, context=context)
        self.executor.add_node(self.probe)
        self.nodes: list[Any] = []
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            self.executor.spin()
        except ExternalShutdownException:
            pass

    def node(self, autostart: bool = True, name: str = "segmentation_node", namespace: str | None = None,
             **params: Any):
        """A SegmentationNode with these parameters, added to the executor (configured+active by default)."""
        from rclpy.lifecycle import TransitionCallbackReturn
        from rclpy.parameter import Parameter

        from ddrnet_ros.ros.node import SegmentationNode

        params.setdefault("checkpoint", "random")
        params.setdefault("device", "cpu")
        overrides = [Parameter(k, value=v) for k, v in params.items()]
        kwargs = {"namespace": namespace} if namespace else {}
        node = SegmentationNode(name, context=self.context, parameter_overrides=overrides, **kwargs)
        self.nodes.append(node)
        self.executor.add_node(node)
        if autostart:
            assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS, node.configure_error
            assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        return node

    def publisher(self, msg_type, topic: str, reliable: bool = True):
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        reliability = ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT
        qos = QoSProfile(depth=10, reliability=reliability)
        return self.probe.create_publisher(msg_type, topic, qos)

    def collect(self, msg_type, topic: str, qos=None) -> list:
        """A list that fills with every message received on ``topic`` (reliable, depth 50 unless given)."""
        from rclpy.qos import QoSProfile

        received: list = []
        self.probe.create_subscription(msg_type, topic, received.append, qos or QoSProfile(depth=50))
        return received

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.02)

    def wait_matched(self, publisher, count: int = 1) -> None:
        self.wait_for(lambda: publisher.get_subscription_count() >= count,
                      f"{count} subscriber(s) of {publisher.topic_name}")

    def wait_subscribed(self, topic: str, count: int = 1) -> None:
        """Until ``count`` subscriptions exist on ``topic`` (the probe's outputs are seen by the node)."""
        self.wait_for(lambda: self.probe.count_subscribers(topic) >= count, f"{count} subscriber(s) on {topic}")

    def close(self) -> None:
        self.executor.shutdown()
        self._thread.join(timeout=10)
        for node in self.nodes:
            node.destroy_node()
        self.probe.destroy_node()


@pytest.fixture
def harness(rclpy_context) -> Iterator[Harness]:
    harness = Harness(rclpy_context)
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture
def checkpoint_file(tmp_path: Path) -> Path:
    """Random ddrnet23_slim weights saved to a file, so the node and a direct Segmenter share them."""
    import torch

    from ddrnet_ros.model import create_model, save_checkpoint

    torch.manual_seed(0)
    return save_checkpoint(create_model("ddrnet23_slim", num_classes=19).eval(), tmp_path / "random.pt",
                           metadata={"variant": "ddrnet23_slim", "num_classes": 19})


def camera_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A deterministic RGB test picture with structure (gradients and blocks), not plain noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([(x * 255 // max(width - 1, 1)), (y * 255 // max(height - 1, 1)),
                      ((x // 16 + y // 16) % 2) * 200], axis=-1).astype(np.uint8)
    noise = rng.integers(0, 30, image.shape, np.uint8)
    return image + noise


@pytest.fixture
def make_image() -> Callable[..., np.ndarray]:
    return camera_image


def image_message(pixels: np.ndarray, encoding: str = "rgb8", stamp: tuple[int, int] = (12, 345),
                  frame_id: str = "cam"):
    """A sensor_msgs/Image of RGB ``pixels`` laid out in ``encoding`` by the project's encoder."""
    from sensor_msgs.msg import Image

    from ddrnet_ros.encodings import encode_image

    data, step = encode_image(pixels, encoding)
    msg = Image(height=pixels.shape[0], width=pixels.shape[1], encoding=encoding, step=step, data=data)
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
    msg.header.frame_id = frame_id
    return msg


@pytest.fixture
def make_image_msg() -> Callable[..., Any]:
    return image_message


@dataclass
class NodeProcess:
    """The node in its own process, its stdout and stderr in one file.

    Not a pipe: a pipe nobody reads holds 64 KiB, which a node at ``--log-level debug`` writes in a
    second or two; its next log line then blocks with the GIL held and the whole node stops, the
    worker in the middle of a frame, until someone reads (CI saw a node "stuck" for 60 s that way).
    """

    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, signum: int = signal.SIGINT, timeout: float = 20) -> int:
        """Send ``signum`` and wait for the exit status (``subprocess.TimeoutExpired`` after ``timeout``)."""
        self.process.send_signal(signum)
        return self.process.wait(timeout=timeout)


@pytest.fixture
def node_process(ros_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., NodeProcess]]:
    """Start the installed node executable (as launch does) with the params file and these ROS
    arguments; ``command=[...]`` starts that command line instead (``ddrnet-ros run ...``)."""
    from ament_index_python.packages import get_package_prefix

    executable = Path(get_package_prefix("ddrnet_ros")) / "lib" / "ddrnet_ros" / "segmentation_node"
    env = {**ros_env, "PATH": f"{Path(sys.executable).parent}:{ros_env.get('PATH', '')}"}
    started: list[NodeProcess] = []

    def start(*ros_args: str, command: list[str] | None = None) -> NodeProcess:
        log_path = tmp_path / f"node{len(started)}.log"
        argv = command or [str(executable), "--ros-args", "--params-file", str(PARAMS), "-p", "checkpoint:=random",
                           "-p", "device:=cpu", *ros_args]
        with open(log_path, "w") as log:
            process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        started.append(NodeProcess(process, log_path))
        return started[-1]

    yield start
    for node in started:
        if node.process.poll() is None:
            node.process.kill()
        node.process.wait()
