"""Parameter validation: every unusable value fails configure with one line naming the parameter."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from rclpy.lifecycle import TransitionCallbackReturn

from ddrnet_ros.resources import default_checkpoint

INVALID = [
    ("variant", "resnet50"),
    ("device", "gpu"),
    ("device", "cuda:x"),
    ("backend", "tensorrt"),
    ("precision", "fp64"),
    ("precision", "fp16"),  # needs CUDA
    ("input_size", [100, 64]),
    ("input_size", [0, 64]),
    ("input_size", [256]),
    ("keep_aspect", "yes"),
    ("pad_to_input_size", "no"),
    ("num_threads", -1),
    ("overlay_alpha", 1.5),
    ("overlay_alpha", "half"),
    ("confidence_threshold", -0.1),
    ("input_qos", "fast"),
    ("output_qos", "sensor_data"),
    ("output_depth", 0),
    ("diagnostics_period", 0.0),
    ("cameras", ["front", "front"]),
    ("cameras", ["front/left"]),
    ("checkpoint", "/no/such/weights.pt"),
    ("class_config", "/no/such/classes.yaml"),
    ("camera.camera.compressed", "yes"),
    ("camera.camera.topic", ""),
]


@pytest.mark.parametrize("name,value", INVALID, ids=[f"{n}={v!r}" for n, v in INVALID])
def test_an_invalid_parameter_fails_configure_with_a_message_naming_it(harness, name, value):
    node = harness.node(autostart=False, **{name: value})
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert node.configure_error.startswith(f"parameter '{name}' = {value!r} is invalid: expected ")
    assert "\n" not in node.configure_error
    assert node._state_machine.current_state[1] == "unconfigured"


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_device_cuda_without_cuda_is_an_error_but_auto_falls_back_to_cpu(harness):
    node = harness.node(autostart=False, device="cuda")
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    error = node.configure_error
    assert "parameter 'device' = 'cuda'" in error and ("CPU-only build" in error or "no usable GPU" in error)
    auto = harness.node(name="auto_node", device="auto")
    assert auto.segmenter.device == "cpu"


def test_a_class_config_that_does_not_fit_the_model_fails_configure(harness, checkpoint_file, tmp_path: Path):
    classes = tmp_path / "three.yaml"
    classes.write_text("classes:\n  - {name: road, color: [128, 64, 128]}\n"
                       "  - {name: car, color: [0, 0, 142]}\n  - {name: sky, color: [70, 130, 180]}\n")
    node = harness.node(autostart=False, checkpoint=str(checkpoint_file), class_config=str(classes))
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert "3 classes" in node.configure_error and "19" in node.configure_error
    assert "class_config" in node.configure_error


def test_a_missing_shipped_checkpoint_fails_configure_naming_the_file(harness, monkeypatch):
    import ddrnet_ros.resources

    # a package whose checkpoint file went missing (an incomplete install)
    monkeypatch.setattr(ddrnet_ros.resources, "DEFAULT_CHECKPOINT_NAME", "missing_checkpoint.pt")
    assert not default_checkpoint().is_file()
    node = harness.node(autostart=False, checkpoint="shipped")
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert default_checkpoint().name in node.configure_error


def test_an_empty_checkpoint_is_refused_with_the_words_that_are_allowed(harness):
    node = harness.node(autostart=False, checkpoint="")
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert "checkpoint" in node.configure_error and "'shipped'" in node.configure_error
    assert "'random'" in node.configure_error


def test_configure_can_be_retried_after_fixing_the_parameter(harness):
    from rclpy.parameter import Parameter

    node = harness.node(autostart=False, overlay_alpha=2.0)
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    node.set_parameters([Parameter("overlay_alpha", value=0.3)])
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert node.segmenter is None
