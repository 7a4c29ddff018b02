"""The segmentation node: camera images in, pixel-aligned labels, colour mask and overlay out.

A lifecycle node. configure validates the parameters and loads the model; activate subscribes,
starts the inference worker and publishes the latched label info; deactivate stops both. With
``autostart`` (the default) it walks itself to active so that a plain launch works.

Latest-frame policy: a subscription callback only puts the message in its camera's one-frame
slot (a newer frame replaces an unprocessed one, which is counted as dropped) and returns. One
worker thread serves the cameras round-robin, so under overload the latency stays one frame
deep and no queue grows. Everything that is not ROS plumbing lives in ddrnet_ros.engine and
ddrnet_ros.encodings.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import os
import re
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecyclePublisher, LifecycleState, TransitionCallbackReturn
from rclpy.qos import ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rclpy.time import Time
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from ddrnet_ros.encodings import DecodedImage, ImageDecodeError
from ddrnet_ros.engine import EngineFault, FrameRequest, SegmentationResult, Segmenter
from ddrnet_ros.msg import SegmentationInfo
from ddrnet_ros.ros import qos
from ddrnet_ros.ros.conversions import (
    compressed_image_msg,
    decode_compressed_msg,
    decode_image_msg,
    image_msg,
    segmentation_info_msg,
    vision_label_info_msg,
    vision_label_info_type,
)
from ddrnet_ros.ros.diagnostics import CameraStats, camera_status
from ddrnet_ros.ros.params import CameraSettings, NodeSettings, check_live_change, declare_parameters, read_settings
from ddrnet_ros.ros.readers import ReaderWatch

NODE_NAME = "segmentation_node"
#: Seconds between two warnings about the same kind of bad input.
WARN_THROTTLE_S = 5.0
#: How often cameras with ``input_qos: auto`` re-check their publishers' reliability.
QOS_CHECK_PERIOD_S = 0.5


@dataclass
class Camera:
    """One input: its subscription, output publishers, latest-frame slot and counters."""

    settings: CameraSettings
    stats: CameraStats
    publishers: dict[str, Any]
    #: <output>/compressed publishers (png labels/confidence, jpeg color/overlay), lazy like the raw ones
    compressed: dict[str, Any] = field(default_factory=dict)
    #: "<output>" and "<output>/compressed" -> whether that lazy publisher has a live reader
    watches: dict[str, ReaderWatch] = field(init=False, repr=False)
    subscription: Any = None
    reliability: ReliabilityPolicy | None = None
    #: newest unprocessed (message, monotonic receive time), guarded by the node's lock
    pending: tuple[Any, float] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.watches = {**{name: ReaderWatch(p) for name, p in self.publishers.items()},
                        **{f"{name}/compressed": ReaderWatch(p) for name, p in self.compressed.items()}}

    @property
    def name(self) -> str:
        return self.settings.name


def logged_transition(callback):
    """rclpy turns an exception in a lifecycle callback into ERROR without a word: log it first."""

    @functools.wraps(callback)
    def wrapper(self, state):
        try:
            return callback(self, state)
        except Exception as exc:  # noqa: BLE001 - reported here, then rclpy's error handling
            self.get_logger().error(f"{callback.__name__} raised {type(exc).__name__}: {exc}\n"
                                    f"{traceback.format_exc()}")
            return TransitionCallbackReturn.ERROR

    return wrapper


def frame_request(camera: Camera, image: DecodedImage, raw: dict[str, bool], small: dict[str, bool]) -> FrameRequest:
    """What the engine is asked for one camera's frame: each output someone reads, raw or compressed."""
    wants = {name: raw[name] or small[name] for name in raw}
    return FrameRequest(image.pixels, image.channel_order, want_color=wants["color"], want_overlay=wants["overlay"],
                        want_confidence=wants["confidence"], stream_key=camera.name)


def output_topic(camera: str, output: str, several: bool) -> str:
    """segmentation/<output> for a single camera, segmentation/<camera>/<output> for several."""
    return f"segmentation/{camera}/{output}" if several else f"segmentation/{output}"




def silence_opencv_log() -> None:
    """The node reports every bad frame itself (counted, logged once per kind and throttle window);
    OpenCV's own logger would add an unthrottled ERROR line per malformed png/jpeg on top.
    OpenCV 5 has cv2.utils.logging, 4.x cv2.setLogLevel (0: silent)."""
    logging_module = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_module is not None:
        logging_module.setLogLevel(logging_module.LOG_LEVEL_SILENT)
    elif hasattr(cv2, "setLogLevel"):
        cv2.setLogLevel(0)


silence_opencv_log()

#: Encoding of each raw output.
ENCODINGS = {"labels": "mono8", "color": "rgb8", "overlay": "rgb8", "confidence": "mono8"}


class SegmentationNode(LifecycleNode):
    """Semantic segmentation of one or more cameras with one DDRNet model."""

    OUTPUTS = ("labels", "color", "overlay", "confidence")

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        declare_parameters(self)
        self.settings: NodeSettings | None = None
        self.segmenter: Segmenter | None = None
        #: Why the last configure failed (one line), for callers that drive the lifecycle.
        self.configure_error: str | None = None
        self.cameras: list[Camera] = []
        self._slots = threading.Condition()
        self._running = False
        self._next_camera = 0
        #: cross-camera batching (batch_cameras), decided at configure
        self._batching = False
        self._worker: threading.Thread | None = None
        self._timers: list[Any] = []
        self._label_info_pub: LifecyclePublisher[SegmentationInfo] | None = None
        # vision_msgs' message type, when installed (see vision_label_info_type)
        self._vision_label_info_pub: LifecyclePublisher[Any] | None = None
        self._diagnostics_pub: LifecyclePublisher[DiagnosticArray] | None = None
        self._gc_frozen = False
        self._steady_clock = Clock(clock_type=ClockType.STEADY_TIME)
        #: (camera, kind of bad input) -> when it was last logged: each kind is named, none floods
        self._bad_input_logged: dict[tuple[str, str], float] = {}
        #: (camera, output) -> when its pause for an unresponsive reader was last logged
        self._pause_logged: dict[tuple[str, str], float] = {}
        #: set by the worker when the engine can no longer serve frames (see _engine_failed)
        self.engine_fault: str | None = None
        #: the worker wakes the executor through it: lifecycle transitions run on the executor's thread
        self._fault_signal = self.create_guard_condition(self._fail_lifecycle)
        self.add_on_set_parameters_callback(self._on_set_parameters)

    # ------------------------------------------------------------------ lifecycle
    @logged_transition
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            settings = read_settings(self)
            segmenter = Segmenter(settings.segmenter)  # checks the class map against the model
            batching = settings.batching(segmenter.device)
            if segmenter.device.startswith("cuda"):  # CUDA's lazy set-up and autotuning here, not on frames
                segmenter.warm_up([camera.name for camera in settings.cameras], batch=batching)
        except Exception as exc:  # any failure to load the model fails configure, with its reason
            self.configure_error = f"{exc}" if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"configure failed: {self.configure_error}")
            return TransitionCallbackReturn.FAILURE
        self.configure_error = None
        self.settings, self.segmenter = settings, segmenter
        self._batching = batching
        self.get_logger().info(
            f"model {segmenter.variant} ({segmenter.num_classes} classes) from "
            f"{segmenter.checkpoint_path or 'random initialisation'} on device {segmenter.device}, "
            f"backend {segmenter.config.backend}, precision {segmenter.config.precision}")
        for line in segmenter.choices:
            self.get_logger().info(line)

        several = len(settings.cameras) > 1
        out_qos = qos.output_profile(settings.output_qos, settings.output_depth)
        self.cameras = []
        for cam in settings.cameras:
            publishers = {name: self.create_lifecycle_publisher(Image, output_topic(cam.name, name, several), out_qos)
                          for name in self.OUTPUTS}
            compressed = {name: self.create_lifecycle_publisher(
                CompressedImage, output_topic(cam.name, name, several) + "/compressed", out_qos)
                for name in self.OUTPUTS}
            self.cameras.append(Camera(cam, CameraStats(cam.name), publishers, compressed))
        self._label_info_pub = self.create_lifecycle_publisher(SegmentationInfo, "segmentation/label_info",
                                                               qos.LABEL_INFO)
        vision_type = vision_label_info_type()
        if vision_type is not None:
            self._vision_label_info_pub = self.create_lifecycle_publisher(
                vision_type, "segmentation/vision_label_info", qos.LABEL_INFO)
        self._diagnostics_pub = self.create_lifecycle_publisher(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
        if settings.freeze_gc:
            self._freeze_gc()
        return TransitionCallbackReturn.SUCCESS

    def _configured(self) -> tuple[NodeSettings, Segmenter]:
        """The settings and model of a configured node: set by configure, kept until cleanup."""
        assert self.settings is not None and self.segmenter is not None, "the node is not configured"
        return self.settings, self.segmenter

    def _on_set_parameters(self, parameters: list[Any]) -> SetParametersResult:
        """overlay_alpha and confidence_threshold apply to the next frame; while configured, every
        other parameter is refused with the reason (it is read at configure), never silently kept."""
        configured = self.settings is not None
        for parameter in parameters:
            reason = check_live_change(parameter.name, parameter.value, configured)
            if reason is not None:
                return SetParametersResult(successful=False, reason=reason)
        if configured:
            assert self.settings is not None
            values = {p.name: float(p.value) for p in parameters}
            alpha = values.get("overlay_alpha", self.settings.overlay_alpha)
            threshold = values.get("confidence_threshold", self.settings.confidence_threshold)
            self.settings = dataclasses.replace(self.settings, overlay_alpha=alpha, confidence_threshold=threshold)
            self.get_logger().info(f"applied live: overlay_alpha = {alpha:g}, confidence_threshold = {threshold:g}")
        return SetParametersResult(successful=True)

    def _freeze_gc(self) -> None:
        """Move everything alive now (~190k objects with the model loaded) out of the collector's reach.

        Left tracked, every full collection walks them all: bench/bench_gc.py saw 9 in 150 frames,
        up to 98 ms each, stalling whichever frame was in flight (frozen: 15 ms at most)."""
        gc.collect()
        gc.freeze()
        self._gc_frozen = True

    def _thaw_gc(self) -> None:
        """Undo :meth:`_freeze_gc`, so that the released model's reference cycles can be collected."""
        if self._gc_frozen:
            gc.unfreeze()
            self._gc_frozen = False

    @logged_transition
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)  # activates the lifecycle publishers
        settings, segmenter = self._configured()
        assert self._label_info_pub is not None  # created by configure
        header = self._header()
        self._label_info_pub.publish(segmentation_info_msg(header, segmenter))
        if self._vision_label_info_pub is not None:
            self._vision_label_info_pub.publish(vision_label_info_msg(
                header, segmenter.class_map, settings.confidence_threshold))
        for camera in self.cameras:
            camera.stats = CameraStats(camera.name)
            self._subscribe(camera)
        self._running = True
        self._worker = threading.Thread(target=self._serve, name="segmentation-worker", daemon=True)
        self._worker.start()
        self._timers = [self.create_timer(settings.diagnostics_period, self._publish_diagnostics,
                                          clock=self._steady_clock)]
        if settings.input_qos == "auto":
            self._timers.append(self.create_timer(QOS_CHECK_PERIOD_S, self._match_publishers,
                                                  clock=self._steady_clock))
        topics = ", ".join(f"{c.name}: {self.resolve_topic_name(c.settings.topic)}" for c in self.cameras)
        self.get_logger().info(f"active; segmenting {topics}")
        return result

    @logged_transition
    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop()
        result = super().on_deactivate(state)
        # after an engine fault, deactivation leads to error processing, not to a reusable inactive node
        return TransitionCallbackReturn.ERROR if self.engine_fault is not None else result

    @logged_transition
    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """An engine fault ends in finalized: the device is unusable in this process, only a restart helps."""
        self._stop()
        self._release()
        if self.engine_fault is None:
            return TransitionCallbackReturn.SUCCESS  # an error of ours, not the device's: unconfigured
        self.get_logger().error(f"finalized after an engine fault ({self.engine_fault}); restart the node")
        return TransitionCallbackReturn.FAILURE

    @logged_transition
    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    @logged_transition
    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _stop(self) -> None:
        """Unsubscribe, stop the timers and let the worker finish its frame."""
        for timer in self._timers:
            self.destroy_timer(timer)
        self._timers = []
        for camera in self.cameras:
            if camera.subscription is not None:
                self.destroy_subscription(camera.subscription)
                camera.subscription = None
        with self._slots:
            self._running = False
            for camera in self.cameras:
                if camera.pending is not None:  # received, never served: counted, not lost silently
                    camera.stats.dropped()
                camera.pending = None
            self._slots.notify_all()
        if self._worker is not None:
            self._worker.join()
            self._worker = None

    def _release(self) -> None:
        self._thaw_gc()
        for camera in self.cameras:
            for publisher in (*camera.publishers.values(), *camera.compressed.values()):
                self.destroy_lifecycle_publisher(publisher)
        for publisher in (self._label_info_pub, self._vision_label_info_pub, self._diagnostics_pub):
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
        self._label_info_pub = self._vision_label_info_pub = self._diagnostics_pub = None
        self.cameras = []
        self.segmenter = None
        self.settings = None

    def destroy_node(self) -> None:
        self._stop()
        self._thaw_gc()
        super().destroy_node()

    # ------------------------------------------------------------------ input
    def _subscribe(self, camera: Camera) -> None:
        settings, _ = self._configured()
        reliability = qos.resolve_input_reliability(settings.input_qos, self._publisher_reliabilities(camera))
        if camera.subscription is not None:
            self.destroy_subscription(camera.subscription)
        msg_type = CompressedImage if camera.settings.compressed else Image
        # Our own incompatible-QoS handler replaces rclpy's default warning: with input_qos auto the
        # node re-subscribes to match within QOS_CHECK_PERIOD_S, so that warning was a false alarm.
        events = SubscriptionEventCallbacks(incompatible_qos=functools.partial(self._on_incompatible_qos, camera))
        camera.subscription = self.create_subscription(
            msg_type, camera.settings.topic, lambda msg, c=camera: self._on_image(c, msg),
            qos.input_profile(reliability), event_callbacks=events)
        camera.reliability = reliability

    def _on_incompatible_qos(self, camera: Camera, _event: Any = None) -> None:
        settings, _ = self._configured()
        if settings.input_qos == "auto":
            self.get_logger().debug(f"camera {camera.name}: a publisher's QoS does not match yet; re-subscribing")
        else:
            self.get_logger().warning(
                f"camera {camera.name}: a publisher of {camera.settings.topic} offers QoS incompatible with "
                f"input_qos {settings.input_qos}; its images are not received (input_qos auto follows it)",
                throttle_duration_sec=WARN_THROTTLE_S)

    def _publisher_reliabilities(self, camera: Camera) -> list[ReliabilityPolicy]:
        infos = self.get_publishers_info_by_topic(self.resolve_topic_name(camera.settings.topic))
        return [info.qos_profile.reliability for info in infos]

    def _match_publishers(self) -> None:
        """input_qos auto: re-subscribe when the publishers' reliability no longer matches ours."""
        for camera in self.cameras:
            wanted = qos.resolve_input_reliability("auto", self._publisher_reliabilities(camera))
            if wanted != camera.reliability:
                self.get_logger().info(
                    f"camera {camera.name}: publishers of {camera.settings.topic} are "
                    f"{'best effort' if wanted == ReliabilityPolicy.BEST_EFFORT else 'reliable'}; re-subscribing")
                self._subscribe(camera)

    def _on_image(self, camera: Camera, msg: Any) -> None:
        """Store the newest frame and return; the worker does the rest."""
        camera.stats.received()
        with self._slots:
            if camera.pending is not None:
                camera.stats.dropped()
            camera.pending = (msg, time.monotonic())
            self._slots.notify()

    # ------------------------------------------------------------------ worker
    def _take_next(self) -> list[tuple[Camera, Any, float]] | None:
        """Block until a camera has a frame or the node stops (None). One frame, the cameras served
        round-robin; with cross-camera batching, every camera's pending frame, in camera order."""
        with self._slots:
            while self._running:
                count = len(self.cameras)
                order = [self.cameras[(self._next_camera + offset) % count] for offset in range(count)]
                ready = [camera for camera in order if camera.pending is not None]
                if ready:
                    taken = sorted(ready, key=self.cameras.index) if self._batching else ready[:1]
                    self._next_camera = (self.cameras.index(ready[len(taken) - 1]) + 1) % count
                    items = []
                    for camera in taken:
                        assert camera.pending is not None  # ready
                        (msg, received), camera.pending = camera.pending, None
                        items.append((camera, msg, received))
                    return items
                self._slots.wait()
            return None

    def _serve(self) -> None:
        while (items := self._take_next()) is not None:
            if len(items) == 1:
                camera, msg, received = items[0]
                served = self._serve_guarded(camera, lambda: self._process(camera, msg, received))
            else:
                served = self._serve_guarded(items[0][0], lambda: self._process_batch(items))
            if not served:
                return

    def _serve_guarded(self, camera: Camera, work: Callable[[], None]) -> bool:
        """Run one frame's (or batch's) work; False when the worker must stop (engine fault, shutdown)."""
        try:
            work()
        except EngineFault as exc:  # the device is gone: every later frame would fail too
            self._engine_failed(camera, exc)
            return False
        except Exception as exc:  # noqa: BLE001 - one failed frame must not stop the worker
            if not self._running or not self.context.ok():
                # shutting down: the context went away under the frame in flight; nothing is wrong
                self.get_logger().debug(f"camera {camera.name}: frame abandoned at shutdown")
                return False
            camera.stats.failed()
            self.get_logger().error(f"camera {camera.name}: frame failed: {type(exc).__name__}: {exc}",
                                    throttle_duration_sec=WARN_THROTTLE_S)
        return True

    def _engine_failed(self, camera: Camera, exc: EngineFault) -> None:
        """Fail loudly, once: ERROR log and diagnostics now, then the lifecycle goes to finalized.

        Skipping frames after a device fault would look alive while serving nothing."""
        camera.stats.failed()
        cause = f" ({type(exc.__cause__).__name__})" if exc.__cause__ is not None else ""
        self.engine_fault = f"{exc}{cause}"
        self.get_logger().error(f"camera {camera.name}: engine fault, stopping the node: {self.engine_fault}")
        with self._slots:
            self._running = False
        self._publish_diagnostics()
        self._fault_signal.trigger()

    def _fail_lifecycle(self) -> None:
        """Executor side of an engine fault: active -> deactivating -> error processing -> finalized."""
        if self.engine_fault is not None and self.lifecycle_state == "active":
            self.trigger_deactivate()

    @property
    def lifecycle_state(self) -> str:
        """The current lifecycle state's label ("unconfigured", "active", "finalized", ...)."""
        return str(self._state_machine.current_state[1])

    @property
    def failed_for_good(self) -> bool:
        """Finalized by an engine fault: the process should exit non-zero so a supervisor restarts it."""
        return self.engine_fault is not None and self.lifecycle_state == "finalized"

    def _refuse(self, camera: Camera, reason: str) -> None:
        """Count a bad input frame and log it, at most once per WARN_THROTTLE_S for each kind of problem
        (the reason with its numbers blanked): a storm of one kind never hides another kind."""
        camera.stats.bad_input()
        kind = (camera.name, re.sub(r"\d+", "#", reason))
        now = time.monotonic()
        if now - self._bad_input_logged.get(kind, -WARN_THROTTLE_S) >= WARN_THROTTLE_S:
            self._bad_input_logged[kind] = now
            self.get_logger().warning(f"camera {camera.name}: bad image skipped: {reason}")

    def _too_large(self, camera: Camera, height: int, width: int) -> bool:
        settings, _ = self._configured()
        if height * width <= settings.max_input_pixels:
            return False
        self._refuse(camera, f"{width}x{height} = {height * width} pixels is over max_input_pixels "
                             f"{settings.max_input_pixels}")
        return True

    def _decode(self, camera: Camera, msg: Any) -> DecodedImage | None:
        if not camera.settings.compressed and self._too_large(camera, int(msg.height), int(msg.width)):
            return None  # refused from the header alone: no decode, no allocation
        try:
            image = decode_compressed_msg(msg) if camera.settings.compressed else decode_image_msg(msg)
        except ImageDecodeError as exc:
            self._refuse(camera, str(exc))
            return None
        height, width = image.pixels.shape[:2]
        return None if camera.settings.compressed and self._too_large(camera, height, width) else image

    def _process(self, camera: Camera, msg: Any, received: float) -> None:
        started = time.monotonic()
        image = self._decode(camera, msg)
        if image is not None:
            self._segment_and_publish(camera, msg.header, image, received, started)

    def _segment_and_publish(self, camera: Camera, header: Header, image: DecodedImage, received: float,
                             started: float) -> None:
        settings, segmenter = self._configured()
        raw, small = self._wanted_outputs(camera, started)
        request = frame_request(camera, image, raw, small)
        result = segmenter.segment(
            request.image, channel_order=request.channel_order, want_color=request.want_color,
            want_overlay=request.want_overlay, want_confidence=request.want_confidence,
            overlay_alpha=settings.overlay_alpha, confidence_threshold=settings.confidence_threshold,
            stream_key=camera.name)
        self._publish(camera, header, result, raw, small, received, started)

    def _process_batch(self, items: list[tuple[Camera, Any, float]]) -> None:
        """Every camera's pending frame through one forward pass per network size (see batch_cameras).

        If the batch fails, each decoded frame is served alone: one camera's frame costs only itself."""
        started = time.monotonic()
        frames = [(camera, msg.header, image, received) for camera, msg, received in items
                  if (image := self._decode(camera, msg)) is not None]
        if not frames:
            return
        settings, segmenter = self._configured()
        wanted = [self._wanted_outputs(camera, started) for camera, *_ in frames]
        requests = [frame_request(camera, image, raw, small)
                    for (camera, _, image, _), (raw, small) in zip(frames, wanted)]
        try:
            results = segmenter.segment_batch(requests, overlay_alpha=settings.overlay_alpha,
                                              confidence_threshold=settings.confidence_threshold)
        except EngineFault:
            raise
        except Exception as exc:  # noqa: BLE001 - find the frame that broke it by serving each alone
            if not self._running or not self.context.ok():
                raise
            self.get_logger().debug(f"batch of {len(frames)} failed ({type(exc).__name__}: {exc}); frame by frame")
            for camera, header, image, received in frames:
                if not self._serve_guarded(camera, functools.partial(
                        self._segment_and_publish, camera, header, image, received, started)):
                    return
            return
        for (camera, header, _, received), (raw, small), result in zip(frames, wanted, results):
            self._publish(camera, header, result, raw, small, received, started)

    def _wanted_outputs(self, camera: Camera, now: float) -> tuple[dict[str, bool], dict[str, bool]]:
        """Which raw and which compressed outputs to publish for this frame: labels always (planners'
        latched expectation of the topic), every other output only for a live reader."""
        raw = {name: name == "labels" or self._wanted(camera, name, now) for name in self.OUTPUTS}
        small = {name: self._wanted(camera, f"{name}/compressed", now) for name in self.OUTPUTS}
        return raw, small

    def _publish(self, camera: Camera, header: Header, result: SegmentationResult, raw: dict[str, bool],
                 small: dict[str, bool], received: float, started: float) -> None:
        """Publish a frame's outputs with the input's header, and count it."""
        outputs = {"labels": result.labels, "color": result.color, "overlay": result.overlay,
                   "confidence": result.confidence}
        sent: list[str] = []
        for name in self.OUTPUTS:
            pixels = outputs[name]
            if pixels is None:  # segment() returns each output it was asked for
                continue
            if raw[name]:
                camera.publishers[name].publish(image_msg(pixels, ENCODINGS[name], header))
                sent.append(name)
            if small[name]:
                camera.compressed[name].publish(compressed_image_msg(pixels, name, header))
                sent.append(f"{name}/compressed")
        latency_ms = (self.get_clock().now() - Time.from_msg(header.stamp)).nanoseconds / 1e6
        camera.stats.published(result.inference_ms, latency_ms, sent, result.batch_size)
        done = time.monotonic()
        self.get_logger().debug(
            f"camera {camera.name}: frame {header.stamp.sec}.{header.stamp.nanosec:09d} waited "
            f"{(started - received) * 1e3:.2f} ms, inference {result.inference_ms:.2f} ms "
            f"(batch of {result.batch_size}), in node {(done - received) * 1e3:.2f} ms, "
            f"end-to-end {latency_ms:.2f} ms")

    def _wanted(self, camera: Camera, output: str, now: float) -> bool:
        """Render ``output`` ("color", "overlay/compressed", ...) for this frame? Only for a live reader:
        see ddrnet_ros.ros.readers. Says so when its only reader stops acknowledging (a dead subscriber
        would otherwise cost a render per frame until DDS drops it, 20 s with Fast DDS defaults)."""
        watch = camera.watches[output]
        was_paused = watch.paused
        wanted = watch.wanted(now)
        if watch.paused and not was_paused:
            self._log_pause(camera, output, watch, now)
        elif was_paused and not watch.paused:
            self.get_logger().debug(f"camera {camera.name}: {watch.publisher.topic_name} rendered again "
                                    f"({'its reader acknowledged' if wanted else 'no reader left'})")
        return wanted

    def _log_pause(self, camera: Camera, output: str, watch: ReaderWatch, now: float) -> None:
        """One INFO line per output and WARN_THROTTLE_S: a slow reader may pause and resume often."""
        if now - self._pause_logged.get((camera.name, output), -WARN_THROTTLE_S) < WARN_THROTTLE_S:
            return
        self._pause_logged[(camera.name, output)] = now
        self.get_logger().info(
            f"camera {camera.name}: the only reader of {watch.publisher.topic_name} has not acknowledged "
            f"for {watch.unacked_limit_s:g} s (dead, stopped or far behind); not rendering it until it "
            "acknowledges or DDS drops it")

    # ------------------------------------------------------------------ outputs
    def _header(self) -> Header:
        return Header(stamp=self.get_clock().now().to_msg(), frame_id="")

    def _publish_diagnostics(self) -> None:
        _, segmenter = self._configured()
        assert self._diagnostics_pub is not None  # created by configure
        device = str(segmenter.device)
        engine = f"{segmenter.config.backend} {segmenter.config.precision}"
        statuses = [camera_status(c.stats.take_report(), self.get_name(), device, engine, self.engine_fault)
                    for c in self.cameras]
        self._diagnostics_pub.publish(DiagnosticArray(header=self._header(), status=statuses))


# ---------------------------------------------------------------------- entry points
def spin_node(args: list[str] | None = None) -> int:
    """Create the node from ROS arguments, bring it up when ``autostart`` says so, and spin until shutdown."""
    transport = qos.use_large_image_transport(os.environ)
    # Our own SIGINT/SIGTERM handling: the worker finishes (or abandons) its frame while the context
    # is still valid, then the node and the context go down; rclpy's handler shut the context first,
    # and every shutdown under load logged a failed publish.
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    node = SegmentationNode()
    (node.get_logger().info if transport.used or "defaults" not in transport.message
     else node.get_logger().warning)(transport.message)
    try:
        if node.get_parameter("autostart").value:
            outcome = node.trigger_configure()
            if outcome != TransitionCallbackReturn.SUCCESS:
                if node.configure_error is None:  # raised past on_configure's own reporting
                    node.get_logger().error(f"configure did not succeed: {outcome.name}")
                return 1
            if node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                node.get_logger().error("activate failed")
                return 1
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while not stop.is_set() and rclpy.ok() and not node.failed_for_good:
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()  # stops the worker before the context goes
        rclpy.try_shutdown()
    return 1 if node.failed_for_good else 0


def main_ros() -> None:
    """The installed ``lib/ddrnet_ros/segmentation_node`` executable (what launch files start)."""
    sys.exit(spin_node(sys.argv))


if __name__ == "__main__":
    main_ros()
