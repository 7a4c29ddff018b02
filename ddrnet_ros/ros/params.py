"""The node's parameters: each declared once, with its description and its check beside it.

Every parameter is declared with dynamic typing so that a value of the wrong type in a params
file reaches :func:`read_settings`, which fails with one line naming the parameter, the value and
what is allowed, instead of rclpy refusing to construct the node.

Cameras: ``cameras`` lists names; each name ``N`` has ``camera.N.topic`` (default
``N/image_raw``, or ``N/image_raw/compressed`` when compressed) and ``camera.N.compressed``
(default false: ``sensor_msgs/Image``; true: ``sensor_msgs/CompressedImage``). The default single
camera is called ``camera``, so its topic is ``camera/image_raw``, resolved in the node's
namespace and remappable the ROS way.
"""

from __future__ import annotations

import array
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from ddrnet_ros.engine.config import BACKENDS, DEVICE_CHOICES, PRECISIONS, EngineConfigError, SegmenterConfig
from ddrnet_ros.engine.loading import RANDOM, SHIPPED
from ddrnet_ros.model import VARIANTS
from ddrnet_ros.ros.qos import INPUT_QOS_CHOICES, OUTPUT_QOS_CHOICES

_CAMERA_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
BATCH_CHOICES = ("auto", "on", "off")


class ParameterError(ValueError):
    """A parameter has a value the node cannot use; the message names it, its value and what is allowed."""

    def __init__(self, name: str, value: Any, allowed: str, reason: str = "") -> None:
        super().__init__(f"parameter '{name}' = {value!r} is invalid: expected {allowed}"
                         + (f" ({reason})" if reason else ""))
        self.name = name
        self.value = value
        self.allowed = allowed


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_checkpoint(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], bool]:
    return lambda v: v in choices


@dataclass(frozen=True)
class ParamSpec:
    """A declared parameter: default, description shown by ``ros2 param describe``, and its check.

    This table is the one source of the parameters' defaults and descriptions:
    ``config/segmentation.yaml`` and the table in ``docs/node.md`` are generated from it
    (``make params``, i.e. ``python -m ddrnet_ros.ros.param_docs``). ``doc`` is extra text for
    docs/node.md only (pointers to its sections).
    """

    name: str
    default: Any
    description: str
    allowed: str
    check: Callable[[Any], bool]
    doc: str = ""


PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("autostart", True, "The node executable (ddrnet-ros run, segmentation_node, the launch file) "
              "configures and activates the node by itself at start-up; false: it stays unconfigured until "
              "a lifecycle manager drives it.",
              "true or false", _is_bool),
    ParamSpec("variant", "ddrnet23_slim", "DDRNet variant; must match the checkpoint, and is the architecture "
              "of random weights. Case, '-' and '_' are ignored (DDRNet-23-slim works).",
              ", ".join(VARIANTS), _is_str),
    ParamSpec("checkpoint", SHIPPED, "Checkpoint file (its sidecar <file>.json, when present, gives the classes "
              f"and the recommended input size); '{SHIPPED}': the checkpoint packaged with ddrnet_ros; "
              f"'{RANDOM}': random weights from a fixed seed (tests and benchmarks only). The same words as "
              "ddrnet-ros --checkpoint.", f"a path, '{SHIPPED}' or '{RANDOM}'", _is_checkpoint),
    ParamSpec("device", "auto", "Where inference runs; auto: cuda:0 when CUDA is available and the backend is "
              "torch, else cpu. cuda or cuda:N without that CUDA device fails configure.",
              DEVICE_CHOICES, _is_str),
    ParamSpec("backend", "torch", "Inference backend; onnxruntime and openvino need their Python package and run "
              "on the CPU only (device cpu or auto); auto: torch on CUDA, else the fastest installed CPU backend "
              "(openvino, onnxruntime, torch).", ", ".join(BACKENDS), _is_str),
    ParamSpec("precision", "fp32", "Numeric precision of inference: fp16 needs a CUDA device; bf16 runs on torch "
              "and openvino; int8 on openvino, quantized with nncf once per checkpoint and network size (the "
              "first start calibrates for minutes, later starts load the cache); auto: the fastest precision "
              "this machine runs natively that passed the accuracy gate.", ", ".join(PRECISIONS), _is_str),
    ParamSpec("input_size", [0, 0], "Network input [height, width]; [0, 0]: the size the checkpoint's sidecar "
              "recommends (network_input_size), else each image's own size. Either way the network frame is "
              "padded at the bottom/right to multiples of 64, where DDRNet's branches align (sizes that divide "
              "by 64 waste nothing). Outputs always have the input image's size.",
              "[height, width]: [0, 0] or positive multiples of 8",
              lambda v: isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_int(x) and x >= 0 for x in v)),
    ParamSpec("keep_aspect", True, "Scale images to fit input_size keeping their aspect ratio (false: stretch "
              "to it).", "true or false", _is_bool),
    ParamSpec("pad_to_input_size", False, "With keep_aspect, an image of another aspect than input_size runs in "
              "a network frame of input_size, padded at the bottom/right (one static shape for every camera); "
              "false: in a frame trimmed to the scaled image, e.g. 512x1024 for a 2:1 camera in a 768x1024 "
              "input_size: less work, and no padding band the model never saw in training.",
              "true or false", _is_bool),
    ParamSpec("num_threads", 0, "CPU threads for inference; 0: the library default.",
              "an integer >= 0", lambda v: _is_int(v) and v >= 0),
    ParamSpec("class_config", "", "Class names and colours (a class YAML file); empty: the classes in the "
              "checkpoint's sidecar, else the built-in Cityscapes 19 classes. Must list exactly as many classes "
              f"as the model predicts; with checkpoint '{RANDOM}' it sets the class count.",
              "a path or ''", _is_str),
    ParamSpec("max_input_pixels", 4096 * 4096, "Frames with more pixels than this (default: 4096x4096) are "
              "refused before any work and counted as bad input: a frame's peak memory grows with its pixels "
              "(on the CPU ~12 bytes per pixel in the engine whatever the content, measured with every output: "
              "+184 MiB for a 4096x4096 noise frame, +87 MiB for 3840x2160), so a stray huge frame must not "
              "take the machine.",
              "an integer >= 1", lambda v: _is_int(v) and v >= 1),
    ParamSpec("overlay_alpha", 0.5, "Weight of the class colours in the overlay image (0: the image, 1: the "
              "colours); ignored pixels keep the image.",
              "a number in [0, 1]", lambda v: _is_number(v) and 0.0 <= v <= 1.0),
    ParamSpec("confidence_threshold", 0.0, "Pixels whose max softmax is below this become the ignore label "
              "(255 unless the class map sets another); 0: off.",
              "a number in [0, 1]", lambda v: _is_number(v) and 0.0 <= v <= 1.0),
    ParamSpec("input_qos", "auto", "Image subscription reliability; auto: follow the publishers (reliable "
              "unless every publisher is best effort).", ", ".join(INPUT_QOS_CHOICES), _one_of(INPUT_QOS_CHOICES),
              doc='See "QoS and transport" below.'),
    ParamSpec("output_qos", "reliable", "Reliability of labels/color/overlay/confidence (the label info is "
              "always reliable, transient local).",
              ", ".join(OUTPUT_QOS_CHOICES), _one_of(OUTPUT_QOS_CHOICES)),
    ParamSpec("output_depth", 1, "History depth (keep last) of labels/color/overlay/confidence.", "an integer >= 1",
              lambda v: _is_int(v) and v >= 1),
    ParamSpec("freeze_gc", True, "After configure, take every object then alive (model, ROS) out of Python's "
              "cyclic garbage collector (gc.freeze; undone at cleanup), so that a full collection no longer "
              "stalls a frame by tens to hundreds of ms.", "true or false", _is_bool,
              doc='See "Latency tails" below.'),
    ParamSpec("batch_cameras", "auto", "Cross-camera batching: when several cameras have a frame waiting, run "
              "them through one forward pass (one per network size) and publish each with its own header; a "
              "single camera keeps its latency. auto: on for CUDA, off on the CPU (measured here: batches were "
              "no faster than frame by frame on the CPU backends, see docs/engine.md).",
              ", ".join(BATCH_CHOICES), _one_of(BATCH_CHOICES), doc='See "Several cameras" below.'),
    ParamSpec("diagnostics_period", 1.0, "Seconds between /diagnostics messages (wall clock).",
              "a number > 0", lambda v: _is_number(v) and v > 0),
    ParamSpec("cameras", ["camera"], "Camera names; each has camera.<name>.topic and camera.<name>.compressed. "
              "One camera publishes segmentation/labels etc., several publish segmentation/<name>/labels.",
              "a non-empty list of unique names of letters, digits and _",
              lambda v: isinstance(v, (list, tuple)) and len(v) > 0 and len(set(v)) == len(v)
              and all(_is_str(n) and _CAMERA_NAME.match(n) for n in v),
              doc='See "Several cameras" below.'),
)

_SPECS = {spec.name: spec for spec in PARAMETERS}


def compressed_spec(name: str) -> ParamSpec:
    return ParamSpec(f"camera.{name}.compressed", False,
                     f"true: camera '{name}' publishes sensor_msgs/CompressedImage (jpeg/png); "
                     "false: sensor_msgs/Image.", "true or false", _is_bool)


def topic_spec(name: str, compressed: bool) -> ParamSpec:
    default = f"{name}/image_raw/compressed" if compressed else f"{name}/image_raw"
    return ParamSpec(f"camera.{name}.topic", default,
                     f"Image topic of camera '{name}'; a relative name resolves in the node's namespace.",
                     "a non-empty topic name", lambda v: _is_str(v) and bool(v.strip()))


@dataclass(frozen=True)
class CameraSettings:
    name: str
    topic: str
    compressed: bool


@dataclass(frozen=True)
class NodeSettings:
    """Everything the node reads from its parameters, validated."""

    segmenter: SegmenterConfig
    cameras: tuple[CameraSettings, ...]
    overlay_alpha: float
    confidence_threshold: float
    input_qos: str
    output_qos: str
    output_depth: int
    diagnostics_period: float
    freeze_gc: bool
    max_input_pixels: int
    batch_cameras: str = "auto"

    def batching(self, device: str) -> bool:
        """Whether cross-camera batches are made on ``device`` (only ever with several cameras)."""
        if len(self.cameras) < 2 or self.batch_cameras == "off":
            return False
        return self.batch_cameras == "on" or device.startswith("cuda")


def _declare(node: Node, spec: ParamSpec) -> None:
    if not node.has_parameter(spec.name):
        descriptor = ParameterDescriptor(description=spec.description, additional_constraints=spec.allowed,
                                         dynamic_typing=True)
        node.declare_parameter(spec.name, spec.default, descriptor)


def declare_parameters(node: Node) -> None:
    """Declare the node-wide parameters (per-camera ones are declared by :func:`read_settings`)."""
    for spec in PARAMETERS:
        _declare(node, spec)


def _value(node: Node, spec: ParamSpec) -> Any:
    value = node.get_parameter(spec.name).value
    if isinstance(value, (tuple, array.array)):  # rclpy hands integer/double arrays back as array.array
        value = list(value)
    if not spec.check(value):
        raise ParameterError(spec.name, value, spec.allowed)
    return value


def read_settings(node: Node) -> NodeSettings:
    """Read and validate every parameter; raises :class:`ParameterError` on the first bad one."""
    v = {name: _value(node, spec) for name, spec in _SPECS.items()}
    cameras = []
    for name in v["cameras"]:
        _declare(node, compressed_spec(name))
        compressed = _value(node, compressed_spec(name))
        _declare(node, topic_spec(name, compressed))
        cameras.append(CameraSettings(name, _value(node, topic_spec(name, compressed)), compressed))

    checkpoint = v["checkpoint"]
    size = v["input_size"]
    segmenter = SegmenterConfig(
        variant=v["variant"],
        checkpoint=checkpoint,
        device=v["device"], backend=v["backend"], precision=v["precision"],
        input_size=None if size == [0, 0] else tuple(size), keep_aspect=v["keep_aspect"],
        pad_to_input_size=v["pad_to_input_size"],
        num_threads=v["num_threads"], class_map=v["class_config"] or None)
    try:
        segmenter.validate()
    except EngineConfigError as exc:
        raise engine_error_as_parameter_error(exc, v) from None
    return NodeSettings(segmenter=segmenter, cameras=tuple(cameras), overlay_alpha=float(v["overlay_alpha"]),
                        confidence_threshold=float(v["confidence_threshold"]), input_qos=v["input_qos"],
                        output_qos=v["output_qos"], output_depth=v["output_depth"],
                        diagnostics_period=float(v["diagnostics_period"]), freeze_gc=v["freeze_gc"],
                        max_input_pixels=int(v["max_input_pixels"]), batch_cameras=v["batch_cameras"])


#: Parameters applied while the node runs; every other one is read at configure.
LIVE_PARAMETERS = ("overlay_alpha", "confidence_threshold")


def check_live_change(name: str, value: Any, configured: bool) -> str | None:
    """Why a parameter change is refused (None: accepted). Unconfigured, everything is accepted (read
    at the next configure); configured, only :data:`LIVE_PARAMETERS` with a valid value."""
    spec = _SPECS.get(name)
    if not configured or spec is None:
        return None
    if name not in LIVE_PARAMETERS:
        return (f"{name} is read at configure: deactivate, cleanup, set it, then configure and activate "
                f"again (applied live: {', '.join(LIVE_PARAMETERS)})")
    if not spec.check(value):
        return f"parameter '{name}' = {value!r} is invalid: expected {spec.allowed}"
    return None


#: SegmenterConfig field -> parameter name, where they differ.
_FIELD_TO_PARAMETER = {"class_map": "class_config"}


def engine_error_as_parameter_error(exc: EngineConfigError, values: dict[str, Any] | None = None) -> ParameterError:
    """Re-word an engine configuration error with the parameter's name (and value, as the user wrote it)."""
    name = _FIELD_TO_PARAMETER.get(exc.field, exc.field)
    value = (values or {}).get(name, exc.value)
    return ParameterError(name, value, exc.allowed, exc.reason)
