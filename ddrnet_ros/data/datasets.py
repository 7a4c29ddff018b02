"""Labelled image sources for training and validation, as torch Datasets.

Each source yields raw ``(image, labels)`` pairs: HxWx3 uint8 RGB and HxW uint8 train ids
(255 = ignore). :class:`AugmentedPairs` and :class:`ValidationPairs` turn them into
tensors. Sources:

* :class:`SyntheticScenes` renders procedural scenes on the fly, deterministic per seed,
  optionally through a :class:`FrameCache` so later epochs read PNGs instead of rendering
  again (the generator competes with training for the CPU).
* :class:`CityscapesDataset` reads the Cityscapes layout (``leftImg8bit`` + ``gtFine``
  ``*_labelTrainIds.png``).
* :class:`BagDataset` reads a rosbag2 with an image topic and a label topic, paired by
  header stamp.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence, Sized
from pathlib import Path
from typing import cast

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from .transforms import labels_to_tensor, normalize, resize_to

Pair = tuple[np.ndarray, np.ndarray]


class DatasetLayoutError(ValueError):
    """A dataset directory or file does not have the expected layout."""


def read_rgb(path: str | Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetLayoutError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_labels(path: str | Path) -> np.ndarray:
    labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if labels is None:
        raise DatasetLayoutError(f"cannot read label image {path}")
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise DatasetLayoutError(f"{path}: labels must be a single-channel 8-bit PNG of train ids, "
                                 f"got shape {labels.shape} dtype {labels.dtype}")
    return labels


class FrameCache:
    """A directory of rendered (image, labels) PNG pairs, written atomically on first use."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.directory / f"{key}_image.png", self.directory / f"{key}_labels.png"

    def get(self, key: str) -> Pair | None:
        image_path, label_path = self._paths(key)
        if not (image_path.is_file() and label_path.is_file()):
            return None
        image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        labels = cv2.imread(str(label_path), cv2.IMREAD_UNCHANGED)
        if image is None or labels is None:  # a truncated file: render again
            return None
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), labels

    def put(self, key: str, image: np.ndarray, labels: np.ndarray) -> None:
        params = [cv2.IMWRITE_PNG_COMPRESSION, 1]
        for path, data in zip(self._paths(key), (cv2.cvtColor(image, cv2.COLOR_RGB2BGR), labels)):
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
            if not cv2.imwrite(str(tmp), data, params):
                raise OSError(f"cannot write cache file {tmp}")
            tmp.replace(path)


def _generator_fingerprint() -> str:
    """Short hash of the generator's source, so a changed generator never reads stale frames.

    The generator is a package: every one of its modules is hashed (name and bytes, in name
    order), since a change in any of them can change the scenes.
    """
    from . import synthetic  # imported here: the generator is optional for the other sources

    package_dir = Path(synthetic.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py"), key=lambda p: p.relative_to(package_dir).as_posix()):
        source = path.read_bytes()
        digest.update(f"{path.relative_to(package_dir).as_posix()}\0{len(source)}\0".encode())
        digest.update(source)
    return digest.hexdigest()[:10]


class SyntheticScenes(Dataset):
    """Procedural road scenes, one per seed, rendered at ``height`` x ``width``."""

    def __init__(self, seeds: Sequence[int], height: int, width: int, cache_dir: str | Path | None = None) -> None:
        from . import synthetic  # imported here: the generator is optional for the other sources

        self._generate = synthetic.generate_scene
        self.seeds = [int(s) for s in seeds]
        self.height, self.width = int(height), int(width)
        self.cache = None
        if cache_dir is not None:
            sub = f"synthetic_{self.height}x{self.width}_{_generator_fingerprint()}"
            self.cache = FrameCache(Path(cache_dir) / sub)

    def __len__(self) -> int:
        return len(self.seeds)

    def __getitem__(self, index: int) -> Pair:
        seed = self.seeds[index]
        if self.cache is not None:
            cached = self.cache.get(str(seed))
            if cached is not None:
                return cached
        frame = self._generate(seed, height=self.height, width=self.width)
        if self.cache is not None:
            self.cache.put(str(seed), frame.image, frame.labels)
        return frame.image, frame.labels

    def describe(self) -> dict:
        return {"source": "synthetic", "height": self.height, "width": self.width, "count": len(self.seeds),
                "first_seed": self.seeds[0] if self.seeds else None,
                "last_seed": self.seeds[-1] if self.seeds else None}


IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelTrainIds.png"


class CityscapesDataset(Dataset):
    """The Cityscapes layout: ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` with labels in
    ``gtFine/<split>/<city>/*_gtFine_labelTrainIds.png`` (made by cityscapesscripts'
    ``createTrainIdLabelImgs``)."""

    def __init__(self, root: str | Path, split: str = "train") -> None:
        self.root = Path(root)
        self.split = split
        image_dir = self.root / "leftImg8bit" / split
        label_dir = self.root / "gtFine" / split
        expected = (f"expected {self.root}/leftImg8bit/{split}/<city>/*{IMAGE_SUFFIX} and "
                    f"{self.root}/gtFine/{split}/<city>/*{LABEL_SUFFIX}")
        if not self.root.is_dir():
            raise DatasetLayoutError(f"Cityscapes root {self.root} is not a directory")
        if not image_dir.is_dir():
            raise DatasetLayoutError(f"{image_dir} not found: {expected}")
        if not label_dir.is_dir():
            raise DatasetLayoutError(f"{label_dir} not found: {expected}")
        images = sorted(image_dir.glob(f"*/*{IMAGE_SUFFIX}"))
        if not images:
            raise DatasetLayoutError(f"no *{IMAGE_SUFFIX} files in {image_dir}/<city>/: {expected}")
        self.pairs: list[tuple[Path, Path]] = []
        missing: list[str] = []
        for image in images:
            stem = image.name[: -len(IMAGE_SUFFIX)]
            label = label_dir / image.parent.name / f"{stem}{LABEL_SUFFIX}"
            if label.is_file():
                self.pairs.append((image, label))
            else:
                missing.append(str(label.relative_to(self.root)))
        if missing:
            hint = ("" if any(label_dir.glob("*/*_labelTrainIds.png"))
                    else " (no *_labelTrainIds.png at all: create them with cityscapesscripts' createTrainIdLabelImgs)")
            raise DatasetLayoutError(f"{len(missing)} of {len(images)} images have no label file{hint}, "
                                     f"e.g. {', '.join(missing[:3])}")

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Pair:
        image_path, label_path = self.pairs[index]
        image, labels = read_rgb(image_path), read_labels(label_path)
        if image.shape[:2] != labels.shape:
            raise DatasetLayoutError(f"{image_path} is {image.shape[:2]} but its labels are {labels.shape}")
        return image, labels

    def describe(self) -> dict:
        return {"source": "cityscapes", "root": str(self.root), "split": self.split, "count": len(self.pairs)}


class BagDataset(Dataset):
    """Labelled frames of a rosbag2: camera images paired with mono8 label images of the same
    header stamp. Frames without a label are skipped (and counted).

    A bag is read sequentially, so the pairs are read once here and kept in memory as PNG
    bytes (a fraction of the raw size), decoded on access.
    """

    def __init__(self, path: str | Path, image_topic: str, label_topic: str) -> None:
        from .bags import BagReader  # rosbags is only needed for this source

        self.path = Path(path)
        self.image_topic, self.label_topic = image_topic, label_topic
        self._frames: list[tuple[bytes, bytes]] = []
        self.stamps_ns: list[int] = []
        self.unlabelled = 0
        params = [cv2.IMWRITE_PNG_COMPRESSION, 1]
        with BagReader(self.path) as reader:
            for frame, label in reader.labelled_images(image_topic, label_topic):
                if label is None:
                    self.unlabelled += 1
                    continue
                ok_image, image_png = cv2.imencode(".png", cv2.cvtColor(frame.pixels, cv2.COLOR_RGB2BGR), params)
                ok_label, label_png = cv2.imencode(".png", np.ascontiguousarray(label.pixels), params)
                if not (ok_image and ok_label):
                    raise DatasetLayoutError(f"{self.path}: cannot re-encode frame at stamp {frame.stamp_ns} ns")
                self._frames.append((image_png.tobytes(), label_png.tobytes()))
                self.stamps_ns.append(frame.stamp_ns)
        if not self._frames:
            raise DatasetLayoutError(f"bag {self.path} has no {image_topic} frame with a label of the same stamp "
                                     f"on {label_topic} ({self.unlabelled} unlabelled frames)")

    def __len__(self) -> int:
        return len(self._frames)

    def __getitem__(self, index: int) -> Pair:
        image_png, label_png = self._frames[index]
        image = cv2.imdecode(np.frombuffer(image_png, np.uint8), cv2.IMREAD_COLOR)
        labels = cv2.imdecode(np.frombuffer(label_png, np.uint8), cv2.IMREAD_UNCHANGED)
        assert image is not None and labels is not None  # PNGs this dataset encoded itself
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), labels

    def describe(self) -> dict:
        return {"source": "bag", "path": str(self.path), "image_topic": self.image_topic,
                "label_topic": self.label_topic, "count": len(self._frames), "unlabelled_frames": self.unlabelled}


class AugmentedPairs(Dataset):
    """Training view of a source: indexed by ``(epoch, index)`` so each sample's random
    augmentation is seeded by (seed, epoch, index), whichever worker loads it."""

    def __init__(self, source: Dataset, augmentation: Callable[[np.ndarray, np.ndarray, np.random.Generator], Pair],
                 seed: int = 0) -> None:
        self.source = source
        self.augmentation = augmentation
        self.seed = int(seed)

    def __len__(self) -> int:
        # torch's Dataset type leaves __len__ out; every source this package builds defines it
        return len(cast(Sized, self.source))

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, index = key
        image, labels = self.source[index]
        rng = np.random.default_rng([self.seed, int(epoch), int(index)])
        image, labels = self.augmentation(image, labels, rng)
        return normalize(image), labels_to_tensor(labels)


class ValidationPairs(Dataset):
    """Validation view: the image resized to the model input size (if given), the labels kept
    at their own resolution so that scores are measured where the ground truth lives."""

    def __init__(self, source: Dataset, input_size: tuple[int, int] | None = None) -> None:
        self.source = source
        self.input_size = input_size

    def __len__(self) -> int:
        return len(cast(Sized, self.source))  # sized, as in AugmentedPairs

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, labels = self.source[index]
        if self.input_size is not None:
            image, _ = resize_to(image, labels, self.input_size)
        return normalize(image), labels_to_tensor(labels)
