"""``ddrnet-ros make-bag``: a synthetic drive with exact ground truth, or a real labelled split
(``--from-camvid ROOT --split test``: CamVid's sequences in driving order), as a rosbag2.

Camera frames go to one topic (``sensor_msgs/Image`` rgb8, or ``CompressedImage`` jpeg) and
the label images (mono8 train ids, 255 = ignore) to another, with identical header stamps and
frame ids, so that ``ddrnet-ros evaluate`` and ``evaluate-live`` can pair them. The seed
defaults to the held-out range, which training never sees. CamVid labels stay in CamVid's ids
(255 = unlabelled): score them with ``--label-space camvid``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

from .bags import BagWriter, Storage
from .camvid import CamVidDataset, stamp_ns
from .synthetic import HELDOUT_SEED_START, SyntheticFrame, generate_scene, generate_sequence

DEFAULT_IMAGE_TOPIC = "/camera/image_raw"
DEFAULT_LABEL_TOPIC = "/camera/labels"
DEFAULT_FRAME_ID = "camera"
#: First header stamp: a fixed time, so the same arguments give the same bag.
DEFAULT_START_NS = 1_700_000_000 * 1_000_000_000


def write_synthetic_bag(path: str | Path, frames: int, height: int = 512, width: int = 1024,
                        seed: int = HELDOUT_SEED_START, storage: Storage = "sqlite3", rate_hz: float = 10.0,
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
        progress_bar = tqdm(sequence, total=frames, desc="make-bag", unit="frame", disable=None if progress else True)
        for i, frame in enumerate(progress_bar):
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


def write_camvid_bag(path: str | Path, root: str | Path, split: str = "test", storage: Storage = "sqlite3",
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
