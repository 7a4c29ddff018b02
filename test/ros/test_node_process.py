"""The node as users start it: the installed executable with the params file, in its own process.

This is what launch/segmentation.launch.py does (covered for real by test/launch/ where the launch
stack is installed); here it runs without launch, with the camera in a third process.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest
from sensor_msgs.msg import Image

from ddrnet_ros.ros.qos import FASTDDS_PROFILE

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ROOT / "config" / "segmentation.yaml"

#: A camera driver in another process: 848x480 rgb8 at 5 Hz (or every argv[2] s) with the given
#: reliability, until stopped.
CAMERA = """
import sys, time, array, rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
reliable = sys.argv[1] == "reliable"
period = float(sys.argv[2]) if len(sys.argv) > 2 else 0.2
rclpy.init()
node = rclpy.create_node("camera_driver")
qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT)
pub = node.create_publisher(Image, "camera/image_raw", qos)
data = array.array("B", bytes(range(256)) * (848 * 480 * 3 // 256))
i = 0
while rclpy.ok():
    msg = Image(height=480, width=848, encoding="rgb8", step=848 * 3, data=data)
    msg.header.frame_id = "camera_driver"
    msg.header.stamp.sec = i
    pub.publish(msg)
    i += 1
    time.sleep(period)
"""


@pytest.mark.parametrize("reliability", ["reliable", "best_effort"])
def test_default_input_qos_serves_a_camera_in_another_process(harness, node_process, spawn_python, ros_env,
                                                              reliability):
    node = node_process()
    # The camera driver is set up as docs/node.md recommends for large images (the node's Fast DDS
    # profile): a best-effort 1.2 MB frame from a default-configured Fast DDS writer travels as UDP
    # fragments and is mostly lost on a busy machine, whatever the subscriber does.
    camera = spawn_python(CAMERA, reliability, env={**ros_env, "FASTDDS_DEFAULT_PROFILES_FILE": str(FASTDDS_PROFILE)})
    labels = harness.collect(Image, "segmentation/labels")
    harness.wait_for(lambda: len(labels) >= 2 or not node.running() or camera.poll() is not None,
                     f"labels from a {reliability} camera in another process", timeout=60)
    assert node.running(), node.log()
    seen = {(m.header.frame_id, m.height, m.width, m.encoding) for m in labels}
    assert seen == {("camera_driver", 480, 848, "mono8")}
    assert node.stop() == 0, node.log()
    assert "Traceback" not in node.log()


def test_the_node_executable_exits_in_one_line_when_a_parameter_is_invalid(node_process):
    node = node_process("-p", "overlay_alpha:=3.0")
    assert node.process.wait(timeout=60) == 1
    log = node.log()
    assert "configure failed: parameter 'overlay_alpha' = 3.0 is invalid: expected a number in [0, 1]" in log
    assert "Traceback" not in log


def test_ddrnet_ros_run_reads_the_same_params_file(harness, node_process, spawn_python, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS.read_text().replace("topic: camera/image_raw", "topic: elsewhere/image")
                      .replace('checkpoint: shipped', "checkpoint: random").replace("device: auto", "device: cpu"))
    node = node_process(command=[sys.executable, "-m", "ddrnet_ros", "run", "--params-file", str(params),
                                 "--ros-args", "-r", "elsewhere/image:=camera/image_raw"])
    spawn_python(CAMERA, "reliable")
    labels = harness.collect(Image, "segmentation/labels")
    harness.wait_for(lambda: labels or not node.running(), "labels via ddrnet-ros run", timeout=60)
    assert labels, node.log()
    assert node.stop() == 0, node.log()
    assert "Traceback" not in node.log()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_under_load_stops_the_node_cleanly_within_two_seconds(harness, node_process, spawn_python, ros_env,
                                                                       signum):
    """The worker is busy with a frame when the signal comes: it finishes or abandons it before the
    context goes; no ERROR line, no frame counted as bad, exit status 0, quickly."""
    import time

    node = node_process("--log-level", "debug")
    camera = spawn_python(CAMERA, "reliable", "0.02",
                          env={**ros_env, "FASTDDS_DEFAULT_PROFILES_FILE": str(FASTDDS_PROFILE)})
    labels = harness.collect(Image, "segmentation/labels")
    harness.wait_for(lambda: len(labels) >= 3 or not node.running() or camera.poll() is not None,
                     "the node busy with a fast camera", timeout=60)
    assert node.running(), node.log()[-3000:]
    sent = time.monotonic()
    status = node.stop(signum)
    took = time.monotonic() - sent
    log = node.log()
    assert status == 0, log[-3000:]
    assert took < 2.0, f"exit took {took:.1f} s"
    assert "[ERROR]" not in log and "Failed to publish" not in log, log[-3000:]
    assert "Traceback" not in log
