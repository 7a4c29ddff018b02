"""``ddrnet-ros evaluate-live``: play a bag into the running node (or one started for the run) and
score the labels it publishes over DDS."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from ..classes import ClassMap
from ..data.bags import COMPRESSED_IMAGE, BagError, BagReader
from ..engine.loading import checkpoint_path
from ..evaluation.report import write_report
from ..ros.live_eval import (
    DEFAULT_LABELS_TOPIC,
    DEFAULT_OUTPUT_DIR,
    LiveEvalError,
    NodeProcess,
    evaluate_live,
    node_params,
)
from .common import add_label_space_argument, add_model_arguments, fail


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="rosbag2 directory (or .db3 / .mcap file)")
    parser.add_argument("--image-topic", default="/camera/image_raw", help="camera topic played into the node")
    parser.add_argument("--label-topic", default=None, help="ground-truth topic in the bag (mono8 train ids)")
    add_label_space_argument(parser)
    parser.add_argument("--labels-topic", default=DEFAULT_LABELS_TOPIC, help="where the node publishes labels")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    parser.add_argument("--start-node", action="store_true",
                        help="start `ddrnet-ros run` for this evaluation (else: score a node already running)")
    add_model_arguments(parser)
    parser.add_argument("--class-config", default="", help="class names/colours YAML (default: Cityscapes 19)")
    parser.add_argument("--node-wait", type=float, default=180.0, metavar="S",
                        help="seconds to wait for the node to come up and subscribe")
    parser.add_argument("--drain", type=float, default=5.0, metavar="S",
                        help="after the last frame, wait this long without new labels before stopping")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR)


def main(args: argparse.Namespace) -> int:
    if args.rate <= 0:
        return fail("evaluate-live", f"--rate must be positive, got {args.rate}")
    try:
        class_map = ClassMap.load(args.class_config or None)
        with BagReader(args.bag) as bag:
            compressed = bag.require_topic(args.image_topic).msgtype == COMPRESSED_IMAGE
            if args.label_topic:
                bag.require_topic(args.label_topic, ("sensor_msgs/msg/Image",))
    except (BagError, ValueError) as exc:
        return fail("evaluate-live", exc)
    node = None
    try:
        if args.start_node:
            path = checkpoint_path(args.checkpoint)
            checkpoint = str(path) if path is not None else args.checkpoint
            params = node_params(args.image_topic, compressed, checkpoint, args.variant, args.device, args.backend)
            node = NodeProcess(params, Path(tempfile.mkdtemp(prefix="ddrnet-live-")) / "node.log",
                               checkpoint=checkpoint,
                               model={"backend": args.backend, "device": args.device})
        report = evaluate_live(args.bag, args.image_topic, args.label_topic, args.labels_topic, args.rate,
                               class_map, args.node_wait, args.drain, node, label_space=args.label_space)
    except (BagError, LiveEvalError) as exc:
        return fail("evaluate-live", exc)
    finally:
        if node is not None:
            node.stop()
    path = write_report(report, args.output_dir)
    print(report.headline())
    print(f"report: {path} ({path.with_name('report.md')})")
    return 0
