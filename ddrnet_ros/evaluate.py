"""``ddrnet-ros evaluate``: run the engine over a rosbag's camera frames, or a labelled dataset
directory (``--dataset camvid ROOT --split test``), and score it.

With ground truth (a bag's label topic, or the dataset's labels): confusion matrix, per-class IoU, mIoU (Cityscapes convention) and pixel
accuracy over the frames whose label image has the same header stamp. Always: the engine's
latency per frame and its throughput. Ground truth in a coarser label space (``--label-space
camvid``; implied for a CamVid dataset) is scored in that space, predictions mapped onto it. Writes the report (see :mod:`ddrnet_ros.report`) and,
on request, a bag of labels/color/overlay images with the input's stamps and frame ids.
Bad input ends the run with one line on stderr, a non-zero exit and no report.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
from tqdm import tqdm

from .classes import LABEL_SPACES, CoarseLabelSpace
from .cli import size_argument
from .data.bags import BagError, BagReader, BagWriter, StampedImage
from .data.datasets import DatasetLayoutError
from .metrics import ScoringSpace
from .report import EvaluationReport, Sample, sample_indices, shrink, write_report

DEFAULT_OUTPUT_DIR = Path("out/evaluate")
OUTPUT_TOPICS = {"labels": "/segmentation/labels", "color": "/segmentation/color",
                 "overlay": "/segmentation/overlay"}


class SampleKeeper:
    """Keeps the frames at :func:`sample_indices` of ``total``, shrunk for the sample strip."""

    def __init__(self, total: int) -> None:
        self.wanted = set(sample_indices(total))
        self.samples: list[Sample] = []

    def offer(self, index: int, stamp_ns: int, image: np.ndarray, prediction: np.ndarray,
              ground_truth: np.ndarray | None) -> None:
        if index in self.wanted:
            self.samples.append(Sample(stamp_ns, shrink(image), shrink(prediction),
                                       None if ground_truth is None else shrink(ground_truth)))


def bag_description(bag: BagReader, image_topic: str, label_topic: str | None) -> dict[str, Any]:
    return {"path": str(bag.path), "image_topic": image_topic, "label_topic": label_topic,
            "topics": {t.name: {"type": t.msgtype, "count": t.count} for t in bag.topics.values()}}


def model_description(segmenter: Any, config: Any) -> dict[str, Any]:
    return {"variant": segmenter.variant, "checkpoint": str(config.checkpoint) if config.checkpoint else None,
            "checkpoint_sha256": segmenter.checkpoint_sha256, "backend": config.backend,
            "device": str(segmenter.device),
            "network_input_size": list(segmenter.input_size) if segmenter.input_size else None}


def evaluate_bag(bag_path: str | Path, image_topic: str, label_topic: str | None, segmenter: Any,
                 model: dict[str, Any], max_frames: int | None = None, output_bag: str | Path | None = None,
                 storage: str = "sqlite3", progress: bool = False,
                 label_space: CoarseLabelSpace | None = None) -> EvaluationReport:
    """Segment every camera frame of the bag (up to ``max_frames``) and score against its labels."""
    with BagReader(bag_path) as bag:
        total = bag.require_topic(image_topic).count
        if label_topic:
            bag.require_topic(label_topic, ("sensor_msgs/msg/Image",))
        if max_frames is not None:
            total = min(total, max_frames)
        pairs = ((frame, None if gt is None else gt.pixels) for frame, gt in bag.labelled_images(image_topic, label_topic)) \
            if label_topic else ((frame, None) for frame in bag.images(image_topic))
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
                     progress: bool = False) -> EvaluationReport:
    """Segment every frame of a labelled dataset (e.g. a CamVid split) and score it in its label space."""
    from .data.camvid import label_space_of

    total = len(dataset) if max_frames is None else min(len(dataset), max_frames)
    frames = getattr(dataset, "frames", None)

    def pairs() -> Iterator[tuple[StampedImage, np.ndarray]]:
        for index in range(total):
            image, labels = dataset[index]
            name = frames[index].name if frames else str(index)
            yield StampedImage(stamp_ns=index, frame_id=name, pixels=image, log_time_ns=index), labels

    run = score_frames(pairs(), total, segmenter, ScoringSpace(segmenter.class_map, label_space_of(dataset)),
                       progress=progress)
    description = {"dataset": getattr(dataset, "describe", lambda: {"count": len(dataset)})()}
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
                 space: ScoringSpace, writer: BagWriter | None = None, progress: bool = False) -> ScoredRun:
    """Segment up to ``total`` frames, scoring those with ground truth in ``space``."""
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
        run.keeper.offer(index, frame.stamp_ns, frame.pixels, prediction, gt)
        if writer is not None:
            _write_outputs(writer, frame, result)
    run.wall_s = time.perf_counter() - started
    return run


def _write_outputs(writer: BagWriter, frame: StampedImage, result: Any) -> None:
    """labels (mono8), color and overlay (rgb8), each with the camera frame's stamp and frame id."""
    for key, encoding in (("labels", "mono8"), ("color", "rgb8"), ("overlay", "rgb8")):
        writer.write_image(OUTPUT_TOPICS[key], getattr(result, key), frame.stamp_ns, frame.frame_id,
                           encoding=encoding, log_time_ns=frame.log_time_ns)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--checkpoint/--variant/--backend/--device, shared with evaluate-live's node."""
    parser.add_argument("--checkpoint", default=None,
                        help="checkpoint file (default: the shipped synthetic-scene model; '' = random init)")
    parser.add_argument("--variant", default="ddrnet23_slim", help="ddrnet23_slim | ddrnet23 | ddrnet39")
    parser.add_argument("--backend", default="torch", help="inference backend (torch, onnxruntime, ...)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")


def label_space_argument(text: str) -> CoarseLabelSpace | None:
    """argparse type for ``--label-space``: ``model`` (the model's own classes) or a coarse space."""
    if text == "model":
        return None
    if text not in LABEL_SPACES:
        raise argparse.ArgumentTypeError(f"unknown label space {text!r}; known: model, {', '.join(LABEL_SPACES)}")
    return LABEL_SPACES[text]


#: --dataset NAME -> (reader class path, splits); a registry so another labelled set is one entry.
DATASETS = {"camvid": ("ddrnet_ros.data.camvid", "CamVidDataset")}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, nargs="?", help="rosbag2 directory (or .db3 / .mcap file)")
    parser.add_argument("--dataset", nargs=2, metavar=("NAME", "ROOT"), default=None,
                        help=f"score a labelled dataset directory instead of a bag ({', '.join(DATASETS)}), "
                             "e.g. --dataset camvid ~/CamVid --split test")
    parser.add_argument("--split", default="test", help="dataset split (default test)")
    parser.add_argument("--image-topic", default="/camera/image_raw", help="camera topic (Image or CompressedImage)")
    parser.add_argument("--label-topic", default=None, help="ground-truth topic (mono8 train ids); omit: latency only")
    parser.add_argument("--label-space", type=label_space_argument, default=None, metavar="SPACE",
                        help=f"what the bag's label ids are: model (default: the model's classes) or "
                             f"{', '.join(LABEL_SPACES)} (e.g. a bag from make-bag --from-camvid)")
    add_model_arguments(parser)
    parser.add_argument("--input-size", type=size_argument, default=None, metavar="HxW",
                        help="network input size (default: the checkpoint's network_input_size, else the image's)")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after this many camera frames")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR,
                        help=f"where report.json, report.md and the pictures go (default {DEFAULT_OUTPUT_DIR})")
    parser.add_argument("--output-bag", type=Path, default=None,
                        help="also write /segmentation/labels, color and overlay to this new bag")
    parser.add_argument("--output-storage", choices=("sqlite3", "mcap"), default="sqlite3")


def load_segmenter(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    from .engine import Segmenter, SegmenterConfig

    config = SegmenterConfig(variant=args.variant, checkpoint=args.checkpoint, backend=args.backend,
                             device=args.device, input_size=args.input_size)
    segmenter = Segmenter(config)
    return segmenter, model_description(segmenter, config)


def fail(command: str, message: object) -> int:
    print(f"ddrnet-ros {command}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return 1


def open_dataset(name: str, root: str, split: str) -> Any:
    """The named dataset reader on ``root``/``split`` (layout errors raise DatasetLayoutError)."""
    import importlib

    if name not in DATASETS:
        raise DatasetLayoutError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    module, cls = DATASETS[name]
    return getattr(importlib.import_module(module), cls)(root, split)


def main_dataset(args: argparse.Namespace) -> int:
    try:
        dataset = open_dataset(args.dataset[0], args.dataset[1], args.split)
    except DatasetLayoutError as exc:
        return fail("evaluate", exc)
    try:
        segmenter, model = load_segmenter(args)
    except (OSError, ValueError, RuntimeError) as exc:
        return fail("evaluate", exc)
    try:
        report = evaluate_dataset(dataset, segmenter, model, args.max_frames, progress=True)
    except DatasetLayoutError as exc:
        return fail("evaluate", exc)
    return _finish(report, args)


def _finish(report: EvaluationReport, args: argparse.Namespace) -> int:
    path = write_report(report, args.output_dir)
    print(report.headline())
    print(f"report: {path} ({path.with_name('report.md')})")
    if getattr(args, "output_bag", None):
        print(f"output bag: {args.output_bag}")
    return 0


def main(args: argparse.Namespace) -> int:
    if args.max_frames is not None and args.max_frames < 1:
        return fail("evaluate", f"--max-frames must be at least 1, got {args.max_frames}")
    if (args.bag is None) == (args.dataset is None):
        return fail("evaluate", "give either a bag or --dataset NAME ROOT (not both)")
    if args.dataset is not None:
        if args.output_bag is not None:
            return fail("evaluate", "--output-bag is for bags; with --dataset, write a bag first with make-bag")
        return main_dataset(args)
    if args.output_bag is not None and args.output_bag.exists():
        return fail("evaluate", f"--output-bag {args.output_bag} already exists; choose another path")
    try:
        with BagReader(args.bag) as bag:  # check the topics before the model loads
            bag.require_topic(args.image_topic)
            if args.label_topic:
                bag.require_topic(args.label_topic, ("sensor_msgs/msg/Image",))
    except BagError as exc:
        return fail("evaluate", exc)
    try:
        segmenter, model = load_segmenter(args)
    except (OSError, ValueError, RuntimeError) as exc:  # CheckpointError, ClassMapError, bad backend ...
        return fail("evaluate", exc)
    try:
        report = evaluate_bag(args.bag, args.image_topic, args.label_topic, segmenter, model, args.max_frames,
                              args.output_bag, args.output_storage, progress=True, label_space=args.label_space)
    except BagError as exc:
        return fail("evaluate", exc)
    return _finish(report, args)
