"""Every backend gives eager PyTorch's labels and logits; `ddrnet-ros export` writes a working graph.

Reference: the plain eager baseline (``optimize=False``: the module as written, every class
upsampled before the argmax). Stated tolerances: logits within 1e-4 of the logit range
(float32 rounding of reordered sums and folded BatchNorm), labels >= 99.9% identical pixels.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from torch import nn

from ddrnet_ros.commands import main as cli_main
from ddrnet_ros.engine import Segmenter, SegmenterConfig
from ddrnet_ros.engine.backends import BACKENDS as BACKEND_SPECS
from ddrnet_ros.model import save_checkpoint

LOGIT_TOLERANCE = 1e-4   # of max |logit|
LABEL_AGREEMENT = 0.999  # share of identical pixels

BACKENDS = [
    pytest.param("torch", id="torch-optimised"),
    pytest.param("onnxruntime", id="onnxruntime"),
    pytest.param("openvino", id="openvino",
                 marks=pytest.mark.skipif(not BACKEND_SPECS["openvino"].available(),
                                          reason="openvino is not installed")),
]


@pytest.fixture(scope="module")
def ddrnet(trained_like_model) -> nn.Module:
    return trained_like_model()


def scene(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth colour blobs plus noise: large regions, like a camera image."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (4, 6, 3)).astype(np.float32)
    import cv2

    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(smooth + rng.normal(0, 8, smooth.shape), 0, 255).astype(np.uint8)


#: (image size, input_size, pad_to_input_size, the network frame it runs in)
GEOMETRIES = [((61, 203), None, False, (64, 256)), ((120, 200), (64, 128), True, (64, 128)),
              ((96, 160), (64, 192), False, (64, 128))]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("size, input_size, pad, network", GEOMETRIES,
                         ids=["61x203-native", "120x200-letterbox", "96x160-trimmed"])
def test_backend_agrees_with_plain_eager(ddrnet, backend, size, input_size, pad, network):
    plain = Segmenter(SegmenterConfig(checkpoint="random", input_size=input_size, pad_to_input_size=pad,
                                      device="cpu"), model=ddrnet, optimize=False)
    seg = Segmenter(SegmenterConfig(checkpoint="random", input_size=input_size, pad_to_input_size=pad,
                                    backend=backend, device="cpu"), model=ddrnet)
    assert seg.network_size(*size) == plain.network_size(*size) == network
    assert seg.backend.name == backend
    image = scene(*size)
    expected = plain.logits(image)
    got = seg.logits(image)
    assert got.shape == expected.shape == (19, *size) and got.dtype == np.float32
    error = np.abs(got - expected).max() / np.abs(expected).max()
    assert error < LOGIT_TOLERANCE, error
    labels = seg.segment(image).labels
    agreement = (labels == plain.segment(image).labels).mean()
    assert agreement >= LABEL_AGREEMENT, agreement
    assert len(np.unique(labels)) > 1  # a test image with a single class would prove little


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_serves_several_frame_sizes(ddrnet, backend):
    seg = Segmenter(SegmenterConfig(checkpoint="random", backend=backend, device="cpu"), model=ddrnet)
    for size in ((48, 64), (64, 96), (48, 64)):
        result = seg.segment(scene(*size), want_confidence=True)
        assert result.labels.shape == result.confidence.shape == size


def test_onnxruntime_thread_count_is_configurable(ddrnet):
    seg = Segmenter(SegmenterConfig(checkpoint="random", backend="onnxruntime", num_threads=1, device="cpu"),
                    model=ddrnet)
    assert seg.backend.session.get_session_options().intra_op_num_threads == 1


@pytest.mark.skipif(not BACKEND_SPECS["openvino"].available(), reason="openvino is not installed")
def test_openvino_thread_count_is_configurable(ddrnet):
    seg = Segmenter(SegmenterConfig(checkpoint="random", backend="openvino", num_threads=1, device="cpu"), model=ddrnet)
    seg.segment(scene(32, 48))
    compiled = next(iter(seg.backend._compiled.values()))[0]
    assert int(compiled.get_property("INFERENCE_NUM_THREADS")) == 1


@pytest.mark.parametrize("package, backend", [("onnxruntime", "onnxruntime"), ("openvino", "openvino")])
def test_missing_backend_package_is_a_clear_error(ddrnet, monkeypatch, package, backend):
    monkeypatch.setitem(sys.modules, package, None)  # what `import` sees when the package is absent
    with pytest.raises(RuntimeError, match=f"backend '{backend}' needs the {package} package: pip install {package}"):
        Segmenter(SegmenterConfig(checkpoint="random", backend=backend, device="cpu"), model=ddrnet)


# ----------------------------------------------------------------------------- ddrnet-ros export
def test_export_writes_a_graph_that_onnxruntime_runs_like_eager(ddrnet, tmp_path, capsys):
    import onnx
    import onnxruntime as ort

    checkpoint = save_checkpoint(ddrnet, tmp_path / "slim.pt", metadata={"variant": "ddrnet23_slim",
                                                                           "num_classes": 19})
    output = tmp_path / "out" / "slim.onnx"
    code = cli_main(["export", "--variant", "ddrnet23_slim", "--checkpoint", str(checkpoint), "--output", str(output),
                     "--height", "64", "--width", "128"])
    assert code == 0
    assert "checked with ONNX Runtime" in capsys.readouterr().out
    graph = onnx.load(str(output))
    onnx.checker.check_model(graph)
    assert [i.name for i in graph.graph.input] == ["image"] and [o.name for o in graph.graph.output] == ["logits"]
    meta = json.loads((tmp_path / "out" / "slim.onnx.json").read_text())
    assert meta["variant"] == "ddrnet23_slim" and meta["num_classes"] == 19 and len(meta["class_names"]) == 19
    assert meta["input"]["shape"] == [1, 3, 64, 128] and meta["checkpoint"] == str(checkpoint)
    x = torch.randn(1, 3, 64, 128)
    got = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"]).run(None, {"image": x.numpy()})[0]
    with torch.inference_mode():
        expected = ddrnet(x).numpy()
    assert got.shape == (1, 19, 8, 16)
    assert np.abs(got - expected).max() / np.abs(expected).max() < LOGIT_TOLERANCE


def test_dynamic_export_accepts_other_sizes(tmp_path):
    import onnxruntime as ort

    output = tmp_path / "dyn.onnx"
    assert cli_main(["export", "--checkpoint", "random", "--output", str(output), "--height", "64", "--width", "64",
                     "--dynamic", "--no-check"]) == 0
    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    assert session.run(None, {"image": np.zeros((1, 3, 72, 40), np.float32)})[0].shape == (1, 19, 9, 5)


@pytest.mark.parametrize("argv, message", [
    (["--height", "100"], "--height 100 must be a positive multiple of 8"),
    (["--output-name"], None),
    (["--checkpoint", "/no/such.pt"], "checkpoint not found: /no/such.pt"),
])
def test_export_errors_are_one_line(tmp_path, capsys, argv, message):
    if message is None:  # a typo in an option is argparse's usage error
        with pytest.raises(SystemExit):
            cli_main(["export", "--output", str(tmp_path / "x.onnx"), *argv])
        return
    assert cli_main(["export", "--output", str(tmp_path / "x.onnx"), "--height", "64", "--width", "64",
                     *argv]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ddrnet-ros export: error:") and message in err and "\n" not in err
    assert not (tmp_path / "x.onnx").exists()


def test_torch_options_channels_last_and_bf16_agree_with_plain_eager(ddrnet):
    image = scene(64, 96)
    plain = Segmenter(SegmenterConfig(checkpoint="random", device="cpu"), model=ddrnet,
                      optimize=False).segment(image).labels
    channels_last = Segmenter(SegmenterConfig(checkpoint="random", channels_last=True, device="cpu"), model=ddrnet)
    assert channels_last.backend.channels_last
    assert (channels_last.segment(image).labels == plain).mean() >= LABEL_AGREEMENT
    bf16 = Segmenter(SegmenterConfig(checkpoint="random", precision="bf16", device="cpu"), model=ddrnet)
    assert next(bf16.backend.net.parameters()).dtype == torch.bfloat16
    # bfloat16 keeps 8 mantissa bits: near-tied pixels may flip, so a looser bound than fp32's
    assert (bf16.segment(image).labels == plain).mean() >= 0.97
