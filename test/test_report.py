"""Reports: every number in report.json, readable pictures, nothing half-written."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from ddrnet_ros.classes import ClassMap
from ddrnet_ros.evaluation.metrics import ConfusionAccumulator
from ddrnet_ros.evaluation.report import ERROR_COLOR, EvaluationReport, Sample, error_map, write_report

CLASSES = ClassMap.builtin()


def _report(with_truth: bool = True, samples: list[Sample] | None = None) -> EvaluationReport:
    rng = np.random.default_rng(3)
    acc = ConfusionAccumulator(CLASSES.num_classes, CLASSES.names)
    made = []
    for i in range(2):
        gt = rng.choice([0, 2, 10, 13, 255], size=(32, 64)).astype(np.uint8)
        pred = np.where(rng.random(gt.shape) < 0.7, gt, 8).astype(np.uint8)
        acc.update(pred, gt)
        made.append(Sample(i, rng.integers(0, 256, (32, 64, 3), np.uint8), pred, gt if with_truth else None))
    return EvaluationReport(
        mode="offline", bag={"path": "b", "image_topic": "/camera/image_raw",
                             "label_topic": "/camera/labels" if with_truth else None,
                             "topics": {"/camera/image_raw": {"type": "sensor_msgs/msg/Image", "count": 2}}},
        model={"variant": "ddrnet23_slim", "checkpoint": None, "checkpoint_sha256": "ab" * 32,
               "backend": "torch", "device": "cpu"},
        class_map=CLASSES, frames={"read": 2, "scored": 2 if with_truth else 0},
        latency_samples_ms=[10.0, 20.0, 30.0, 40.0], scores=acc.scores() if with_truth else None,
        samples=samples if samples is not None else made)


def test_report_json_holds_the_scores_latency_and_model(tmp_path):
    report = _report()
    write_report(report, tmp_path)
    doc = json.loads((tmp_path / "report.json").read_text())
    scores = report.scores
    assert doc["metrics"]["mIoU"] == pytest.approx(scores.mean_iou)
    assert doc["metrics"]["pixel_accuracy"] == pytest.approx(scores.pixel_accuracy)
    assert doc["metrics"]["per_class_iou"]["wall"] is None  # absent class: null, not NaN
    assert doc["metrics"]["per_class_iou"]["vegetation"] == 0.0  # predicted, never true
    assert doc["metrics"]["classes_present"] == ["road", "building", "vegetation", "sky", "car"]
    assert np.array_equal(np.array(doc["metrics"]["confusion_matrix"]["counts"]), scores.confusion)
    assert doc["latency_ms"]["p50_ms"] == 25.0 and doc["throughput_fps"] == pytest.approx(40.0)
    assert doc["model"]["checkpoint_sha256"] == "ab" * 32
    assert doc["bag"]["topics"]["/camera/image_raw"]["count"] == 2
    assert set(doc["pictures"]) == {"iou", "confusion", "latency", "samples"}
    md = (tmp_path / "report.md").read_text()
    assert f"mIoU {scores.mean_iou:.3f}" in md and "![Confusion matrix](confusion_matrix.png)" in md


def test_pictures_are_valid_png_images(tmp_path):
    write_report(_report(), tmp_path)
    doc = json.loads((tmp_path / "report.json").read_text())
    for name in doc["pictures"].values():
        image = cv2.imread(str(tmp_path / name))
        assert image is not None, name
        assert image.shape[0] > 200 and image.shape[1] > 300 and image.std() > 5, name


def test_without_ground_truth_only_latency_and_samples_are_drawn(tmp_path):
    write_report(_report(with_truth=False), tmp_path)
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["metrics"] is None
    assert set(doc["pictures"]) == {"latency", "samples"}
    assert not (tmp_path / "confusion_matrix.png").exists()


def test_a_failure_while_writing_leaves_no_report_json(tmp_path):
    broken = [Sample(0, np.zeros((8, 8, 3), np.uint8), np.zeros((4, 4), np.uint8), np.zeros((8, 8), np.uint8))]
    with pytest.raises(Exception):
        write_report(_report(samples=broken), tmp_path)
    assert not (tmp_path / "report.json").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".report-partial")] == []


def test_error_map_marks_wrong_pixels_and_spares_ignored_ones():
    image = np.full((2, 2, 3), 200, np.uint8)
    gt = np.array([[1, 255], [2, 2]], np.uint8)
    pred = np.array([[1, 7], [3, 2]], np.uint8)
    out = error_map(image, pred, gt, 255)
    assert (out[1, 0] == ERROR_COLOR).all()
    for y, x in ((0, 0), (0, 1), (1, 1)):
        assert (out[y, x] == 90).all()  # dimmed grey: right or ignored
