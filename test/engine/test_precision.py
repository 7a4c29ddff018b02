"""Precision as an engine setting: bf16/int8 through OpenVINO with uint8 frames in, and ``auto``.

INT8 is calibrated once per checkpoint and cached; the cache is reused and a different checkpoint
gets its own. These run where openvino (and, for calibration, nncf) are installed.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from ddrnet_ros.engine import EngineConfigError, Segmenter, SegmenterConfig
from ddrnet_ros.engine.backends import BACKENDS as BACKEND_SPECS
from ddrnet_ros.engine.quantize import find_artifact
from ddrnet_ros.model import create_model, save_checkpoint

pytestmark = pytest.mark.skipif(not BACKEND_SPECS["openvino"].available(), reason="openvino is not installed")
needs_nncf = pytest.mark.skipif(importlib.util.find_spec("nncf") is None, reason="nncf is not installed")


def road_image(height: int = 64, width: int = 128, seed: int = 0) -> np.ndarray:
    from ddrnet_ros.data.synthetic import generate_scene

    return generate_scene(seed, height=height, width=width).image


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DDRNET_ROS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def checkpoint(tmp_path):
    import torch

    torch.manual_seed(3)
    return save_checkpoint(create_model("ddrnet23_slim").eval(), tmp_path / "a.pt")


def config(checkpoint, **changes) -> SegmenterConfig:
    return SegmenterConfig(**{"checkpoint": str(checkpoint), "device": "cpu", "backend": "openvino", **changes})


@pytest.mark.parametrize("channel_order", ["rgb", "bgr"])
@pytest.mark.parametrize("size", [(64, 128), (61, 90)])  # the frame itself, and a resized + padded one
def test_uint8_frames_through_the_graph_give_the_labels_of_the_float_path(checkpoint, channel_order, size):
    image = road_image()
    image = image if channel_order == "rgb" else np.ascontiguousarray(image[:, :, ::-1])
    input_size = None if size == (64, 128) else (64, 128)
    image = image[: size[0], : size[1]].copy()
    openvino = Segmenter(config(checkpoint, input_size=input_size))
    eager = Segmenter(config(checkpoint, backend="torch", input_size=input_size), optimize=False)
    a = openvino.segment(image, channel_order=channel_order).labels
    b = eager.segment(image, channel_order=channel_order).labels
    assert a.shape == b.shape == image.shape[:2]
    assert (a == b).mean() >= 0.99


def test_bf16_labels_agree_with_fp32_on_a_road_scene(checkpoint):
    image = road_image(128, 256)
    fp32 = Segmenter(config(checkpoint, precision="fp32")).segment(image).labels
    bf16 = Segmenter(config(checkpoint, precision="bf16")).segment(image).labels
    assert (fp32 == bf16).mean() >= 0.95  # random weights: many near-ties; the shipped model does far better


@pytest.mark.parametrize("changes, message", [
    ({"backend": "onnxruntime", "precision": "int8"}, "fp32 with backend onnxruntime"),
    ({"backend": "torch", "precision": "int8"}, "with backend torch"),
    ({"precision": "int4"}, "auto, fp32, fp16, bf16, int8"),
])
def test_precision_settings_are_validated_with_the_allowed_values(checkpoint, changes, message):
    with pytest.raises(EngineConfigError, match="precision") as info:
        config(checkpoint, **changes).validate()
    assert message in str(info.value)


@needs_nncf
def test_int8_is_calibrated_once_cached_reused_and_a_different_checkpoint_gets_its_own(
        checkpoint, cache, tmp_path, monkeypatch):
    from ddrnet_ros.engine import backends, quantize
    from ddrnet_ros.engine.backends import int8_artifact
    from ddrnet_ros.engine.loading import load_model

    monkeypatch.setattr(quantize, "CALIBRATION_FRAMES", 6)
    monkeypatch.setattr(quantize, "GATE_FRAMES", 2)
    loaded = load_model("ddrnet23_slim", checkpoint)
    key = loaded.checkpoint_sha256
    first = quantize.calibrate(_float_model(loaded.module), key, size=(64, 128), frames=6)
    assert first.xml.is_file() and 0.0 <= first.agreement <= 1.0
    assert find_artifact(key) == first
    assert find_artifact(key, (64, 128)) == first and find_artifact(key, (128, 256)) is None
    calls = []
    monkeypatch.setattr(backends, "calibrate", lambda *a, **k: calls.append(a[2]) or first)
    seg = Segmenter(config(checkpoint, precision="int8", input_size=(64, 128)))
    assert seg.segment(road_image()).labels.shape == (64, 128) and calls == []  # the cache, not a new calibration
    # a square image fits 64x128 as 64x64, in a frame trimmed to 64x64: the same quantized IR, reshaped
    assert seg.network_size(128, 128) == (64, 64)
    assert seg.segment(road_image(128, 128)).labels.shape == (128, 128) and calls == []
    # The gate measured the float layers in the precision the backend runs them in (bf16 where native).
    native_bf16 = "BF16" in seg.backend.core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    assert first.record["float_layers"] == ("bf16" if native_bf16 else "f32")
    assert seg.backend.config["INFERENCE_PRECISION_HINT"] == first.record["float_layers"]
    assert int8_artifact(loaded.module, key, (64, 128)) == first
    Segmenter(config(checkpoint, precision="int8", input_size=(128, 256)))
    assert calls == [(128, 256)]  # another network size is calibrated where it runs
    other = save_checkpoint(create_model("ddrnet23_slim").eval(), tmp_path / "b.pt")
    assert find_artifact(load_model("ddrnet23_slim", other).checkpoint_sha256) is None
    sidecar = first.xml.with_suffix(".json")  # made under the old gate (1/8-grid agreement): not trusted
    sidecar.write_text(json.dumps({k: v for k, v in first.record.items() if k != "version"}))
    assert find_artifact(key) is None


@needs_nncf
def test_precision_auto_takes_int8_only_when_its_calibration_passed_the_gate(checkpoint, cache, monkeypatch):
    import json

    from ddrnet_ros.engine import quantize
    from ddrnet_ros.engine.loading import load_model

    loaded = load_model("ddrnet23_slim", checkpoint)
    artifact = quantize.calibrate(_float_model(loaded.module), loaded.checkpoint_sha256, size=(64, 128), frames=4)
    for agreement, expected in ((0.5, {"bf16", "fp32"}), (0.999, {"int8"})):
        sidecar = artifact.xml.with_suffix(".json")
        sidecar.write_text(json.dumps({**artifact.record, "agreement_with_fp32": agreement}))
        seg = Segmenter(config(checkpoint, precision="auto", input_size=(64, 128)))
        assert seg.config.precision in expected, seg.choices
        assert any(line.startswith("precision auto -> ") for line in seg.choices)
    # A model calibrated at another network size does not vouch for this one.
    seg = Segmenter(config(checkpoint, precision="auto", input_size=(128, 256)))
    assert seg.config.precision in {"bf16", "fp32"}, seg.choices


def test_int8_without_nncf_or_a_calibrated_model_names_the_package(checkpoint, cache, monkeypatch):
    import importlib.util as util

    real = util.find_spec
    monkeypatch.setattr(util, "find_spec", lambda name, *a: None if name == "nncf" else real(name, *a))
    with pytest.raises(RuntimeError, match="pip install nncf"):
        Segmenter(config(checkpoint, precision="int8"))


def _float_model(module):
    import openvino as ov

    from ddrnet_ros.engine.backends.openvino_backend import float_openvino_model

    return float_openvino_model(module, ov.Core())


@needs_nncf
def test_export_int8_writes_the_quantized_ir_beside_the_onnx_and_fills_the_cache(checkpoint, cache, tmp_path,
                                                                                monkeypatch, capsys):
    from ddrnet_ros.commands import main
    from ddrnet_ros.engine import quantize
    from ddrnet_ros.engine.loading import load_model

    monkeypatch.setattr(quantize, "CALIBRATION_SIZE", (64, 128))
    monkeypatch.setattr(quantize, "GATE_FRAMES", 2)
    monkeypatch.setattr(quantize, "CALIBRATION_FRAMES", 4)
    out = tmp_path / "model.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--output", str(out), "--height", "64", "--width", "128",
                 "--precision", "int8", "--no-check"]) == 0
    assert out.is_file() and out.with_suffix(".int8.xml").is_file() and out.with_suffix(".int8.bin").is_file()
    assert "labels agree with fp32" in capsys.readouterr().out
    assert find_artifact(load_model("ddrnet23_slim", checkpoint).checkpoint_sha256) is not None


def test_in_memory_weights_get_their_own_cache_key_never_a_shared_name():
    import torch

    from ddrnet_ros.engine.loading import load_model, wrap_model

    torch.manual_seed(1)
    a = wrap_model(create_model("ddrnet23_slim"), "ddrnet23_slim")
    b = wrap_model(create_model("ddrnet23_slim"), "ddrnet23_slim")
    assert a.weights_key != b.weights_key  # a quantized model of one is never served for the other
    assert load_model("ddrnet23_slim", "random").weights_key == load_model("ddrnet23_slim", "random").weights_key


# --------------------------------------------------------------------------------------------
# the label head: labels leave OpenVINO instead of logits

HEAD_PLANS = [((64, 128), None, True), ((61, 203), None, True), ((1080, 1920), (512, 1024), True),
              ((480, 848), (384, 384), True), ((90, 160), (256, 512), True), ((61, 203), (96, 160), False)]


@pytest.mark.parametrize("size, input_size, keep_aspect", HEAD_PLANS)
def test_the_label_head_gives_the_reference_labels_for_every_frame_plan(size, input_size, keep_aspect):
    import openvino as ov
    import torch

    from ddrnet_ros.engine.backends.openvino_backend import label_head_model
    from ddrnet_ros.engine.postprocess import reference_logits
    from ddrnet_ros.engine.preprocess import plan_frame

    plan = plan_frame(*size, input_size, keep_aspect)
    torch.manual_seed(1)
    logits = torch.randn(1, 19, *plan.logits_size)  # noise: a class border at nearly every pixel
    compiled = ov.Core().compile_model(label_head_model(plan, 19), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    request.infer({0: logits.numpy()})
    labels = request.get_output_tensor(0).data[0, 0]
    expected = reference_logits(logits, plan)[0].argmax(0).numpy()
    assert labels.shape == size and labels.dtype == np.uint8
    # Equal up to float rounding at near-ties (measured: at most 6 of 2 million pixels for noise).
    assert (labels == expected).mean() >= 0.99995


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_labels_out_of_the_graph_are_the_reference_labels_of_the_networks_own_logits(checkpoint, precision):
    """The head runs in fp32 whatever the network's precision: its labels are the host reference's for
    the very logits the network gave (a bf16 upsampling would move some)."""
    from ddrnet_ros.engine.postprocess import reference_logits
    from ddrnet_ros.engine.preprocess import plan_frame

    segmenter = Segmenter(config(checkpoint, precision=precision))
    image = road_image(120, 200)
    plan = plan_frame(120, 200)
    frame = np.full((*plan.network, 3), 124, np.uint8)
    frame[:120, :200] = image
    backend = segmenter.backend
    labels = backend.infer_labels_uint8(frame, "rgb", plan)
    logits = backend.infer_uint8(frame, "rgb")
    expected = reference_logits(logits, plan)[0].argmax(0).numpy()
    assert labels.shape == (120, 200)
    assert (labels == expected).mean() >= 0.9999
