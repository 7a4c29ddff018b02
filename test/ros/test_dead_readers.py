"""Dead readers stop costing (issue #16): subscriber processes of the lazy outputs are killed with
SIGKILL, and the node must stop rendering for them soon, not when DDS's default 20 s lease ends.

One node process, a camera in this process, and three viewer processes, each the only reader of
one lazy output, killed at the same moment:

* colour, a reliable reader on Fast DDS defaults: the node sees it stop acknowledging (about 1 s,
  ddrnet_ros.ros.readers), whatever its lease;
* overlay, a best-effort reader (nothing to acknowledge) that loads the node's Fast DDS profile:
  dropped when its 3 s participant lease ends;
* confidence, a best-effort reader on Fast DDS defaults: only its 20 s lease ends it, so it is
  still rendered when the other two have stopped (the "before"; its full 20 s, measured once, is
  in docs/node.md "Dead readers": waiting for it here would make this test 20 s longer).

What the node renders is read from its /diagnostics ("outputs": what each window published).
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image

from ddrnet_ros.ros.qos import FASTDDS_PROFILE
from ddrnet_ros.ros.readers import UNACKED_READER_S

#: Seconds between /diagnostics windows of the node under test.
DIAGNOSTICS_PERIOD = 0.2
#: Camera frame period (s): small frames, so that the node serves each one on a loaded CPU.
CAMERA_PERIOD = 0.1
#: The node's profile's participant lease (fastdds_large_images.xml).
PROFILE_LEASE_S = 3.0
#: Bounds: the detection itself plus a frame, a diagnostics window and a loaded machine's slack.
SLACK_S = 2.0

#: A viewer of one output: argv[1] topic, argv[2] reliable|best_effort; says "receiving" once.
VIEWER = """
import sys, rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
rclpy.init()
node = rclpy.create_node("viewer")
reliability = ReliabilityPolicy.RELIABLE if sys.argv[2] == "reliable" else ReliabilityPolicy.BEST_EFFORT
seen = []
def on_image(msg):
    if not seen:
        print("receiving", flush=True)
    seen.append(1)
node.create_subscription(Image, sys.argv[1], on_image, QoSProfile(depth=1, reliability=reliability))
rclpy.spin(node)
"""


class Camera:
    """Small rgb8 frames every CAMERA_PERIOD from a thread of this process, until stopped."""

    def __init__(self, publisher, msg: Any) -> None:
        self._publisher, self._msg = publisher, msg
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(CAMERA_PERIOD):
            self._publisher.publish(self._msg)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class Windows:
    """The node's /diagnostics windows as (arrival time, outputs published in that window)."""

    def __init__(self, harness) -> None:
        self.arrived: list[tuple[float, tuple[str, ...]]] = []
        harness.probe.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if values.get("output_rate_hz", "0.00") != "0.00":  # a window that served frames
                self.arrived.append((time.monotonic(), tuple(values["outputs"].split(", "))))

    def latest(self) -> tuple[str, ...]:
        return self.arrived[-1][1] if self.arrived else ()

    def stopped(self, output: str, since: float) -> float | None:
        """Seconds from ``since`` to the first window after it that served frames without ``output``."""
        for arrival, outputs in self.arrived:
            if arrival > since and output not in outputs:
                return arrival - since
        return None


def test_killed_viewers_stop_costing_renders_within_a_second_or_their_lease(
        harness, node_process, spawn_python, ros_env, make_image, make_image_msg):
    node = node_process("-p", f"diagnostics_period:={DIAGNOSTICS_PERIOD}")
    windows = Windows(harness)
    camera_pub = harness.publisher(Image, "camera/image_raw")
    harness.wait_for(lambda: camera_pub.get_subscription_count() > 0 or node.process.poll() is not None,
                     "the node process to subscribe", timeout=60)
    assert node.process.poll() is None, node.log()
    camera = Camera(camera_pub, make_image_msg(make_image(96, 128)))
    defaults = {k: v for k, v in ros_env.items() if k != "FASTDDS_DEFAULT_PROFILES_FILE"}
    profile = {**defaults, "FASTDDS_DEFAULT_PROFILES_FILE": str(FASTDDS_PROFILE)}
    viewers = {"color": spawn_python(VIEWER, "segmentation/color", "reliable", env=defaults),
               "overlay": spawn_python(VIEWER, "segmentation/overlay", "best_effort", env=profile),
               "confidence": spawn_python(VIEWER, "segmentation/confidence", "best_effort", env=defaults)}
    try:
        for output, viewer in viewers.items():
            assert viewer.stdout.readline().strip() == "receiving", f"{output} viewer: {viewer.communicate()[1]}"
        harness.wait_for(lambda: set(viewers) <= set(windows.latest()), "the node rendering all three outputs")

        killed = time.monotonic()
        for viewer in viewers.values():
            viewer.send_signal(signal.SIGKILL)
        harness.wait_for(lambda: windows.stopped("overlay", killed) is not None, "the overlay to stop",
                         timeout=PROFILE_LEASE_S + SLACK_S + 5)
        color, overlay = windows.stopped("color", killed), windows.stopped("overlay", killed)
        still_confidence = "confidence" in windows.latest()
        lasted = time.monotonic() - killed
    finally:
        camera.stop()
    print(f"\nafter SIGKILL: colour (reliable, defaults) rendered for {color:.2f} s, overlay (best effort, "
          f"node profile) {overlay:.2f} s, confidence (best effort, defaults) "
          f"{'still rendered' if still_confidence else 'stopped'} after {lasted:.2f} s")
    assert color < UNACKED_READER_S + SLACK_S, f"colour rendered {color:.2f} s for a dead reader"
    assert overlay < PROFILE_LEASE_S + SLACK_S, f"overlay rendered {overlay:.2f} s for a dead reader"
    assert still_confidence, "a best-effort reader on the default 20 s lease was dropped early: what changed?"
    log = node.log()
    assert "the only reader of /segmentation/color has not acknowledged" in log, log[-3000:]
    assert "/segmentation/overlay has not acknowledged" not in log  # best effort: its lease ended it
    assert node.process.poll() is None
