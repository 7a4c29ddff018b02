"""``ddrnet-ros make-bag``: a synthetic drive with exact ground truth, or a real labelled split
(``--from-camvid ROOT --split test``: CamVid's sequences in driving order), as a rosbag2.

Camera frames go to one topic (``sensor_msgs/Image`` rgb8, or ``CompressedImage`` jpeg) and
the label images (mono8 train ids, 255 = ignore) to another, with identical header stamps and
frame ids, so that ``ddrnet-ros evaluate`` and ``evaluate-live`` can pair them. The seed
defaults to the held-out range, which training never sees. CamVid labels stay in CamVid's ids
(255 = unlabelled): score them with ``--label-space camvid``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from .bags import STORAGES, BagError, BagWriter
from .camvid import CamVidDataset, stamp_ns
from .datasets import DatasetLayoutError
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


#: Gap between two CamVid sequences in a bag written with video timing.
SEQUENCE_GAP_NS = 1_000_000_000


def camvid_stamps(dataset: CamVidDataset, rate_hz: float | None, start_ns: int = DEFAULT_START_NS) -> list[int]:
    """Header stamps for the frames of ``dataset`` (in driving order).

    ``rate_hz`` None: the frames' own video times (frame number / 30 fps), sequences one after
    another with :data:`SEQUENCE_GAP_NS` between them; else evenly spaced at ``rate_hz``.
    """
    if rate_hz is not None:
        period = round(1e9 / rate_hz)
        return [start_ns + i * period for i in range(len(dataset))]
    stamps, offset, previous = [], start_ns, None
    for frame in dataset.frames:
        if previous is not None and frame.sequence != previous.sequence:
            offset = stamps[-1] + SEQUENCE_GAP_NS - stamp_ns(frame)
        elif previous is None:
            offset = start_ns - stamp_ns(frame)
        stamps.append(offset + stamp_ns(frame))
        previous = frame
    return stamps


def write_camvid_bag(path: str | Path, root: str | Path, split: str = "test", storage: str = "sqlite3",
                     rate_hz: float | None = None, compressed: bool = False, image_topic: str = DEFAULT_IMAGE_TOPIC,
                     label_topic: str = DEFAULT_LABEL_TOPIC, frame_id: str = DEFAULT_FRAME_ID,
                     max_frames: int | None = None, progress: bool = False) -> int:
    """Write a CamVid split's frames (sequence by sequence, in order) with their labels; returns the count."""
    dataset = CamVidDataset(root, split)
    if max_frames is not None:
        dataset.frames = dataset.frames[:max_frames]
    stamps = camvid_stamps(dataset, rate_hz)
    with BagWriter(path, storage) as writer:
        for index in tqdm(range(len(dataset)), desc="make-bag", unit="frame", disable=None if progress else True):
            image, labels = dataset[index]
            if compressed:
                writer.write_compressed(image_topic, image, stamps[index], frame_id, format="jpeg", quality=90)
            else:
                writer.write_image(image_topic, image, stamps[index], frame_id, encoding="rgb8")
            writer.write_image(label_topic, labels, stamps[index], frame_id, encoding="mono8")
    return len(dataset)


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
