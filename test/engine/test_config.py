"""SegmenterConfig.validate: each unusable value is an EngineConfigError naming field, value and choices."""

from __future__ import annotations

import pytest
import torch

from ddrnet_ros.classes import ClassMap
from ddrnet_ros.engine import EngineConfigError, SegmenterConfig


@pytest.mark.parametrize("changes, field, allowed", [
    ({"variant": "ddrnet18"}, "variant", "ddrnet23_slim, ddrnet23, ddrnet39"),
    ({"checkpoint": "/no/such/file.pt"}, "checkpoint", "a checkpoint file, 'shipped' (the packaged model) or 'random'"),
    ({"checkpoint": ""}, "checkpoint", "a checkpoint file, 'shipped' (the packaged model) or 'random'"),
    ({"num_classes": 0}, "num_classes", "1..255"),
    ({"num_classes": 300}, "num_classes", "1..255"),
    ({"backend": "tensorrt"}, "backend", "torch, onnxruntime, openvino"),
    ({"precision": "int8"}, "precision", "fp32, fp16, bf16"),
    ({"device": "gpu"}, "device", "auto, cpu, cuda or cuda:N"),
    ({"device": "cuda:x"}, "device", "auto, cpu, cuda or cuda:N"),
    ({"input_size": (500, 1024)}, "input_size", "multiples of 8"),
    ({"input_size": (512,)}, "input_size", "multiples of 8"),
    ({"input_size": (0, 0)}, "input_size", "multiples of 8"),
    ({"keep_aspect": "yes"}, "keep_aspect", "true or false"),
    ({"pad_to_input_size": 1}, "pad_to_input_size", "true or false"),
    ({"channels_last": 1}, "channels_last", "true or false"),
    ({"num_threads": -1}, "num_threads", "an integer >= 0"),
    ({"num_threads": 2.5}, "num_threads", "an integer >= 0"),
    ({"class_map": "/no/classes.yaml"}, "class_map", "an existing class YAML file"),
    ({"class_map": 19}, "class_map", "a ClassMap, a class YAML path or None"),
    ({"backend": "onnxruntime", "precision": "bf16"}, "precision", "fp32 with backend onnxruntime"),
])
def test_bad_value_names_field_value_and_choices(changes, field, allowed):
    config = SegmenterConfig(**{"checkpoint": "random", "device": "cpu", **changes})
    with pytest.raises(EngineConfigError) as info:
        config.validate()
    error = info.value
    assert isinstance(error, ValueError)
    assert error.field == field and error.value in (changes[field], str(changes[field]))
    assert allowed in error.allowed
    assert str(error).startswith(f"{field} = ") and "\n" not in str(error)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour on a machine without CUDA")
def test_cuda_without_cuda_is_an_error_and_auto_falls_back_to_cpu():
    with pytest.raises(EngineConfigError, match="device = 'cuda' is invalid") as info:
        SegmenterConfig(checkpoint="random", device="cuda").validate()
    if torch.version.cuda is None:  # this machine's torch: the CPU build, as rosdep installs it
        assert "CPU-only build" in str(info.value) and "GPU torch next to ROS" in str(info.value)
    else:
        assert "finds no usable GPU" in str(info.value)
    with pytest.raises(EngineConfigError, match="fp16 inference needs a CUDA device"):
        SegmenterConfig(checkpoint="random", device="auto", precision="fp16").validate()
    config = SegmenterConfig(checkpoint="random", device="auto")
    config.validate()
    assert config.resolved_device() == "cpu"


def test_non_torch_backends_run_on_the_cpu_only():
    config = SegmenterConfig(checkpoint="random", backend="onnxruntime", device="auto")
    config.validate()
    assert config.resolved_device() == "cpu"


def test_good_values_pass():
    for config in (SegmenterConfig(checkpoint="random", device="cpu"),
                   SegmenterConfig(variant="DDRNet-39", checkpoint="random", device="cpu", input_size=(512, 1024),
                                   keep_aspect=False, num_threads=2, channels_last=True, precision="bf16",
                                   num_classes=7, class_map=ClassMap.load(None))):
        config.validate()
    assert SegmenterConfig(variant="DDRNet-23-slim", device="cpu").variant_name == "ddrnet23_slim"
