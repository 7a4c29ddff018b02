"""What a training run is told to do, as one typed value.

``ddrnet-ros train``'s parser (:mod:`ddrnet_ros.commands.train`) holds the defaults and the help
a user sees; :meth:`TrainConfig.from_args` turns its result into this frozen dataclass, so the
loop, the data and the checkpoint writers read typed fields instead of an open namespace.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields

from ..data.sources import flatten_data


@dataclass(frozen=True)
class TrainConfig:
    # model
    variant: str
    classes: str | None
    init: str | None
    # data
    data: list[tuple[str, float]]
    val_data: str | None
    height: int
    width: int
    train_seeds: int
    val_seeds: int
    cache_dir: str | None
    cityscapes_root: str | None
    train_split: str
    val_split: str
    camvid_root: str | None
    bag: str | None
    val_bag: str | None
    image_topic: str
    label_topic: str
    max_val_frames: int | None
    val_input_size: tuple[int, int] | None
    # augmentation
    crop: tuple[int, int]
    scale_min: float
    scale_max: float
    camvid_scale_min: float
    camvid_scale_max: float
    no_flip: bool
    letterbox_p: float
    camera_aug: str
    aug_p: float
    aug_brightness: float
    aug_contrast: float
    aug_saturation: float
    aug_hue: float
    aug_gamma: float
    aug_blur: float
    aug_noise: float
    aug_jpeg: int
    # optimisation
    batch_size: int
    epochs: int | None
    iterations: int | None
    lr: float
    momentum: float
    weight_decay: float
    poly_power: float
    aux_weight: float
    ohem_threshold: float
    min_kept: int
    #: (model class name, loss weight) pairs; classes not named weigh 1
    class_weight: tuple[tuple[str, float], ...]
    weight_average: float
    # run
    output: str
    resume: bool
    seed: int
    threads: int | None
    workers: int
    val_every: int | None
    time_budget: float | None
    anneal_to_budget: bool
    log_every: int
    device: str
    precision: str
    channels_last: bool
    #: the command line as given, for the checkpoint sidecar
    argv: tuple[str, ...] = ()

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TrainConfig:
        """The parsed ``ddrnet-ros train`` arguments; repeated or ``+``-joined ``--data`` flattened."""
        values = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
        values["data"] = flatten_data(args.data)
        values["argv"] = tuple(getattr(args, "argv", ()))
        values["crop"] = (int(args.crop[0]), int(args.crop[1]))
        values["class_weight"] = tuple((str(n), float(w)) for n, w in (getattr(args, "class_weight", None) or ()))
        return cls(**values)
