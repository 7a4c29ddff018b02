"""``ddrnet-ros make-bag``: a synthetic drive or a CamVid split, with ground truth, as a rosbag2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..data.bags import STORAGES, BagError
from ..data.datasets import DatasetLayoutError
from ..data.make_bag import (
    DEFAULT_FRAME_ID,
    DEFAULT_IMAGE_TOPIC,
    DEFAULT_LABEL_TOPIC,
    write_camvid_bag,
    write_synthetic_bag,
)
from ..data.synthetic import HELDOUT_SEED_START


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", type=Path, help="bag directory to create (must not exist)")
    parser.add_argument("--frames", type=int, default=60, help="number of camera frames (default 60)")
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=HELDOUT_SEED_START,
                        help=f"drive seed (default {HELDOUT_SEED_START}, the held-out range training never uses)")
    parser.add_argument("--from-camvid", type=Path, default=None, metavar="ROOT",
                        help="write a CamVid split (SegNet layout) instead of synthetic frames; labels in CamVid ids")
    parser.add_argument("--split", default="test", help="--from-camvid: split to write (default test)")
    parser.add_argument("--scenes", action="store_true",
                        help="independent scenes (seeds SEED .. SEED+FRAMES-1) instead of one drive")
    parser.add_argument("--storage", choices=sorted(STORAGES), default="sqlite3")
    parser.add_argument("--rate", type=float, default=None,
                        help="camera rate in Hz: spacing of the stamps (default 10; --from-camvid: the frames' own "
                             "video times)")
    parser.add_argument("--compressed", action="store_true",
                        help="camera frames as sensor_msgs/CompressedImage (jpeg) instead of rgb8 Image")
    parser.add_argument("--image-topic", default=DEFAULT_IMAGE_TOPIC)
    parser.add_argument("--label-topic", default=DEFAULT_LABEL_TOPIC)
    parser.add_argument("--frame-id", default=DEFAULT_FRAME_ID)


def main_camvid(args: argparse.Namespace) -> int:
    try:
        count = write_camvid_bag(args.output, args.from_camvid, args.split, args.storage, args.rate, args.compressed,
                                 args.image_topic, args.label_topic, args.frame_id, progress=True)
    except (BagError, DatasetLayoutError, ValueError) as exc:
        print(f"ddrnet-ros make-bag: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.output} ({args.storage}): {count} CamVid {args.split} frames in driving order, "
          f"{args.image_topic} + {args.label_topic} (mono8 CamVid ids); score with: ddrnet-ros evaluate "
          f"{args.output} --label-topic {args.label_topic} --label-space camvid")
    return 0


def main(args: argparse.Namespace) -> int:
    if args.rate is not None and args.rate <= 0:
        print(f"ddrnet-ros make-bag: error: --rate must be positive, got {args.rate}", file=sys.stderr)
        return 1
    if args.from_camvid is not None:
        return main_camvid(args)
    args.rate = 10.0 if args.rate is None else args.rate
    try:
        path = write_synthetic_bag(args.output, args.frames, args.height, args.width, args.seed, args.storage,
                                   args.rate, args.compressed, args.image_topic, args.label_topic, args.frame_id,
                                   progress=True, scenes=args.scenes)
    except (BagError, ValueError) as exc:
        print(f"ddrnet-ros make-bag: error: {exc}", file=sys.stderr)
        return 1
    kind = "CompressedImage jpeg" if args.compressed else "Image rgb8"
    print(f"wrote {path} ({args.storage}): {args.frames} frames {args.width}x{args.height} at {args.rate:g} Hz, "
          f"{args.image_topic} ({kind}) + {args.label_topic} (mono8 labels), "
          + (f"scenes with seeds {args.seed}-{args.seed + args.frames - 1}" if args.scenes else f"seed {args.seed}"))
    return 0
