"""Training data: sources built from the run's settings, augmented and mixed, in resumable batches."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator, Sized
from typing import cast

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..classes import TrainingLabelSets
from ..data.datasets import AugmentedPairs
from ..data.sources import SOURCES, EncodedLabels, MixedSources
from ..data.transforms import CameraAugmentation, TrainAugmentation
from .config import TrainConfig
from .errors import TrainingError

LOG = logging.getLogger("ddrnet_ros.train")

#: The camera-augmentation strengths, each with a flag ``--aug-<name>`` (0 turns it off).
CAMERA_EFFECTS = ("brightness", "contrast", "saturation", "hue", "gamma", "blur", "noise", "jpeg")


class EpochBatches(Sampler):
    """Batches of ``(epoch, index)`` keys: a fresh permutation per epoch seeded by
    (seed, epoch), incomplete batches dropped, starting at any iteration (for resume)."""

    def __init__(self, num_samples: int, batch_size: int, seed: int, start_iteration: int,
                 total_iterations: int) -> None:
        if num_samples < batch_size:
            raise TrainingError(f"{num_samples} training samples are fewer than one batch of {batch_size}")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.seed = seed
        self.start = start_iteration
        self.total = total_iterations

    @property
    def batches_per_epoch(self) -> int:
        return self.num_samples // self.batch_size

    def __len__(self) -> int:
        return max(0, self.total - self.start)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for iteration in range(self.start, self.total):
            epoch, position = divmod(iteration, self.batches_per_epoch)
            order = np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)
            chunk = order[position * self.batch_size:(position + 1) * self.batch_size]
            yield [(epoch, int(i)) for i in chunk]


def worker_init(_: int) -> None:
    # The worker only decodes/renders/augments: one thread each, leave the rest to training.
    # Ctrl-C reaches the whole process group; the main process alone decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    import cv2

    cv2.setNumThreads(1)


def build_sources(args: TrainConfig) -> tuple[list[tuple[str, float, Dataset]], Dataset, dict]:
    """([(name, weight, training source)], validation source, description for the sidecar)."""
    parts = [(name, weight, SOURCES[name].build(args, True)) for name, weight in args.data]
    val_name = args.val_data or ("camvid" if any(n == "camvid" for n, _ in args.data) else args.data[0][0])
    val = SOURCES[val_name].build(args, False)
    # torch's Dataset type leaves __len__ out; every source and Subset of one here defines it
    if args.max_val_frames is not None and args.max_val_frames < len(cast(Sized, val)):
        val = torch.utils.data.Subset(val, range(args.max_val_frames))
    train = ([{**_describe(dataset), "weight": weight} for _, weight, dataset in parts] if len(parts) > 1
             else _describe(parts[0][2]))
    return parts, val, {"train": train, "val": _describe(val)}


def camera_augmentation(args: TrainConfig, source: str) -> CameraAugmentation:
    """The flags' camera augmentation where ``--camera-aug`` asks for it on this source, else none."""
    wanted = args.camera_aug == "all" or (args.camera_aug == "real" and SOURCES[source].real)
    if not wanted:
        return CameraAugmentation.off()
    return CameraAugmentation(p=args.aug_p, **{effect: getattr(args, f"aug_{effect}") for effect in CAMERA_EFFECTS})


def network_input_size(args: TrainConfig) -> tuple[int, int]:
    """The size the trained network will run at: ``--val-input-size``, else ``--height x --width``."""
    return args.val_input_size or (args.height, args.width)


def training_set(args: TrainConfig, parts: list[tuple[str, float, Dataset]], label_sets: TrainingLabelSets,
                 ignore_label: int) -> AugmentedPairs | MixedSources:
    """Each source augmented its own way and re-coded to training ids, mixed by weight."""
    augmented = []
    for name, weight, source in parts:
        low, high = (getattr(args, flag) for flag in SOURCES[name].scale_flags)
        augmentation = TrainAugmentation(crop=args.crop, scale_range=(low, high), flip=not args.no_flip,
                                         ignore_label=ignore_label, camera=camera_augmentation(args, name),
                                         letterbox=network_input_size(args), letterbox_p=args.letterbox_p)
        augmented.append((name, weight, AugmentedPairs(EncodedLabels(source, label_sets), augmentation,
                                                       seed=args.seed)))
    if len(augmented) == 1:
        return augmented[0][2]
    mixed = MixedSources(augmented)
    LOG.info("mixing sources per epoch of %d samples: %s", len(mixed),
             ", ".join(f"{name} {share:.0%}" for name, share in mixed.shares().items()))
    return mixed


def _describe(dataset: Dataset) -> dict:
    if isinstance(dataset, torch.utils.data.Subset):
        inner = _describe(dataset.dataset)
        return {**inner, "count": len(dataset)}
    describe = getattr(dataset, "describe", None)
    return describe() if describe else {"count": len(cast(Sized, dataset))}  # sized, as above
