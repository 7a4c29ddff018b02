"""Metrics against hand-computed confusion matrices and an independent implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ddrnet_ros.classes import CAMVID, ClassMap
from ddrnet_ros.evaluation.metrics import (
    ConfusionAccumulator,
    LatencyStats,
    ScoringSpace,
    SegmentationScores,
    confusion_matrix,
)

GT = np.array([[0, 0, 1],
               [1, 2, 255]], np.uint8)
PRED = np.array([[0, 1, 1],
                 [1, 2, 0]], np.uint8)


def test_confusion_matrix_counts_rows_as_truth_and_skips_ignored_pixels():
    # The 255 pixel (predicted 0) is not counted; the last column holds "no class" predictions.
    expected = np.array([[1, 1, 0, 0],
                         [0, 2, 0, 0],
                         [0, 0, 1, 0]])
    np.testing.assert_array_equal(confusion_matrix(PRED, GT, 3), expected)


def test_iou_miou_and_pixel_accuracy_match_hand_computation():
    acc = ConfusionAccumulator(3, ("a", "b", "c"))
    acc.update(PRED, GT)
    scores = acc.scores()
    # class 0: tp 1, gt 2, pred 1 -> 1 / 2;  class 1: tp 2, gt 2, pred 3 -> 2 / 3;  class 2: 1 / 1
    np.testing.assert_allclose(scores.per_class_iou, [1 / 2, 2 / 3, 1.0])
    assert scores.mean_iou == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert scores.pixel_accuracy == pytest.approx(4 / 5)
    d = scores.as_dict()
    assert d["per_class_iou"] == {"a": pytest.approx(0.5), "b": pytest.approx(2 / 3), "c": pytest.approx(1.0)}
    assert d["classes_scored"] == 3


def test_classes_absent_from_truth_and_prediction_are_left_out_of_the_mean():
    gt = np.array([[0, 0, 1, 1]])
    pred = np.array([[0, 0, 1, 2]])  # class 2 predicted but absent in truth: IoU 0, counted
    scores = SegmentationScores(confusion_matrix(pred, gt, 4), ("a", "b", "c", "d"))
    iou = scores.per_class_iou
    assert iou[0] == 1.0 and iou[1] == pytest.approx(0.5) and iou[2] == 0.0
    assert math.isnan(iou[3])  # class 3 nowhere: excluded
    assert scores.mean_iou == pytest.approx((1.0 + 0.5 + 0.0) / 3)
    assert scores.present_classes == [0, 1, 2]
    assert scores.as_dict()["per_class_iou"]["d"] is None


def test_prediction_without_class_counts_as_a_miss_of_the_true_class():
    gt = np.array([[0, 0, 1, 1]])
    pred = np.array([[0, 255, 1, 1]])
    matrix = confusion_matrix(pred, gt, 2)
    np.testing.assert_array_equal(matrix, [[1, 0, 1], [0, 2, 0]])
    scores = SegmentationScores(matrix, ("a", "b"))
    np.testing.assert_allclose(scores.per_class_iou, [1 / 2, 1.0])
    assert scores.pixel_accuracy == pytest.approx(3 / 4)


def test_accumulating_frames_of_different_sizes_equals_one_big_frame():
    rng = np.random.default_rng(0)
    frames = [(rng.integers(0, 5, (4, 6)), rng.integers(0, 5, (4, 6))),
              (rng.integers(0, 5, (3, 2)), rng.integers(0, 5, (3, 2)))]
    acc = ConfusionAccumulator(5)
    for pred, gt in frames:
        acc.update(pred, gt)
    flat_pred = np.concatenate([p.ravel() for p, _ in frames])
    flat_gt = np.concatenate([g.ravel() for _, g in frames])
    np.testing.assert_array_equal(acc.matrix, confusion_matrix(flat_pred, flat_gt, 5))
    assert acc.frames == 2
    assert acc.matrix.sum() == 4 * 6 + 3 * 2


def test_prediction_and_truth_of_different_sizes_are_rejected():
    with pytest.raises(ValueError, match="differ in size"):
        confusion_matrix(np.zeros((2, 3)), np.zeros((3, 2)), 2)


def test_nothing_scored_gives_nan_not_zero():
    scores = ConfusionAccumulator(3).scores()
    assert math.isnan(scores.mean_iou) and math.isnan(scores.pixel_accuracy)


def test_latency_percentiles_and_throughput():
    stats = LatencyStats.from_samples([10.0, 20.0, 30.0, 40.0])
    assert stats.count == 4
    assert stats.mean_ms == 25.0 and stats.p50_ms == 25.0 and stats.max_ms == 40.0
    assert stats.p90_ms == pytest.approx(37.0)  # linear interpolation between 30 and 40
    assert stats.throughput_fps == pytest.approx(40.0)
    assert math.isnan(LatencyStats.from_samples([]).p50_ms)


def test_iou_agrees_with_cityscapesscripts_evaluation(tmp_path):
    """Independent cross-check: cityscapesScripts' own pixel-level evaluation on label-id PNGs."""
    cs_eval = pytest.importorskip("cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling")
    from cityscapesscripts.helpers.labels import trainId2label
    from PIL import Image

    names = ClassMap.builtin().names
    rng = np.random.default_rng(7)
    train_to_id = np.zeros(256, np.uint8)  # 255 and anything unknown -> id 0 ("unlabeled", ignored)
    for train_id in range(19):
        train_to_id[train_id] = trainId2label[train_id].id
    acc = ConfusionAccumulator(19, names)
    pred_files, gt_files = [], []
    for i in range(3):
        # Only some classes, so that absent classes (NaN) are part of the check.
        gt = rng.choice([0, 1, 2, 8, 10, 13, 255], size=(12, 16)).astype(np.uint8)
        pred = np.where(rng.random(gt.shape) < 0.6, gt, rng.choice([0, 1, 8, 11, 13, 255], size=gt.shape))
        pred = pred.astype(np.uint8)
        acc.update(pred, gt)
        gt_path = tmp_path / f"city_000000_{i:06d}_gtFine_labelIds.png"
        pred_path = tmp_path / f"city_000000_{i:06d}_pred.png"
        Image.fromarray(train_to_id[gt]).save(gt_path)
        Image.fromarray(train_to_id[pred]).save(pred_path)
        gt_files.append(str(gt_path))
        pred_files.append(str(pred_path))

    cs_args = cs_eval.args
    cs_args.quiet, cs_args.JSONOutput = True, False
    cs_args.evalInstLevelScore, cs_args.evalPixelAccuracy = False, False
    result = cs_eval.evaluateImgLists(pred_files, gt_files, cs_args)

    ours = acc.scores()
    for train_id, name in enumerate(names):
        theirs = result["classScores"][trainId2label[train_id].name]
        mine = ours.per_class_iou[train_id]
        if math.isnan(theirs):
            assert math.isnan(mine), name
        else:
            assert mine == pytest.approx(theirs), name
    assert ours.mean_iou == pytest.approx(result["averageScoreClasses"])


def test_scoring_in_camvid_space_maps_each_model_class_to_the_set_holding_it():
    model = ClassMap.builtin()
    space = ScoringSpace(model, CAMVID)
    ids = {name: i for i, name in enumerate(model.names)}
    coarse = {name: i for i, name in enumerate(CAMVID.names)}
    prediction = np.array([[ids["truck"], ids["bus"], ids["car"], ids["rider"], ids["road"], ids["wall"], 255]],
                          np.uint8)
    truth = np.array([[coarse["car"], coarse["car"], coarse["car"], coarse["bicyclist"], coarse["pavement"],
                       255, coarse["building"]]], np.uint8)
    accumulator = space.accumulator()
    accumulator.update(space.prediction(prediction), truth)
    scores = accumulator.scores().as_dict()
    iou = scores["per_class_iou"]
    assert iou["car"] == 1.0 and iou["bicyclist"] == 1.0          # truck/bus count as car, rider as bicyclist
    assert iou["pavement"] == 0.0 and iou["road"] == 0.0           # road predicted on pavement: both missed
    assert iou["building"] == 0.0                                  # no class predicted (255) is a miss
    assert iou["sky"] is None                                      # absent from both: left out of the mean
    assert scores["pixel_accuracy"] == pytest.approx(4 / 6)         # the ignored pixel is not counted
    assert space.class_map.names == CAMVID.names and space.name == "camvid"


def test_scoring_in_the_model_space_leaves_predictions_alone():
    space = ScoringSpace(ClassMap.builtin())
    labels = np.arange(20, dtype=np.uint8).reshape(4, 5)
    assert space.prediction(labels) is labels and space.name == "model"
