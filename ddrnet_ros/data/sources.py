"""Training data sources by name, and mixing several of them in one run.

A source names how to build its training and validation datasets from the command line,
whether its frames come from a real camera (real sources get camera augmentation by
default) and the scale range its frames are trained at. ``--data camvid:3+synthetic:1``
(or ``--data`` repeated) mixes sources with sampling weights through :class:`MixedSources`.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sized
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import Dataset

from ..classes import TrainingLabelSets
from .camvid import CamVidDataset, label_space_of
from .datasets import AugmentedPairs, BagDataset, CityscapesDataset, SyntheticScenes


class SourceError(ValueError):
    """A data source named on the command line cannot be built (one clear line)."""


#: Validation scenes start this far into the held-out seed range, so that the frames used to
#: pick the best checkpoint are not the first held-out frames an evaluation would score.
VALIDATION_SEED_OFFSET = 1_000_000


def _synthetic(settings: Any, train: bool) -> Dataset:
    from . import synthetic

    if train:
        start = synthetic.TRAIN_SEED_RANGE.start
        return SyntheticScenes(range(start, start + settings.train_seeds), settings.height, settings.width,
                               cache_dir=settings.cache_dir)
    start = int(synthetic.HELDOUT_SEED_START) + VALIDATION_SEED_OFFSET
    return SyntheticScenes(range(start, start + settings.val_seeds), settings.height, settings.width,
                           cache_dir=settings.cache_dir)


def _cityscapes(settings: Any, train: bool) -> Dataset:
    if not settings.cityscapes_root:
        raise SourceError("--data cityscapes needs --cityscapes-root")
    return CityscapesDataset(settings.cityscapes_root, settings.train_split if train else settings.val_split)


def _camvid(settings: Any, train: bool) -> Dataset:
    if not settings.camvid_root:
        raise SourceError("--data camvid needs --camvid-root DIR (SegNet's CamVid layout: train/, trainannot/, "
                          "val/, valannot/, test/, testannot/)")
    return CamVidDataset(settings.camvid_root, "train" if train else "val")


def _bag(settings: Any, train: bool) -> Dataset:
    if not settings.bag or not settings.val_bag:
        raise SourceError("--data bag needs --bag (training) and --val-bag (validation)")
    return BagDataset(settings.bag if train else settings.val_bag, settings.image_topic, settings.label_topic)


@dataclass(frozen=True)
class SourceSpec:
    """How to build one kind of data source, and how it trains by default."""

    build: Callable[[Any, bool], Dataset]   # (run settings: TrainConfig or alike, train?) -> dataset
    real: bool                                             # frames from a real camera
    scale_flags: tuple[str, str] = ("scale_min", "scale_max")


SOURCES: dict[str, SourceSpec] = {
    "synthetic": SourceSpec(_synthetic, real=False),
    "cityscapes": SourceSpec(_cityscapes, real=True),
    "camvid": SourceSpec(_camvid, real=True, scale_flags=("camvid_scale_min", "camvid_scale_max")),
    "bag": SourceSpec(_bag, real=False),
}


def data_argument(text: str) -> list[tuple[str, float]]:
    """argparse type for ``--data``: ``camvid``, ``synthetic+camvid``, ``camvid:3+synthetic:1``."""
    parts = []
    for item in text.split("+"):
        name, _, weight_text = item.strip().partition(":")
        if name not in SOURCES:
            raise argparse.ArgumentTypeError(f"unknown data source {name!r}; known: {', '.join(SOURCES)}")
        try:
            weight = float(weight_text) if weight_text else 1.0
        except ValueError:
            raise argparse.ArgumentTypeError(f"sampling weight of {name!r} must be a number, got {weight_text!r}")
        if not weight > 0:
            raise argparse.ArgumentTypeError(f"sampling weight of {name!r} must be > 0, got {weight_text}")
        parts.append((name, weight))
    return parts


def flatten_data(values: list[list[tuple[str, float]]] | None) -> list[tuple[str, float]]:
    """Repeated ``--data`` values as one list (default: synthetic); a source named twice is an error."""
    sources = [item for value in (values or [[("synthetic", 1.0)]]) for item in value]
    names = [name for name, _ in sources]
    if len(names) != len(set(names)):
        raise SourceError(f"--data names a source twice: {'+'.join(names)}")
    return sources


class MixedSources(Dataset):
    """Training samples drawn from several augmented sources in fixed proportions.

    One epoch has enough samples to pass once over the first source at its share; the other
    sources contribute ``share x epoch length`` samples each, walking on through their frames
    from epoch to epoch. Keys are ``(epoch, index)`` like :class:`AugmentedPairs`, so the
    choice of frame and its augmentation depend only on (seed, epoch, index).
    """

    def __init__(self, parts: list[tuple[str, float, AugmentedPairs]]) -> None:
        if not parts:
            raise SourceError("no training source")
        total_weight = sum(weight for _, weight, _ in parts)
        first_share = parts[0][1] / total_weight
        self.epoch_length = max(1, math.ceil(len(parts[0][2]) / first_share))
        self.parts = parts
        counts = [max(1, round(self.epoch_length * weight / total_weight)) for _, weight, _ in parts]
        self.bounds = np.cumsum([0, *counts])
        self.counts = counts

    def __len__(self) -> int:
        return int(self.bounds[-1])

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, index = int(key[0]), int(key[1])
        part = int(np.searchsorted(self.bounds, index, side="right")) - 1
        _, _, dataset = self.parts[part]
        position = (epoch * self.counts[part] + index - int(self.bounds[part])) % len(dataset)
        return dataset[(epoch, position)]

    def shares(self) -> dict[str, float]:
        """Each source's fraction of the samples of an epoch."""
        return {name: count / len(self) for (name, _, _), count in zip(self.parts, self.counts)}


class EncodedLabels(Dataset):
    """A source whose labels are in a coarse label space, re-coded to training ids."""

    def __init__(self, source: Dataset, label_sets: TrainingLabelSets) -> None:
        self.source = source
        space = label_space_of(source)
        self.lookup = None if space is None else label_sets.encoder(space)

    def __len__(self) -> int:
        # torch's Dataset type leaves __len__ out; every source this package builds defines it
        return len(cast(Sized, self.source))

    def __getitem__(self, index: int):
        image, labels = self.source[index]
        return image, labels if self.lookup is None else self.lookup[labels]

    def describe(self) -> dict:
        describe = getattr(self.source, "describe", None)
        return describe() if describe else {"count": len(cast(Sized, self.source))}
