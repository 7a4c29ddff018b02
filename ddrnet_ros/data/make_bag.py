"""``ddrnet-ros make-bag``: a synthetic drive with exact ground truth, as a rosbag2.

Camera frames go to one topic (``sensor_msgs/Image`` rgb8, or ``CompressedImage`` jpeg) and
the label images (mono8 train ids, 255 = ignore) to another, with identical header stamps and
frame ids, so that ``ddrnet-ros evaluate`` and ``evaluate-live`` can pair them. The seed
defaults to the held-out range, which training never sees.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from .bags import STORAGES, BagError, BagWriter
from .synthetic import HELDOUT_SEED_START, SyntheticFrame, generate_scene, generate_sequence

DEFAULT_IMAGE_TOPIC = "/camera/image_raw"
DEFAULT_LABEL_TOPIC = "/camera/labels"
DEFAULT_FRAME_ID = "camera"
#: First header stamp: a fixed time, so the same arguments give the same bag.
DEFAULT_START_NS = 1_700_000_000 * 1_000_000_000


def write_synthetic_bag(path: str | Path, frames: int, height: int = 512, width: int = 1024,
                        seed: int = HELDOUT_SEED_START, storage: str = "sqlite3", rate_hz: float = 10.0,
                        compressed: bool = False, image_topic: str = DEFAULT_IMAGE_TOPIC,
                        label_topic: str = DEFAULT_LABEL_TOPIC, frame_id: str = DEFAULT_FRAME_ID,
                        start_ns: int = DEFAULT_START_NS, progress: bool = False, scenes: bool = False) -> Path:
    """Render ``frames`` frames of one synthetic drive and write them (and their labels) as a bag.

    ``scenes``: each frame is an independent scene instead (seeds ``seed .. seed + frames - 1``),
    a held-out set whose class mix does not hang on one drive's street.
    """
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    if rate_hz <= 0:
        raise ValueError(f"rate must be positive, got {rate_hz}")
    period_ns = round(1e9 / rate_hz)
    sequence: Iterator[SyntheticFrame] = (
        (generate_scene(seed + i, height, width) for i in range(frames)) if scenes
        else generate_sequence(seed, frames, height, width))
    with BagWriter(path, storage) as writer:
        for i, frame in enumerate(tqdm(sequence, total=frames, desc="make-bag", unit="frame", disable=None if progress else True)):
            stamp = start_ns + i * period_ns
            if compressed:
                writer.write_compressed(image_topic, frame.image, stamp, frame_id, format="jpeg", quality=90)
            else:
                writer.write_image(image_topic, frame.image, stamp, frame_id, encoding="rgb8")
            writer.write_image(label_topic, frame.labels, stamp, frame_id, encoding="mono8")
    return Path(path)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", type=Path, help="bag directory to create (must not exist)")
    parser.add_argument("--frames", type=int, default=60, help="number of camera frames (default 60)")
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=HELDOUT_SEED_START,
                        help=f"drive seed (default {HELDOUT_SEED_START}, the held-out range training never uses)")
    parser.add_argument("--scenes", action="store_true",
                        help="independent scenes (seeds SEED .. SEED+FRAMES-1) instead of one drive")
    parser.add_argument("--storage", choices=sorted(STORAGES), default="sqlite3")
    parser.add_argument("--rate", type=float, default=10.0, help="camera rate in Hz: spacing of the stamps")
    parser.add_argument("--compressed", action="store_true",
                        help="camera frames as sensor_msgs/CompressedImage (jpeg) instead of rgb8 Image")
    parser.add_argument("--image-topic", default=DEFAULT_IMAGE_TOPIC)
    parser.add_argument("--label-topic", default=DEFAULT_LABEL_TOPIC)
    parser.add_argument("--frame-id", default=DEFAULT_FRAME_ID)


def main(args: argparse.Namespace) -> int:
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
