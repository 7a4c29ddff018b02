"""``ddrnet-ros evaluate``: score a model on a rosbag or a labelled dataset directory.

Bad input ends the run with one line on stderr, a non-zero exit and no report.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..data.bags import BagError, BagReader
from ..data.datasets import DatasetLayoutError
from ..engine import Segmenter, SegmenterConfig
from ..evaluation.offline import DATASETS, evaluate_bag, evaluate_dataset, model_description, open_dataset
from ..evaluation.perturb import PERTURBATIONS
from ..evaluation.report import EvaluationReport, write_report
from .common import add_label_space_argument, add_model_arguments, fail, size_argument

DEFAULT_OUTPUT_DIR = Path("out/evaluate")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, nargs="?", help="rosbag2 directory (or .db3 / .mcap file)")
    parser.add_argument("--dataset", nargs=2, metavar=("NAME", "ROOT"), default=None,
                        help=f"score a labelled dataset directory instead of a bag ({', '.join(DATASETS)}), "
                             "e.g. --dataset camvid ~/CamVid --split test")
    parser.add_argument("--split", default="test", help="dataset split (default test)")
    parser.add_argument("--perturb", choices=sorted(PERTURBATIONS), default=None,
                        help="with --dataset: make every frame harder the same way first (robustness): "
                             + "; ".join(f"{name}: {what}" for name, (what, _) in PERTURBATIONS.items()))
    parser.add_argument("--image-topic", default="/camera/image_raw", help="camera topic (Image or CompressedImage)")
    parser.add_argument("--label-topic", default=None, help="ground-truth topic (mono8 train ids); omit: latency only")
    add_label_space_argument(parser)
    add_model_arguments(parser)
    parser.add_argument("--input-size", type=size_argument, default=None, metavar="HxW",
                        help="network input size (default: the checkpoint's network_input_size, else the image's)")
    parser.add_argument("--pad-to-input-size", action="store_true",
                        help="run an image of another aspect in a frame of exactly the input size, padded at the "
                             "bottom/right (the node's pad_to_input_size), instead of a frame trimmed to it")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after this many camera frames")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR,
                        help=f"where report.json, report.md and the pictures go (default {DEFAULT_OUTPUT_DIR})")
    parser.add_argument("--output-bag", type=Path, default=None,
                        help="also write /segmentation/labels, color and overlay to this new bag")
    parser.add_argument("--output-storage", choices=("sqlite3", "mcap"), default="sqlite3")


def load_segmenter(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    config = SegmenterConfig(variant=args.variant, checkpoint=args.checkpoint, backend=args.backend,
                             device=args.device, input_size=args.input_size,
                             pad_to_input_size=args.pad_to_input_size)
    segmenter = Segmenter(config)
    return segmenter, model_description(segmenter, config)


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
        report = evaluate_dataset(dataset, segmenter, model, args.max_frames, progress=True,
                                  perturbation=args.perturb)
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
    if args.perturb is not None and args.dataset is None:
        return fail("evaluate", "--perturb is for --dataset (a bag is scored as recorded)")
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
