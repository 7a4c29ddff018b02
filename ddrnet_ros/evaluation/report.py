"""Evaluation reports: report.json with every number, report.md, and pictures a person reads.

Shared by the offline evaluator (``ddrnet-ros evaluate``) and the live one (``ddrnet-ros
evaluate-live``), so both write the same files. All files are written into a hidden staging
directory first and moved into place with report.json last, so a report.json on disk
always belongs to a complete report.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..classes import ClassMap, colorize
from .metrics import LatencyStats, SegmentationScores

PICTURES = {"iou": "per_class_iou.png", "confusion": "confusion_matrix.png",
            "latency": "latency_histogram.png", "samples": "samples.png"}
ERROR_COLOR = np.array([255, 0, 40], np.uint8)


#: Frames in the sample strip, spread over the run, and the width they are kept at.
SAMPLE_FRAMES = 4
SAMPLE_WIDTH = 512


def sample_indices(total: int, count: int = SAMPLE_FRAMES) -> list[int]:
    """``count`` indices spread evenly over ``range(total)`` (first and last included)."""
    if total <= 0:
        return []
    return sorted(set(np.linspace(0, total - 1, min(count, total)).round().astype(int).tolist()))


def shrink(pixels: np.ndarray, width: int = SAMPLE_WIDTH) -> np.ndarray:
    """A copy subsampled by a whole step to about ``width`` columns (labels stay exact ids)."""
    step = max(1, pixels.shape[1] // width)
    return pixels[::step, ::step].copy()


@dataclass
class Sample:
    """One frame for the picture strip: RGB input, predicted ids, ground-truth ids (or None)."""

    stamp_ns: int
    image: np.ndarray
    prediction: np.ndarray
    ground_truth: np.ndarray | None = None
    name: str | None = None  # shown instead of the time offset (a dataset's frame name)


@dataclass
class EvaluationReport:
    """Everything one evaluation found, offline or live."""

    mode: str  # "offline" (engine on bag frames) or "live" (the node's published labels)
    bag: dict[str, Any]  # path, image/label topics, topics: {name: {type, count}}; or {"dataset": {...}}
    model: dict[str, Any]  # variant, checkpoint, checkpoint_sha256, backend, device
    class_map: ClassMap
    frames: dict[str, int]  # read, scored, without_labels, dropped ...
    latency_samples_ms: list[float]
    scores: SegmentationScores | None = None
    latency_label: str = "engine latency per frame (segment() wall time)"
    wall_time_s: float | None = None
    #: frames/s through the whole system; None: 1000 / mean latency (a serial engine's rate)
    throughput_fps: float | None = None
    samples: list[Sample] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def latency(self) -> LatencyStats:
        return LatencyStats.from_samples(self.latency_samples_ms)

    @property
    def throughput(self) -> float:
        return self.latency.throughput_fps if self.throughput_fps is None else self.throughput_fps

    def as_dict(self) -> dict[str, Any]:
        """The JSON document: plain numbers, NaN written as null."""
        metrics = None
        if self.scores is not None:
            metrics = self.scores.as_dict()
            metrics["classes_present"] = [self.class_map.names[i] for i in self.scores.present_classes]
            metrics["confusion_matrix"] = {
                "rows": "ground truth", "columns": "prediction, then 'none' (no class predicted)",
                "class_names": list(self.class_map.names), "counts": self.scores.confusion.tolist()}
        latency = self.latency.as_dict()
        del latency["throughput_fps"]  # reported once, at top level: it may not derive from latency
        return _finite({
            "mode": self.mode,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            **({"dataset": self.bag["dataset"]} if "dataset" in self.bag else {"bag": self.bag}),
            "model": self.model,
            "frames": self.frames,
            "metrics": metrics,
            "latency_ms": latency,
            "latency_measures": self.latency_label,
            "throughput_fps": self.throughput,
            "wall_time_s": self.wall_time_s,
            **self.extra,
        })

    def headline(self) -> str:
        """The few numbers people ask for first, one per line."""
        lines = []
        if self.scores is not None:
            lines.append(f"mIoU {self.scores.mean_iou:.3f} over {len(self.scores.present_classes)} classes, "
                         f"pixel accuracy {self.scores.pixel_accuracy:.3f}")
        else:
            lines.append("no ground truth: latency only")
        lat = self.latency
        lines.append(f"latency p50 {lat.p50_ms:.1f} ms, p90 {lat.p90_ms:.1f} ms, p99 {lat.p99_ms:.1f} ms "
                     f"({self.throughput:.1f} frames/s)")
        lines.append("frames: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in self.frames.items() if v or
                                            k in ("scored", "dropped")))
        return "\n".join(lines)


def _finite(value: Any) -> Any:
    """NaN/inf -> None, numpy scalars -> Python, recursively (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_report(report: EvaluationReport, output_dir: str | os.PathLike) -> Path:
    """Write report.json, report.md and the PNGs into ``output_dir``; returns report.json's path."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".report-partial-", dir=output_dir))
    try:
        pictures = render_pictures(report, staging)
        document = report.as_dict()
        document["pictures"] = {key: name for key, name in pictures.items()}
        (staging / "report.md").write_text(markdown(report, document))
        (staging / "report.json").write_text(json.dumps(document, indent=2) + "\n")
        for name in [*pictures.values(), "report.md", "report.json"]:  # report.json last
            os.replace(staging / name, output_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output_dir / "report.json"


def render_pictures(report: EvaluationReport, directory: Path) -> dict[str, str]:
    """Draw every picture the data allows; returns {kind: file name}."""
    import matplotlib

    matplotlib.use("Agg")
    pictures = {}
    if report.scores is not None and report.scores.confusion.sum() > 0:
        plot_per_class_iou(report.scores, report.class_map, directory / PICTURES["iou"])
        plot_confusion(report.scores, report.class_map, directory / PICTURES["confusion"])
        pictures["iou"], pictures["confusion"] = PICTURES["iou"], PICTURES["confusion"]
    if report.latency.count:
        plot_latency(report.latency_samples_ms, report.latency, report.latency_label, directory / PICTURES["latency"])
        pictures["latency"] = PICTURES["latency"]
    if report.samples:
        plot_samples(report.samples, report.class_map, directory / PICTURES["samples"])
        pictures["samples"] = PICTURES["samples"]
    return pictures


def plot_per_class_iou(scores: SegmentationScores, class_map: ClassMap, path: Path) -> None:
    """Horizontal bars in each class's colour; classes not present are listed as n/a."""
    import matplotlib.pyplot as plt

    iou = scores.per_class_iou
    names = class_map.names
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(names) + 1.4), dpi=110)
    y = np.arange(len(names))
    values = np.nan_to_num(iou, nan=0.0)
    colors = class_map.colors / 255.0
    ax.barh(y, values, color=colors, edgecolor="black", linewidth=0.5)
    for i, v in enumerate(iou):
        ax.text(min(values[i], 1.0) + 0.01, i, "n/a (absent)" if np.isnan(v) else f"{v:.3f}",
                va="center", fontsize=8, color="grey" if np.isnan(v) else "black")
    ax.axvline(scores.mean_iou, color="black", linestyle="--", linewidth=1)
    ax.set_yticks(y, names, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.15)
    ax.set_xlabel("IoU")
    ax.set_title(f"Per-class IoU (mIoU {scores.mean_iou:.3f}, dashed)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_confusion(scores: SegmentationScores, class_map: ClassMap, path: Path) -> None:
    """Row-normalised confusion matrix of the classes present; 'none' = no class predicted."""
    import matplotlib.pyplot as plt

    present = scores.present_classes
    matrix = scores.confusion.astype(np.float64)
    rows = [i for i in present if matrix[i].sum() > 0]  # classes in the ground truth
    columns = present + ([scores.num_classes] if matrix[:, -1].sum() > 0 else [])
    row_totals = matrix[rows].sum(axis=1, keepdims=True)
    normalised = matrix[np.ix_(rows, columns)] / row_totals
    labels = [class_map.names[i] for i in rows]
    col_labels = [class_map.names[i] for i in present] + (["none"] if len(columns) > len(present) else [])
    fig, ax = plt.subplots(figsize=(2.7 + 0.45 * max(len(col_labels), 4), 1.7 + 0.4 * max(len(labels), 4)),
                           dpi=110)
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    for r in range(normalised.shape[0]):
        for c in range(normalised.shape[1]):
            v = normalised[r, c]
            if np.isfinite(v) and v >= 0.005:
                ax.text(c, r, f"{100 * v:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if v > 0.5 else "black")
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("ground-truth class")
    ax.set_title("Confusion matrix (% of each ground-truth row)")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_latency(samples_ms: Sequence[float], stats: LatencyStats, label: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    ax.hist(samples_ms, bins=min(40, max(5, len(samples_ms) // 2)), color="#4c72b0", edgecolor="white")
    for value, name, style in ((stats.p50_ms, "p50", "-"), (stats.p90_ms, "p90", "--"), (stats.p99_ms, "p99", ":")):
        ax.axvline(value, color="black", linestyle=style, linewidth=1.2, label=f"{name} {value:.1f} ms")
    ax.set_xlabel("milliseconds")
    ax.set_ylabel("frames")
    ax.set_title(f"{label}: {stats.count} frames, p50 {stats.p50_ms:.1f} ms", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def error_map(image: np.ndarray, prediction: np.ndarray, ground_truth: np.ndarray, ignore_label: int) -> np.ndarray:
    """The input dimmed to grey, wrong pixels in red; ignored ground truth stays dim."""
    grey = image.mean(axis=2, keepdims=True).astype(np.float32) * 0.45
    out = np.repeat(grey, 3, axis=2).astype(np.uint8)
    wrong = (prediction != ground_truth) & (ground_truth != ignore_label)
    out[wrong] = ERROR_COLOR
    return out


def plot_samples(samples: Sequence[Sample], class_map: ClassMap, path: Path) -> None:
    """One row per frame: input | prediction | ground truth | errors."""
    import matplotlib.pyplot as plt

    with_gt = any(s.ground_truth is not None for s in samples)
    titles = ["input", "prediction"] + (["ground truth", "errors (red)"] if with_gt else [])
    h, w = samples[0].image.shape[:2]
    cell_w = 3.6
    fig, axes = plt.subplots(len(samples), len(titles), squeeze=False, dpi=110,
                             figsize=(cell_w * len(titles), cell_w * h / w * len(samples) + 0.6))
    for row, sample in zip(axes, samples):
        panels = [sample.image, colorize(sample.prediction, class_map)]
        if with_gt:
            gt = sample.ground_truth
            if gt is None:
                panels += [np.zeros_like(sample.image)] * 2
            else:
                accuracy = np.mean((sample.prediction == gt)[gt != class_map.ignore_label]) if np.any(
                    gt != class_map.ignore_label) else float("nan")
                panels += [colorize(gt, class_map), error_map(sample.image, sample.prediction, gt,
                                                              class_map.ignore_label)]
        for col, (ax, panel) in enumerate(zip(row, panels)):
            ax.imshow(panel, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                label = sample.name or f"t = {(sample.stamp_ns - samples[0].stamp_ns) / 1e9:+.2f} s"
                ax.set_ylabel(label, fontsize=8)
            if with_gt and col == 3 and sample.ground_truth is not None:
                ax.set_xlabel(f"pixel accuracy {accuracy:.3f}", fontsize=8)
    for ax, title in zip(axes[0], titles):
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def markdown(report: EvaluationReport, document: dict[str, Any]) -> str:
    """report.md: the headline, tables and the pictures."""
    lines = [f"# Segmentation evaluation ({report.mode})", ""]
    model, bag = report.model, report.bag
    if "dataset" in bag:
        data = bag["dataset"]
        lines.append(f"- dataset: {data.get('source')} `{data.get('root')}` split {data.get('split')} "
                     f"({data.get('count')} frames)")
    else:
        lines.append(f"- bag: `{bag.get('path')}`, images `{bag.get('image_topic')}`, "
                     f"labels `{bag.get('label_topic') or 'none'}`")
    if report.extra.get("label_space"):
        lines.append(f"- scored in the {report.extra['label_space']} label space: each model class mapped to the "
                     "coarse class whose set holds it")
    lines += [f"- model: {model.get('variant')} from `{model.get('checkpoint') or 'random init'}` "
              f"(sha256 `{str(model.get('checkpoint_sha256'))[:16]}…`), backend {model.get('backend')} "
              f"on {model.get('device')}",
              f"- created {document['created']}", ""]
    lines += ["## Headline", "", *[f"- {line}" for line in report.headline().splitlines()], ""]
    if report.scores is not None:
        lines += ["## Per-class IoU", "", "| class | IoU |", "| --- | ---: |"]
        for name, value in zip(report.class_map.names, report.scores.per_class_iou):
            lines.append(f"| {name} | {'n/a' if np.isnan(value) else f'{value:.3f}'} |")
        lines += ["", "Classes absent from both ground truth and prediction are n/a and left out of the mean; "
                  "ground-truth pixels of the ignore label are not counted.", ""]
    lat = report.latency
    lines += ["## Latency", "", f"{report.latency_label}.", "", "| count | mean | p50 | p90 | p95 | p99 | max | fps |",
              "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
              f"| {lat.count} | {lat.mean_ms:.1f} | {lat.p50_ms:.1f} | {lat.p90_ms:.1f} | {lat.p95_ms:.1f} | "
              f"{lat.p99_ms:.1f} | {lat.max_ms:.1f} | {report.throughput:.1f} |", ""]
    titles = {"iou": "Per-class IoU", "confusion": "Confusion matrix", "latency": "Latency",
              "samples": "Sample frames"}
    pictures = document.get("pictures", {})
    if pictures:
        lines += ["## Pictures", ""]
        for key, name in pictures.items():
            lines += [f"![{titles[key]}]({name})", ""]
    return "\n".join(lines)
