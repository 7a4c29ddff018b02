"""Segmentation and latency metrics (Cityscapes conventions).

IoU per class = TP / (TP + FP + FN) from a confusion matrix accumulated over all frames;
pixels whose ground truth is the ignore label are not counted; classes absent from both
ground truth and prediction have no IoU (NaN) and are left out of the mean.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..classes import ClassMap, CoarseLabelSpace


def confusion_matrix(prediction: np.ndarray, ground_truth: np.ndarray, num_classes: int,
                     ignore_label: int = 255) -> np.ndarray:
    """``num_classes x num_classes`` int64 counts; rows are ground truth, columns prediction.

    Ground-truth pixels equal to ``ignore_label`` (or outside the class range) are skipped;
    predicted values outside the class range (e.g. 255 below the confidence threshold) count
    as a miss of the true class (a false negative) without a column of their own.
    """
    if prediction.shape != ground_truth.shape:
        raise ValueError(f"prediction {prediction.shape} and ground truth {ground_truth.shape} differ in size")
    gt = ground_truth.reshape(-1).astype(np.int64)
    pred = prediction.reshape(-1).astype(np.int64)
    valid = (gt != ignore_label) & (gt >= 0) & (gt < num_classes)
    gt, pred = gt[valid], pred[valid]
    in_range = (pred >= 0) & (pred < num_classes)
    matrix = np.bincount(gt[in_range] * num_classes + pred[in_range],
                         minlength=num_classes * num_classes).reshape(num_classes, num_classes)
    unpredicted = np.bincount(gt[~in_range], minlength=num_classes)
    # Misses without a predicted class: add to the row total but to no column (kept separately).
    return _with_misses(matrix, unpredicted)


def _with_misses(matrix: np.ndarray, misses: np.ndarray) -> np.ndarray:
    out = np.zeros((matrix.shape[0], matrix.shape[1] + 1), np.int64)
    out[:, :-1] = matrix
    out[:, -1] = misses
    return out


@dataclass
class SegmentationScores:
    """Scores derived from an accumulated confusion matrix."""

    confusion: np.ndarray  # (C, C+1): last column = ground-truth pixels predicted as no class
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return self.confusion.shape[0]

    @property
    def per_class_iou(self) -> np.ndarray:
        """IoU per class; NaN where the class is absent from both ground truth and prediction."""
        square = self.confusion[:, : self.num_classes]
        tp = np.diag(square).astype(np.float64)
        gt_total = self.confusion.sum(axis=1)
        pred_total = square.sum(axis=0)
        union = gt_total + pred_total - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / np.maximum(union, 1), np.nan)

    @property
    def mean_iou(self) -> float:
        iou = self.per_class_iou
        return float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else float("nan")

    @property
    def pixel_accuracy(self) -> float:
        total = self.confusion.sum()
        return float(np.trace(self.confusion[:, : self.num_classes]) / total) if total else float("nan")

    @property
    def present_classes(self) -> list[int]:
        return [i for i, v in enumerate(self.per_class_iou) if not np.isnan(v)]

    def as_dict(self) -> dict:
        iou = self.per_class_iou
        return {
            "mIoU": self.mean_iou,
            "pixel_accuracy": self.pixel_accuracy,
            "per_class_iou": {name: (None if np.isnan(v) else float(v)) for name, v in zip(self.class_names, iou)},
            "classes_scored": len(self.present_classes),
        }


class ConfusionAccumulator:
    """Accumulates a confusion matrix over frames of any size."""

    def __init__(self, num_classes: int, class_names: Sequence[str] | None = None, ignore_label: int = 255) -> None:
        self.num_classes = num_classes
        self.ignore_label = ignore_label
        self.class_names = tuple(class_names) if class_names else tuple(str(i) for i in range(num_classes))
        self.matrix = np.zeros((num_classes, num_classes + 1), np.int64)
        self.frames = 0

    def update(self, prediction: np.ndarray, ground_truth: np.ndarray) -> None:
        self.matrix += confusion_matrix(prediction, ground_truth, self.num_classes, self.ignore_label)
        self.frames += 1

    def scores(self) -> SegmentationScores:
        return SegmentationScores(self.matrix.copy(), self.class_names)


class ScoringSpace:
    """The classes predictions are scored in: the model's own, or a coarser dataset's.

    Ground truth labelled in a coarse space (CamVid's 11 classes) is compared with the
    model's predictions mapped into that space (each model class to the coarse class whose
    set holds it), the usual protocol for scoring a finer model on a coarser benchmark.
    """

    def __init__(self, model_classes: ClassMap, label_space: CoarseLabelSpace | None = None) -> None:
        self.label_space = label_space
        self.class_map = model_classes if label_space is None else label_space.class_map()
        self._lookup = None if label_space is None else label_space.prediction_lookup(model_classes)

    @property
    def name(self) -> str:
        return "model" if self.label_space is None else self.label_space.name

    def prediction(self, labels: np.ndarray) -> np.ndarray:
        """Model class ids (255 = none) -> ids of the scored space (255 = none)."""
        return labels if self._lookup is None else self._lookup[labels]

    def accumulator(self) -> ConfusionAccumulator:
        return ConfusionAccumulator(self.class_map.num_classes, self.class_map.names, self.class_map.ignore_label)


@dataclass(frozen=True)
class LatencyStats:
    """Latency percentiles in milliseconds and throughput in frames per second."""

    count: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def from_samples(cls, samples_ms: Iterable[float]) -> LatencyStats:
        values = np.asarray(list(samples_ms), np.float64)
        if values.size == 0:
            nan = float("nan")
            return cls(0, nan, nan, nan, nan, nan, nan)
        p50, p90, p95, p99 = np.percentile(values, [50, 90, 95, 99])
        return cls(int(values.size), float(values.mean()), float(p50), float(p90), float(p95), float(p99),
                   float(values.max()))

    @property
    def throughput_fps(self) -> float:
        return 1000.0 / self.mean_ms if self.count and self.mean_ms > 0 else float("nan")

    def as_dict(self) -> dict:
        return {"count": self.count, "mean_ms": self.mean_ms, "p50_ms": self.p50_ms, "p90_ms": self.p90_ms,
                "p95_ms": self.p95_ms, "p99_ms": self.p99_ms, "max_ms": self.max_ms,
                "throughput_fps": self.throughput_fps}
