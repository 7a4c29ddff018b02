"""The segmentation node in this process, over real DDS: what it publishes for what it receives."""

from __future__ import annotations

import gc
import math
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from ddrnet_ros.classes import ClassMap, colorize
from ddrnet_ros.encodings import decode_compressed, decode_image, encode_compressed
from ddrnet_ros.engine import Segmenter, SegmenterConfig
from ddrnet_ros.model import sha256_of
from ddrnet_ros.msg import SegmentationInfo

RAW_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "yuv422", "yuv422_yuy2",
                 "bayer_rggb8", "bayer_bggr8", "bayer_gbrg8", "bayer_grbg8")


def labels_of(msg: Image) -> np.ndarray:
    assert msg.encoding == "mono8"
    return np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)[:, :msg.width]


def rgb_of(msg: Image) -> np.ndarray:
    assert msg.encoding == "rgb8"
    return np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)[:, :msg.width * 3].reshape(
        msg.height, msg.width, 3)


def diagnostics_value(arrays: list, camera: str, key: str) -> str | None:
    """The newest value of ``key`` in the status of ``camera``."""
    for array in reversed(arrays):
        for status in array.status:
            if status.name.endswith(f": {camera}"):
                return {kv.key: kv.value for kv in status.values}[key]
    return None


def busy_window_value(arrays: list, camera: str, key: str) -> float:
    """The newest numeric ``key`` of ``camera``: per-window figures are NaN in a window without frames."""
    for array in reversed(arrays):
        for status in array.status:
            if status.name.endswith(f": {camera}"):
                value = float({kv.key: kv.value for kv in status.values}[key])
                if not math.isnan(value):
                    return value
    return math.nan


def engine_labels(segmenter: Segmenter, decoded) -> np.ndarray:
    return segmenter.segment(decoded.pixels, channel_order=decoded.channel_order).labels


@pytest.fixture
def segmenter(checkpoint_file) -> Segmenter:
    """The engine the node runs, built directly from the same checkpoint."""
    return Segmenter(SegmenterConfig(checkpoint=str(checkpoint_file), device="cpu"))


def test_labels_equal_the_engine_and_keep_input_header_and_size_in_every_encoding(
        harness, checkpoint_file, segmenter, make_image, make_image_msg):
    harness.node(checkpoint=str(checkpoint_file))
    labels = harness.collect(Image, "segmentation/labels")
    camera = harness.publisher(Image, "camera/image_raw")
    harness.wait_matched(camera)
    pixels = make_image(48, 64)
    sent = {}
    for i, encoding in enumerate(RAW_ENCODINGS):
        msg = make_image_msg(pixels, encoding, stamp=(100 + i, 1000 * i), frame_id=f"cam_{encoding}")
        sent[msg.header.frame_id] = msg
        camera.publish(msg)
        harness.wait_for(lambda: len(labels) == i + 1, f"labels for {encoding}")
    for out in labels:
        msg = sent[out.header.frame_id]
        assert out.header == msg.header
        assert (out.height, out.width) == (msg.height, msg.width)
        expected = engine_labels(segmenter, decode_image(msg.data, msg.height, msg.width, msg.encoding,
                                                         msg.step, msg.is_bigendian))
        np.testing.assert_array_equal(labels_of(out), expected, err_msg=msg.encoding)


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_compressed_camera_labels_equal_the_engine_on_the_decoded_picture(
        harness, checkpoint_file, segmenter, make_image, fmt):
    harness.node(checkpoint=str(checkpoint_file), **{"camera.camera.compressed": True})
    labels = harness.collect(Image, "segmentation/labels")
    camera = harness.publisher(CompressedImage, "camera/image_raw/compressed")
    harness.wait_matched(camera)
    msg = CompressedImage(format=fmt, data=encode_compressed(make_image(40, 56, seed=3), fmt))
    msg.header.frame_id, msg.header.stamp.sec = "front", 7
    camera.publish(msg)
    harness.wait_for(lambda: labels, "labels of a compressed image")
    assert labels[0].header == msg.header and (labels[0].height, labels[0].width) == (40, 56)
    np.testing.assert_array_equal(labels_of(labels[0]), engine_labels(segmenter, decode_compressed(msg.data, fmt)))


@pytest.mark.parametrize("height,width,pad", [(1080, 1920, False), (480, 848, True)])
def test_outputs_at_odd_sizes_are_pixel_aligned_with_the_engine_output(
        harness, checkpoint_file, make_image, make_image_msg, height, width, pad):
    # The network runs at another size, trimmed or letterboxed; the node must not shift or crop anything.
    size = [256, 512]
    harness.node(checkpoint=str(checkpoint_file), input_size=size, pad_to_input_size=pad)
    labels = harness.collect(Image, "segmentation/labels")
    color = harness.collect(Image, "segmentation/color")
    camera = harness.publisher(Image, "camera/image_raw")
    harness.wait_matched(camera)
    harness.wait_subscribed("/segmentation/color")
    pixels = make_image(height, width, seed=5)
    camera.publish(make_image_msg(pixels, "bgr8"))
    harness.wait_for(lambda: labels and color, "labels and color")
    direct = Segmenter(SegmenterConfig(checkpoint=str(checkpoint_file), device="cpu", input_size=tuple(size),
                                       pad_to_input_size=pad))
    expected = direct.segment(pixels).labels
    assert expected.shape == (height, width)
    np.testing.assert_array_equal(labels_of(labels[0]), expected)
    np.testing.assert_array_equal(rgb_of(color[0]), colorize(expected, direct.class_map))


def test_color_overlay_and_confidence_follow_the_labels_once_subscribed(harness, checkpoint_file, make_image,
                                                                      make_image_msg):
    node = harness.node(checkpoint=str(checkpoint_file), overlay_alpha=0.25)
    labels = harness.collect(Image, "segmentation/labels")
    camera = harness.publisher(Image, "camera/image_raw")
    harness.wait_matched(camera)
    camera.publish(make_image_msg(make_image(32, 48), stamp=(1, 0)))
    harness.wait_for(lambda: labels, "labels")
    outputs = {name: harness.collect(Image, f"segmentation/{name}") for name in ("color", "overlay", "confidence")}
    for name in outputs:
        harness.wait_for(lambda: node.cameras[0].publishers[name].get_subscription_count() > 0, f"{name} subscriber")
    pixels = make_image(32, 48, seed=9)
    camera.publish(make_image_msg(pixels, stamp=(2, 0)))
    harness.wait_for(lambda: all(outputs.values()) and len(labels) == 2, "all outputs")
    class_map = node.segmenter.class_map
    got = labels_of(labels[1])
    np.testing.assert_array_equal(rgb_of(outputs["color"][0]), colorize(got, class_map))
    expected = node.segmenter.segment(pixels, want_overlay=True, overlay_alpha=0.25).overlay
    np.testing.assert_array_equal(rgb_of(outputs["overlay"][0]), expected)
    confidence = outputs["confidence"][0]
    assert (confidence.encoding, confidence.height, confidence.width) == ("mono8", 32, 48)
    assert all(out[0].header.stamp.sec == 2 for out in outputs.values())  # frame 1 came before subscribers


def test_color_overlay_and_confidence_are_not_computed_while_nobody_subscribes(harness, checkpoint_file, make_image,
                                                                              make_image_msg):
    node = harness.node(checkpoint=str(checkpoint_file))
    engine_calls: list[tuple[dict, object]] = []
    real_segment = node.segmenter.segment

    def recording_segment(*args, **kwargs):  # the real engine, with its requests and results recorded
        result = real_segment(*args, **kwargs)
        engine_calls.append((kwargs, result))
        return result

    node.segmenter.segment = recording_segment
    labels = harness.collect(Image, "segmentation/labels")
    camera = harness.publisher(Image, "camera/image_raw")
    harness.wait_matched(camera)
    camera.publish(make_image_msg(make_image(32, 48), stamp=(1, 0)))
    harness.wait_for(lambda: labels, "labels with no other subscriber")
    wanted, result = engine_calls[0]
    assert not (wanted["want_color"] or wanted["want_overlay"] or wanted["want_confidence"])
    assert result.color is None and result.overlay is None and result.confidence is None

    overlays = harness.collect(Image, "segmentation/overlay")
    harness.wait_for(lambda: node.cameras[0].publishers["overlay"].get_subscription_count() > 0, "overlay subscriber")
    camera.publish(make_image_msg(make_image(32, 48), stamp=(2, 0)))
    harness.wait_for(lambda: overlays and len(labels) == 2, "labels and overlay")
    wanted, result = engine_calls[1]
    assert wanted["want_overlay"] and not (wanted["want_color"] or wanted["want_confidence"])
    assert result.overlay is not None and result.color is None and result.confidence is None


def test_label_info_reaches_a_subscriber_that_starts_late(harness, checkpoint_file):
    harness.node(checkpoint=str(checkpoint_file))
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    infos = harness.collect(SegmentationInfo, "segmentation/label_info", latched)
    harness.wait_for(lambda: infos, "latched label info")
    info = infos[0]
    class_map = ClassMap.load(None)
    assert info.model_variant == "ddrnet23_slim"
    assert info.checkpoint_sha256 == sha256_of(checkpoint_file)
    assert info.ignore_label == 255 and (info.input_height, info.input_width) == (0, 0)
    assert [c.name for c in info.classes] == list(class_map.names)
    assert [(c.r, c.g, c.b) for c in info.classes] == [tuple(map(int, c)) for c in class_map.colors]
    assert [c.id for c in info.classes] == list(range(class_map.num_classes))


def test_vision_msgs_label_info_is_latched_where_vision_msgs_is_installed(harness, checkpoint_file):
    try:
        from vision_msgs.msg import LabelInfo
    except ImportError:
        pytest.skip("vision_msgs is not installed (no wheel exists): `make test-full` builds it from a git mirror "
                    "of ros-perception/vision_msgs (scripts/build_vision_msgs.sh) and runs this test")
    harness.node(checkpoint=str(checkpoint_file), confidence_threshold=0.25)
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    infos = harness.collect(LabelInfo, "segmentation/vision_label_info", latched)
    harness.wait_for(lambda: infos, "latched vision_msgs/LabelInfo")
    class_map = ClassMap.load(None)
    assert [(c.class_id, c.class_name) for c in infos[0].class_map] == list(enumerate(class_map.names))
    assert infos[0].threshold == pytest.approx(0.25)


def test_bad_inputs_are_counted_and_skipped_and_the_next_good_frame_is_served(harness, make_image, make_image_msg):
    harness.node(cameras=["raw", "packed"], **{"camera.packed.compressed": True}, diagnostics_period=0.2)
    labels = harness.collect(Image, "segmentation/raw/labels")
    diagnostics = harness.collect(DiagnosticArray, "/diagnostics")
    raw = harness.publisher(Image, "raw/image_raw")
    packed = harness.publisher(CompressedImage, "packed/image_raw/compressed")
    harness.wait_matched(raw)
    harness.wait_matched(packed)
    good = make_image_msg(make_image(24, 32))
    bad = [Image(height=24, width=32, encoding="rgb8", step=40, data=good.data),           # step < width*3
           Image(height=24, width=32, encoding="rgb8", step=96, data=good.data[:100]),     # truncated
           Image(height=24, width=32, encoding="32FC1", step=128, data=good.data),         # unsupported
           Image(height=0, width=0, encoding="rgb8", step=0)]                             # 0x0
    for i, msg in enumerate(bad):
        msg.header.stamp.sec = i
        raw.publish(msg)
        harness.wait_for(lambda: diagnostics_value(diagnostics, "raw", "bad_input_total") == str(i + 1),
                         f"bad input {i + 1} counted")
    packed.publish(CompressedImage(format="jpeg", data=b"\xff\xd8 this is not a jpeg"))
    harness.wait_for(lambda: diagnostics_value(diagnostics, "packed", "bad_input_total") == "1",
                     "undecodable jpeg counted")
    good.header.stamp.sec = 99
    raw.publish(good)
    harness.wait_for(lambda: labels, "labels of the good frame after the bad ones")
    assert labels[0].header.stamp.sec == 99 and (labels[0].height, labels[0].width) == (24, 32)


def test_two_cameras_of_different_sizes_each_get_outputs_of_their_own_size(harness, make_image, make_image_msg):
    harness.node(cameras=["front", "rear"])
    front_labels = harness.collect(Image, "segmentation/front/labels")
    rear_labels = harness.collect(Image, "segmentation/rear/labels")
    front = harness.publisher(Image, "front/image_raw")
    rear = harness.publisher(Image, "rear/image_raw")
    harness.wait_matched(front)
    harness.wait_matched(rear)
    for i in range(3):
        front.publish(make_image_msg(make_image(40, 64), stamp=(i, 1), frame_id="front"))
        rear.publish(make_image_msg(make_image(24, 80), "bgr8", stamp=(i, 2), frame_id="rear"))
    harness.wait_for(lambda: front_labels and rear_labels, "labels from both cameras")
    assert {(m.header.frame_id, m.height, m.width) for m in front_labels} == {("front", 40, 64)}
    assert {(m.header.frame_id, m.height, m.width) for m in rear_labels} == {("rear", 24, 80)}


@pytest.mark.parametrize("batch_cameras, batched", [("on", True), ("auto", False)])
def test_cross_camera_batches_serve_each_camera_its_own_frame_and_are_reported(
        harness, checkpoint_file, segmenter, make_image, make_image_msg, batch_cameras, batched):
    """batch_cameras on: frames waiting on both cameras share a forward pass, and each camera still gets
    the labels of its own frame, with its header; auto on the CPU stays frame by frame."""
    harness.node(cameras=["front", "rear"], checkpoint=str(checkpoint_file), batch_cameras=batch_cameras,
                 diagnostics_period=0.2)
    outputs = {cam: harness.collect(Image, f"segmentation/{cam}/labels") for cam in ("front", "rear")}
    diagnostics = harness.collect(DiagnosticArray, "/diagnostics")
    publishers = {cam: harness.publisher(Image, f"{cam}/image_raw") for cam in ("front", "rear")}
    for publisher in publishers.values():
        harness.wait_matched(publisher)
    images = {(cam, i): make_image(192, 320, seed=10 * i + index)
              for i in range(8) for index, cam in enumerate(("front", "rear"))}
    for i in range(8):  # both cameras at once, faster than the node: frames wait together
        for cam in ("front", "rear"):
            publishers[cam].publish(make_image_msg(images[cam, i], stamp=(i, 0), frame_id=f"{cam}:{i}"))
        time.sleep(0.05)
    harness.wait_for(lambda: all(any(m.header.frame_id.endswith(":7") for m in outputs[c]) for c in outputs),
                     "the last frame of both cameras")
    for cam, received in outputs.items():
        for msg in received:
            name, index = msg.header.frame_id.split(":")
            assert name == cam and msg.header.stamp.sec == int(index)
            expected = segmenter.segment(images[cam, int(index)]).labels
            assert (labels_of(msg) == expected).mean() > 0.999  # its own frame, whatever shared the pass
    harness.wait_for(lambda: diagnostics_value(diagnostics, "rear", "published_total") == str(len(outputs["rear"])),
                     "diagnostics to catch up")
    largest = max(int({kv.key: kv.value for kv in s.values}["batch_size_max"])
                  for a in diagnostics for s in a.status)
    assert largest == (2 if batched else 1)


def test_overload_drops_superseded_frames_counts_them_and_keeps_latency_bounded(harness, make_image, make_image_msg):
    node = harness.node(diagnostics_period=0.2)
    labels = harness.collect(Image, "segmentation/labels")
    diagnostics = harness.collect(DiagnosticArray, "/diagnostics")
    camera = harness.publisher(Image, "camera/image_raw")
    harness.wait_matched(camera)
    pixels = make_image(256, 512)
    sent = 50
    for i in range(sent):  # 50 Hz: several frames arrive during each inference at this size
        msg = make_image_msg(pixels, stamp=(0, 0))
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.header.frame_id = str(i)
        camera.publish(msg)
        time.sleep(0.02)
    last = str(sent - 1)
    harness.wait_for(lambda: any(m.header.frame_id == last for m in labels), "the newest frame served")
    harness.wait_for(lambda: diagnostics_value(diagnostics, "camera", "published_total") == str(len(labels)),
                     "diagnostics to catch up")
    dropped = int(diagnostics_value(diagnostics, "camera", "dropped_total"))
    received = int(diagnostics_value(diagnostics, "camera", "received_total"))
    assert len(labels) < sent and dropped > 0
    assert received == dropped + len(labels)  # every frame is either served or counted as dropped
    # latest-frame policy: the newest frame waits for at most the one inference in progress
    inference_p95 = busy_window_value(diagnostics, "camera", "inference_p95_ms")
    latency_p95 = busy_window_value(diagnostics, "camera", "latency_p95_ms")
    assert not math.isnan(inference_p95) and latency_p95 < 3 * inference_p95 + 500


def test_a_best_effort_publisher_is_served_with_the_default_input_qos(harness, make_image, make_image_msg):
    node = harness.node()
    labels = harness.collect(Image, "segmentation/labels")
    camera = harness.publisher(Image, "camera/image_raw", reliable=False)
    harness.wait_for(lambda: node.cameras[0].reliability == ReliabilityPolicy.BEST_EFFORT,
                     "the node to follow the best-effort publisher")
    harness.wait_matched(camera)
    msg = make_image_msg(make_image(32, 32))
    harness.wait_for(lambda: camera.publish(msg) or labels, "labels from a best-effort camera", timeout=15)
    assert (labels[0].height, labels[0].width) == (32, 32)


def test_end_to_end_latency_follows_sim_time_from_clock(harness, make_image, make_image_msg):
    from rosgraph_msgs.msg import Clock

    node = harness.node(use_sim_time=True, diagnostics_period=0.2)
    clock = harness.probe.create_publisher(Clock, "/clock", 10)
    diagnostics = harness.collect(DiagnosticArray, "/diagnostics")
    labels = harness.collect(Image, "segmentation/labels")
    camera = harness.publisher(Image, "camera/image_raw")
    harness.wait_matched(camera)
    now = Clock()
    now.clock.sec, now.clock.nanosec = 1000, 250_000_000  # the bag is 250 ms past the frame's stamp
    harness.wait_for(lambda: clock.publish(now) or node.get_clock().now().nanoseconds == 1_000_250_000_000,
                     "the node to take /clock")
    camera.publish(make_image_msg(make_image(32, 32), stamp=(1000, 0)))
    harness.wait_for(lambda: labels, "labels under sim time")
    harness.wait_for(lambda: diagnostics_value(diagnostics, "camera", "latency_p50_ms") not in (None, "nan"),
                     "latency in diagnostics")
    assert float(diagnostics_value(diagnostics, "camera", "latency_p50_ms")) == pytest.approx(250.0)


def test_diagnostics_report_rates_engine_times_and_the_device(harness, make_image, make_image_msg):
    harness.node(diagnostics_period=0.5)
    diagnostics = harness.collect(DiagnosticArray, "/diagnostics")
    labels = harness.collect(Image, "segmentation/labels")
    camera = harness.publisher(Image, "camera/image_raw")
    harness.wait_matched(camera)
    for i in range(3):
        camera.publish(make_image_msg(make_image(32, 32), stamp=(i, 0)))
        harness.wait_for(lambda: len(labels) == i + 1, "labels")
    harness.wait_for(lambda: diagnostics_value(diagnostics, "camera", "published_total") == "3", "diagnostics")
    status = [s for a in diagnostics for s in a.status][-1]
    values = {kv.key: kv.value for kv in status.values}
    assert status.name == "segmentation_node: camera" and values["device"] == "cpu" == status.hardware_id
    assert values["engine"] == "torch fp32"
    assert values["received_total"] == "3" and values["dropped_total"] == "0" and values["bad_input_total"] == "0"
    windows = [{kv.key: kv.value for kv in s.values} for a in diagnostics for s in a.status]
    served = [w for w in windows if w["output_rate_hz"] != "0.00"]
    assert served and all(float(w["inference_p50_ms"]) > 0 and float(w["latency_p95_ms"]) > 0 for w in served)


def _tracked_by_gc(obj) -> bool:
    return any(candidate is obj for candidate in gc.get_objects())


def test_configure_freezes_the_loaded_model_out_of_the_collector_and_cleanup_thaws_it(harness):
    node = harness.node()
    weight = next(node.segmenter.module.parameters())
    assert gc.get_freeze_count() > 100_000  # the model, torch and rclpy: everything alive after configure
    assert not _tracked_by_gc(weight)
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert gc.get_freeze_count() == 0 and _tracked_by_gc(weight)


def test_freeze_gc_false_leaves_the_collector_alone(harness):
    node = harness.node(freeze_gc=False)
    assert gc.get_freeze_count() == 0
    assert _tracked_by_gc(next(node.segmenter.module.parameters()))


# ---------------------------------------------------------------------- reliability and ROS conventions


def test_a_frame_over_max_input_pixels_is_refused_from_its_header_and_counted(harness, make_image, make_image_msg):
    harness.node(max_input_pixels=64 * 64, diagnostics_period=0.2)
    labels = harness.collect(Image, "segmentation/labels")
    diagnostics = harness.collect(DiagnosticArray, "/diagnostics")
    camera = harness.publisher(Image, "camera/image_raw")
    harness.wait_matched(camera)
    # 8000x8000 announced with only 12 bytes of data: refused before any decode or allocation
    camera.publish(Image(height=8000, width=8000, encoding="rgb8", step=24000, data=bytes(12)))
    harness.wait_for(lambda: diagnostics_value(diagnostics, "camera", "bad_input_total") == "1", "refusal counted")
    camera.publish(make_image_msg(make_image(64, 64), stamp=(5, 0)))  # exactly at the limit: served
    harness.wait_for(lambda: labels, "labels of the frame at the limit")
    assert labels[0].header.stamp.sec == 5


def test_each_kind_of_bad_input_is_logged_once_per_throttle_window(harness, make_image_msg, make_image, capfd):
    harness.node(diagnostics_period=0.1)
    camera = harness.publisher(Image, "camera/image_raw")
    labels = harness.collect(Image, "segmentation/labels")
    diagnostics = harness.collect(DiagnosticArray, "/diagnostics")
    harness.wait_matched(camera)
    good = make_image_msg(make_image(24, 32))
    storm = [Image(height=24, width=32, encoding="rgb8", step=96, data=good.data[:100]),     # truncated
             Image(height=24, width=32, encoding="rgb8", step=96, data=good.data[:90]),      # truncated again
             Image(height=24, width=32, encoding="32FC1", step=128, data=good.data),        # unsupported
             Image(height=24, width=32, encoding="16UC1", step=64, data=good.data[:1536]),  # unsupported
             Image(height=24, width=32, encoding="rgb8", step=40, data=good.data)]          # step too small
    for i, msg in enumerate(storm * 3):  # one at a time: a newer frame would supersede an unread one
        camera.publish(msg)
        harness.wait_for(lambda: diagnostics_value(diagnostics, "camera", "bad_input_total") == str(i + 1),
                         f"bad frame {i + 1} counted")
    good.header.stamp.sec = 77
    camera.publish(good)
    harness.wait_for(lambda: any(m.header.stamp.sec == 77 for m in labels), "the good frame after the storm")
    captured = capfd.readouterr()
    err = captured.err + captured.out
    logged = [line for line in err.splitlines() if "bad image skipped" in line]
    assert any("32FC1" in line for line in logged) and any("16UC1" in line for line in logged)
    assert any("step" in line for line in logged)
    truncated = [line for line in logged if "bytes, expected" in line]
    assert len(truncated) == 1, truncated  # the same kind (other numbers) is throttled
    assert len(logged) <= 4


def test_overlay_alpha_and_confidence_threshold_apply_live_and_other_parameters_are_refused_with_a_reason(
        harness, make_image, make_image_msg):
    from rclpy.parameter import Parameter

    node = harness.node()
    overlays = harness.collect(Image, "segmentation/overlay")
    camera = harness.publisher(Image, "camera/image_raw")
    harness.wait_matched(camera)
    harness.wait_subscribed("segmentation/overlay")
    image = make_image(24, 32)
    camera.publish(make_image_msg(image, stamp=(1, 0)))
    harness.wait_for(lambda: overlays, "first overlay")
    result = node.set_parameters([Parameter("overlay_alpha", value=0.0)])[0]
    assert result.successful
    camera.publish(make_image_msg(image, stamp=(2, 0)))
    harness.wait_for(lambda: len(overlays) == 2, "overlay after the change")
    np.testing.assert_array_equal(rgb_of(overlays[1]), image)  # alpha 0: the image itself, at once
    refused = node.set_parameters([Parameter("device", value="cuda")])[0]
    assert not refused.successful and "read at configure" in refused.reason
    assert node.get_parameter("device").value == "cpu"
    invalid = node.set_parameters([Parameter("confidence_threshold", value=2.0)])[0]
    assert not invalid.successful and "[0, 1]" in invalid.reason


def test_compressed_outputs_carry_the_same_labels_and_are_made_only_when_subscribed(harness, make_image,
                                                                                     make_image_msg):
    harness.node()
    raw = harness.collect(Image, "segmentation/labels")
    packed = harness.collect(CompressedImage, "segmentation/labels/compressed")
    overlay = harness.collect(CompressedImage, "segmentation/overlay/compressed")
    camera = harness.publisher(Image, "camera/image_raw")
    harness.wait_matched(camera)
    harness.wait_subscribed("segmentation/labels/compressed")
    harness.wait_subscribed("segmentation/overlay/compressed")
    camera.publish(make_image_msg(make_image(40, 48), stamp=(3, 0)))
    harness.wait_for(lambda: raw and packed and overlay, "raw and compressed outputs")
    assert packed[0].format == "png" and overlay[0].format == "jpeg"
    assert packed[0].header.stamp.sec == 3 == overlay[0].header.stamp.sec
    decoded = decode_compressed(bytes(packed[0].data), packed[0].format).pixels  # grey comes back as 3 channels
    np.testing.assert_array_equal(decoded[..., 0], labels_of(raw[0]))  # png: lossless class ids


def test_a_camera_that_sends_nothing_is_reported_stale(harness):
    from diagnostic_msgs.msg import DiagnosticStatus

    harness.node(diagnostics_period=0.2)
    diagnostics = harness.collect(DiagnosticArray, "/diagnostics")
    harness.wait_for(lambda: diagnostics, "diagnostics")
    status = diagnostics[-1].status[0]
    assert status.level == DiagnosticStatus.STALE and status.message == "no images received"


def test_backend_and_precision_auto_are_resolved_logged_and_published(harness):
    from ddrnet_ros.engine.backends import auto_backend

    node = harness.node(backend="auto", precision="auto")
    infos = harness.collect(SegmentationInfo, "segmentation/label_info",
                            QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                                       reliability=ReliabilityPolicy.RELIABLE))
    harness.wait_for(lambda: infos, "label info")
    expected_backend, _ = auto_backend("cpu")
    assert infos[0].backend == expected_backend == node.segmenter.config.backend
    assert infos[0].precision == node.segmenter.config.precision != "auto"
    assert any(line.startswith("backend auto -> ") for line in node.segmenter.choices)
