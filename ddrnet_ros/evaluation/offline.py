"""Offline evaluation (``ddrnet-ros evaluate``): the engine over a rosbag's camera frames, or a
labelled dataset directory (e.g. a CamVid split), scored.

With ground truth (a bag's label topic, or the dataset's labels): confusion matrix, per-class
IoU, mIoU (Cityscapes convention) and pixel
accuracy over the frames whose label image has the same header stamp. Always: the engine's
latency per frame and its throughput. Ground truth in a coarser label space (``--label-space
camvid``; implied for a CamVid dataset) is scored in that space, predictions mapped onto it. Writes the report (see
:mod:`ddrnet_ros.evaluation.report`) and,
on request, a bag of labels/color/overlay images with the input's stamps and frame ids.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..classes import CoarseLabelSpace
from ..data.bags import BagReader, BagWriter, StampedImage, Storage
from ..data.camvid import label_space_of
from ..data.datasets import DatasetLayoutError
from .metrics import ScoringSpace
from .perturb import PERTURBATIONS, perturb
from .report import EvaluationReport, Sample, sample_indices, shrink

OUTPUT_TOPICS = {"labels": "/segmentation/labels", "color": "/segmentation/color",
                 "overlay": "/segmentation/overlay"}


class SampleKeeper:
    """Keeps the frames at :func:`sample_indices` of ``total``, shrunk for the sample strip."""

    def __init__(self, total: int) -> None:
        self.wanted = set(sample_indices(total))
        self.samples: list[Sample] = []

    def offer(self, index: int, stamp_ns: int, image: np.ndarray, prediction: np.ndarray,
              ground_truth: np.ndarray | None, name: str | None = None) -> None:
        if index in self.wanted:
            self.samples.append(Sample(stamp_ns, shrink(image), shrink(prediction),
                                       None if ground_truth is None else shrink(ground_truth), name))


def bag_description(bag: BagReader, image_topic: str, label_topic: str | None) -> dict[str, Any]:
    return {"path": str(bag.path), "image_topic": image_topic, "label_topic": label_topic,
            "topics": {t.name: {"type": t.msgtype, "count": t.count} for t in bag.topics.values()}}


def model_description(segmenter: Any, config: Any) -> dict[str, Any]:
    return {"variant": segmenter.variant, "checkpoint": str(config.checkpoint) if config.checkpoint else None,
            "checkpoint_sha256": segmenter.checkpoint_sha256, "backend": config.backend,
            "device": str(segmenter.device),
            "network_input_size": list(segmenter.input_size) if segmenter.input_size else None,
            "pad_to_input_size": bool(config.pad_to_input_size)}


def evaluate_bag(bag_path: str | Path, image_topic: str, label_topic: str | None, segmenter: Any,
                 model: dict[str, Any], max_frames: int | None = None, output_bag: str | Path | None = None,
                 storage: Storage = "sqlite3", progress: bool = False,
                 label_space: CoarseLabelSpace | None = None) -> EvaluationReport:
    """Segment every camera frame of the bag (up to ``max_frames``) and score against its labels."""
    with BagReader(bag_path) as bag:
        total = bag.require_topic(image_topic).count
        if label_topic:
            bag.require_topic(label_topic, ("sensor_msgs/msg/Image",))
        if max_frames is not None:
            total = min(total, max_frames)
        if label_topic:
            pairs = ((frame, None if gt is None else gt.pixels)
                     for frame, gt in bag.labelled_images(image_topic, label_topic))
        else:
            pairs = ((frame, None) for frame in bag.images(image_topic))
        writer = BagWriter(output_bag, storage) if output_bag else None
        try:
            run = score_frames(pairs, total, segmenter, ScoringSpace(segmenter.class_map, label_space), writer,
                               progress)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        if writer is not None:
            writer.commit()
        description = bag_description(bag, image_topic, label_topic)
    if output_bag:
        description["output_bag"] = str(output_bag)
    return run.report(description, model, scored=bool(label_topic))


def evaluate_dataset(dataset: Any, segmenter: Any, model: dict[str, Any], max_frames: int | None = None,
                     progress: bool = False, perturbation: str | None = None) -> EvaluationReport:
    """Segment every frame of a labelled dataset (e.g. a CamVid split) and score it in its label space;
    with ``perturbation`` (see :mod:`.perturb`) every frame is made harder the same way first."""
    total = len(dataset) if max_frames is None else min(len(dataset), max_frames)
    frames = getattr(dataset, "frames", None)

    def pairs() -> Iterator[tuple[StampedImage, np.ndarray]]:
        for index in range(total):
            image, labels = dataset[index]
            if perturbation is not None:
                image, labels = perturb(perturbation, image, labels, index)
            name = frames[index].name if frames else str(index)
            yield StampedImage(stamp_ns=index, frame_id=name, pixels=image, log_time_ns=index), labels

    names = [frames[i].name for i in range(total)] if frames else None
    run = score_frames(pairs(), total, segmenter, ScoringSpace(segmenter.class_map, label_space_of(dataset)),
                       progress=progress, sample_names=names)
    description: dict[str, Any] = {"dataset": getattr(dataset, "describe", lambda: {"count": len(dataset)})()}
    if perturbation is not None:
        description["dataset"]["perturbation"] = {"name": perturbation, "what": PERTURBATIONS[perturbation][0]}
    return run.report(description, model, scored=True)


class ScoredRun:
    """What :func:`score_frames` gathered: scores, latencies, frame counts and sample frames."""

    def __init__(self, space: ScoringSpace, total: int) -> None:
        self.space = space
        self.accumulator = space.accumulator()
        self.keeper = SampleKeeper(total)
        self.latencies: list[float] = []
        self.frames = {"read": 0, "scored": 0, "without_labels": 0}
        self.wall_s = 0.0

    def report(self, source: dict[str, Any], model: dict[str, Any], scored: bool) -> EvaluationReport:
        extra = {} if self.space.label_space is None else {"label_space": self.space.name}
        return EvaluationReport(
            mode="offline", bag=source, model=model, class_map=self.space.class_map, frames=self.frames,
            latency_samples_ms=self.latencies, scores=self.accumulator.scores() if scored else None,
            wall_time_s=self.wall_s, samples=self.keeper.samples, extra=extra)


def score_frames(pairs: Iterable[tuple[StampedImage, np.ndarray | None]], total: int, segmenter: Any,
                 space: ScoringSpace, writer: BagWriter | None = None, progress: bool = False,
                 sample_names: Sequence[str] | None = None) -> ScoredRun:
    """Segment up to ``total`` frames, scoring those with ground truth in ``space``; ``sample_names``
    label the sample pictures (a dataset's frame names; bags show times instead)."""
    run = ScoredRun(space, total)
    started = time.perf_counter()
    for index, (frame, gt) in enumerate(tqdm(pairs, total=total, desc="evaluate", unit="frame",
                                             disable=None if progress else True)):
        if index >= total:
            break
        t0 = time.perf_counter()
        result = segmenter.segment(frame.pixels, channel_order="rgb", want_color=writer is not None,
                                   want_overlay=writer is not None)
        run.latencies.append((time.perf_counter() - t0) * 1000.0)
        run.frames["read"] += 1
        prediction = space.prediction(result.labels)
        if gt is not None:
            run.accumulator.update(prediction, gt)
            run.frames["scored"] += 1
        else:
            run.frames["without_labels"] += 1
        run.keeper.offer(index, frame.stamp_ns, frame.pixels, prediction, gt,
                         name=sample_names[index] if sample_names else None)
        if writer is not None:
            _write_outputs(writer, frame, result)
    run.wall_s = time.perf_counter() - started
    return run


def _write_outputs(writer: BagWriter, frame: StampedImage, result: Any) -> None:
    """labels (mono8), color and overlay (rgb8), each with the camera frame's stamp and frame id."""
    for key, encoding in (("labels", "mono8"), ("color", "rgb8"), ("overlay", "rgb8")):
        writer.write_image(OUTPUT_TOPICS[key], getattr(result, key), frame.stamp_ns, frame.frame_id,
                           encoding=encoding, log_time_ns=frame.log_time_ns)


#: --dataset NAME -> (reader class path, splits); a registry so another labelled set is one entry.
DATASETS = {"camvid": ("ddrnet_ros.data.camvid", "CamVidDataset")}


def open_dataset(name: str, root: str, split: str) -> Any:
    """The named dataset reader on ``root``/``split`` (layout errors raise DatasetLayoutError)."""
    if name not in DATASETS:
        raise DatasetLayoutError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    module, cls = DATASETS[name]
    return getattr(importlib.import_module(module), cls)(root, split)
