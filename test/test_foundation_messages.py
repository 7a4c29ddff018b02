"""The package's own messages, generated from msg/, travel between processes over real DDS."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import serialize_message

from ddrnet_ros.classes import ClassMap
from ddrnet_ros.msg import ClassInfo, SegmentationInfo

MSG_DIR = Path(__file__).resolve().parents[1] / "msg"
TOPIC = "foundation/label_info"
# Latched like /segmentation/label_info: a late subscriber still gets the one message.
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def _spec() -> dict:
    """Field values for the message, chosen to exercise every field type at non-default values."""
    class_map = ClassMap.builtin()
    return {
        "stamp": [1_700_000_123, 999_999_999],
        "frame_id": "camera_front/optical",
        "model_variant": "ddrnet23_slim",
        "checkpoint_sha256": "0123456789abcdef" * 4,
        "input_height": 1024,
        "input_width": 4_294_967_295,  # uint32 max
        "ignore_label": class_map.ignore_label,
        "classes": [[i, name, *map(int, class_map.colors[i])] for i, name in enumerate(class_map.names)],
    }


def _build(spec: dict) -> SegmentationInfo:
    msg = SegmentationInfo(model_variant=spec["model_variant"], checkpoint_sha256=spec["checkpoint_sha256"],
                           input_height=spec["input_height"], input_width=spec["input_width"],
                           ignore_label=spec["ignore_label"],
                           classes=[ClassInfo(id=i, name=n, r=r, g=g, b=b) for i, n, r, g, b in spec["classes"]])
    msg.header.stamp.sec, msg.header.stamp.nanosec = spec["stamp"]
    msg.header.frame_id = spec["frame_id"]
    return msg


PUBLISHER = f"""
import json, sys
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from ddrnet_ros.msg import ClassInfo, SegmentationInfo

spec = json.loads(sys.argv[1])
rclpy.init()
node = rclpy.create_node("foundation_publisher")
qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
publisher = node.create_publisher(SegmentationInfo, {TOPIC!r}, qos)
msg = SegmentationInfo(model_variant=spec["model_variant"], checkpoint_sha256=spec["checkpoint_sha256"],
                       input_height=spec["input_height"], input_width=spec["input_width"],
                       ignore_label=spec["ignore_label"],
                       classes=[ClassInfo(id=i, name=n, r=r, g=g, b=b) for i, n, r, g, b in spec["classes"]])
msg.header.stamp.sec, msg.header.stamp.nanosec = spec["stamp"]
msg.header.frame_id = spec["frame_id"]
publisher.publish(msg)
print("published", flush=True)
try:
    rclpy.spin(node)
except (KeyboardInterrupt, ExternalShutdownException):
    pass
"""


def test_segmentation_info_round_trips_between_processes(rclpy_context, spawn_python):
    spec = _spec()
    publisher = spawn_python(PUBLISHER, json.dumps(spec))

    node = rclpy.create_node("foundation_subscriber", context=rclpy_context)
    received: list[SegmentationInfo] = []
    node.create_subscription(SegmentationInfo, TOPIC, received.append, LATCHED)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    deadline = time.monotonic() + 30
    while not received and time.monotonic() < deadline and publisher.poll() is None:
        executor.spin_once(timeout_sec=0.2)
    executor.shutdown()
    node.destroy_node()
    if not received:
        publisher.kill()
        out, err = publisher.communicate()
        pytest.fail(f"no SegmentationInfo from the publisher process\n--- stdout\n{out}\n--- stderr\n{err}")

    got = received[0]
    assert (got.header.stamp.sec, got.header.stamp.nanosec) == tuple(spec["stamp"])
    assert got.header.frame_id == spec["frame_id"]
    assert got.model_variant == spec["model_variant"]
    assert got.checkpoint_sha256 == spec["checkpoint_sha256"]
    assert (got.input_height, got.input_width) == (spec["input_height"], spec["input_width"])
    assert got.ignore_label == spec["ignore_label"]
    assert [[c.id, c.name, c.r, c.g, c.b] for c in got.classes] == spec["classes"]
    # and the CDR bytes are those of the same message built here
    assert serialize_message(got) == serialize_message(_build(spec))


def _msg_file_fields(path: Path) -> dict[str, str]:
    """Field name -> rosidl type string, read from a .msg file (constants have none here)."""
    fields = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        type_name, field = line.split()[:2]
        array = type_name.endswith("[]")
        base = type_name.removesuffix("[]")
        if not re.fullmatch(r"(u?int(8|16|32|64)|float(32|64)|bool|byte|char|string)", base) and "/" not in base:
            base = f"ddrnet_ros/{base}"  # a message of this package
        fields[field] = f"sequence<{base}>" if array else base
    return fields


@pytest.mark.parametrize("message", [SegmentationInfo, ClassInfo], ids=lambda m: m.__name__)
def test_generated_message_has_the_fields_of_its_msg_file(message):
    """A stale message build (msg/ edited, setup not re-run) shows up here, not as a runtime mystery."""
    expected = _msg_file_fields(MSG_DIR / f"{message.__name__}.msg")
    assert expected, "no fields read from the .msg file"
    assert message.get_fields_and_field_types() == expected
