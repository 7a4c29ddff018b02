"""`ddrnet-ros bench` runs every installed backend side by side and reports ratios to plain eager.

Only the report is checked here (names, ratios, label agreement), never a timing: speed claims
come from running the benchmark itself (bench/bench_engine.py).
"""

from __future__ import annotations

import json

import pytest

from ddrnet_ros.commands import main as cli_main
from ddrnet_ros.engine.backends import available_backends
from ddrnet_ros.engine.bench import PEER_NAME


def test_bench_reports_every_backend_against_plain_eager(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = cli_main(["bench", "--checkpoint", "random", "--sizes", "64x128", "--iterations", "2", "--warmup", "0",
                     "--threads", "1", "--channels-last", "--precisions", "fp32", "bf16", "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "ddrnet23_slim at 64x128: 2 interleaved iterations" in text
    result = json.loads(out.read_text())["results"][0]
    names = [row["name"] for row in result["rows"]]
    openvino = "openvino" in available_backends()
    expected = ["eager fp32 (plain)", *([PEER_NAME] if openvino else []), "torch (BN folded)", "torch channels_last"]
    for backend in available_backends():
        if backend == "openvino":
            expected += ["openvino fp32 (uint8 in)", "openvino bf16 (uint8 in)", "openvino bf16 (labels in graph)",
                         "openvino bf16 (network only)"]
        elif backend != "torch":
            expected.append(backend)
    assert names == expected
    for row in result["rows"]:
        assert row["iterations"] == 2 and row["p90_ms"] >= row["p50_ms"] >= row["min_ms"] > 0
        assert f"{row['ratio']:.2f}x" in text
        if row["name"] == PEER_NAME:
            assert row["agreement"] is None and row["vs_peer"] == 1.0  # network only: no labels to compare
        elif row["name"].endswith("(network only)"):
            assert row["agreement"] is None and row["vs_peer"] > 0
        elif "bf16" in row["name"]:
            assert row["agreement"] >= 0.9  # random weights: near-ties flip under bf16
        else:
            assert row["agreement"] >= 0.99  # same labels as plain eager (uint8 in: resize rounding aside)
    assert result["rows"][0]["ratio"] == 1.0
    assert result["postprocess"]["agreement"] == 1.0


def test_bench_rejects_bad_sizes(capsys):
    with pytest.raises(SystemExit) as info:
        cli_main(["bench", "--sizes", "64by128"])
    assert info.value.code == 2
    assert "expected HEIGHTxWIDTH" in capsys.readouterr().err


def test_every_contender_runs_the_network_at_the_measured_image_size(tmp_path):
    """A checkpoint recommending another network size must not shrink the baseline alone."""
    from ddrnet_ros.engine.bench import make_contenders
    from ddrnet_ros.model import create_model, save_checkpoint

    path = save_checkpoint(create_model("ddrnet23_slim"), tmp_path / "small.pt", {"network_input_size": [64, 128]})
    contenders = make_contenders("ddrnet23_slim", str(path), 1, ["torch"], channels_last=False)
    assert len(contenders) == 2
    assert all(c.segmenter.network_size(128, 192) == (128, 192) for c in contenders)


def test_bench_contenders_key_caches_on_the_checkpoint_file_like_the_node(tmp_path):
    """The int8 calibration is cached under the weights' key: the bench must use the file's sha256, as a
    node loading the same file does, or it calibrates the same weights once more under a key of its own."""
    from ddrnet_ros.engine.bench import make_contenders
    from ddrnet_ros.engine.config import SegmenterConfig
    from ddrnet_ros.engine.segmenter import Segmenter
    from ddrnet_ros.model import create_model, save_checkpoint, sha256_of

    path = save_checkpoint(create_model("ddrnet23_slim"), tmp_path / "small.pt", {"network_input_size": [64, 128]})
    contenders = make_contenders("ddrnet23_slim", str(path), 1, ["torch"], channels_last=False, size=(64, 128))
    node_like = Segmenter(SegmenterConfig(variant="ddrnet23_slim", checkpoint=str(path), device="cpu"))
    assert node_like.loaded.weights_key == sha256_of(path)
    assert [c.segmenter.loaded.weights_key for c in contenders] == [sha256_of(path)] * 2


def test_bench_scores_every_pipeline_on_camvid_val_at_the_checkpoint_network_size(tmp_path, capsys, camvid_root):
    """--camvid-root: mIoU per pipeline with evaluate's protocol, in the JSON and printed against fp32."""
    from ddrnet_ros.model import create_model, save_checkpoint

    path = save_checkpoint(create_model("ddrnet23_slim").eval(), tmp_path / "small.pt",
                           {"variant": "ddrnet23_slim", "num_classes": 19, "network_input_size": [64, 96]})
    out = tmp_path / "bench.json"
    code = cli_main(["bench", "--checkpoint", str(path), "--sizes", "64x128", "--iterations", "1", "--warmup", "0",
                     "--threads", "1", "--backends", "torch", "--camvid-root", str(camvid_root),
                     "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "ddrnet23_slim on CamVid val (" in text and "network input 64x96): 11-class mIoU" in text
    accuracy = json.loads(out.read_text())["camvid_val"][0]
    assert accuracy["network_input_size"] == [64, 96] and accuracy["frames"] >= 1
    scores = accuracy["miou"]
    assert list(scores) == ["eager fp32 (plain)", "torch (BN folded)"]
    assert 0.0 <= scores["eager fp32 (plain)"] <= 1.0
    assert abs(scores["torch (BN folded)"] - scores["eager fp32 (plain)"]) < 0.01  # the same network, folded


def test_a_precision_more_than_a_point_below_fp32_on_camvid_is_not_accurate_for_the_verdict():
    from ddrnet_ros.engine.bench import Row, verdict

    rows = [Row("ddrnet23_slim", (1024, 2048), "eager fp32 (plain)", 1000, 1000, 1000, 1.0, 1.0, 3),
            Row("ddrnet23_slim", (1024, 2048), PEER_NAME, 200, 200, 200, 0.2, None, 3, 1.0),
            Row("ddrnet23_slim", (1024, 2048), "openvino int8 (uint8 in)", 90, 90, 90, 0.09, 0.99, 3, 0.45),
            Row("ddrnet23_slim", (1024, 2048), "openvino bf16 (uint8 in)", 150, 150, 150, 0.15, 0.995, 3, 0.75)]
    assert "met: openvino int8" in verdict(rows)
    miou = {"eager fp32 (plain)": 0.60, "openvino int8 (uint8 in)": 0.585, "openvino bf16 (uint8 in)": 0.598}
    assert "NOT met: openvino bf16" in verdict(rows, miou)
    # Bench-only rows (the network alone, labels in the graph) never stand for the pipeline.
    network_only = Row("ddrnet23_slim", (1024, 2048), "openvino int8 (network only)", 50, 50, 50, 0.05, 1.0, 3, 0.25)
    assert "NOT met: openvino bf16" in verdict([*rows, network_only], miou)
