"""`ddrnet-ros train`: train or fine-tune a DDRNet variant with the paper's recipe.

Recipe (DDRNet, arXiv 2101.06085, Cityscapes setting): SGD with momentum 0.9 and weight
decay 5e-4, poly learning-rate decay (power 0.9) from 0.01, OHEM cross-entropy on the main
head plus 0.4 x the auxiliary head, random scale 0.5-2.0, random crop and horizontal flip.

Output directory: ``best.pt`` and ``last.pt`` in the official key layout (auxiliary head
left out, so they load into the official inference model and into ``create_model``) with
JSON sidecars; ``resume.pt`` with everything needed to continue (model incl. auxiliary
head, optimizer, iteration, RNG state), readable with ``torch.load(weights_only=True)``;
``history.jsonl`` with one line per validation.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

# Before torch loads its OpenMP runtime: idle OpenMP threads sleep instead of spinning. On a
# small shared CPU, spinning threads burn the cores the busy ones need; measured here with
# 2 threads under load: 7.6-10 CPU-s per training step spinning vs 2.5-3.2 CPU-s passive.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from .classes import ClassMap, ClassMapError, CoarseLabelSpace, TrainingLabelSets
from .cli import size_argument
from .data.camvid import label_space_of
from .data.datasets import AugmentedPairs, DatasetLayoutError, ValidationPairs
from .data.sources import SOURCES, EncodedLabels, MixedSources, SourceError, data_argument, flatten_data
from .data.transforms import IMAGENET_MEAN, IMAGENET_STD, CameraAugmentation, TrainAugmentation
from .losses import DDRNetLoss, OhemCrossEntropy
from .metrics import ConfusionAccumulator, SegmentationScores
from .model import INPUT_MULTIPLE, VARIANTS, CheckpointError, create_model, save_checkpoint, upsample_logits
from .model.checkpoint import AUX_PREFIX, read_state_dict
from .resources import DEFAULT_VARIANT

LOG = logging.getLogger("ddrnet_ros.train")

#: The 1x1 convolutions that map features to class scores; the only layers re-initialised
#: when fine-tuning to a different number of classes.
CLASSIFIER_PREFIXES = ("final_layer.conv2.", AUX_PREFIX + "conv2.")
RESUME_FILE = "resume.pt"
#: The camera-augmentation strengths, each with a flag ``--aug-<name>`` (0 turns it off).
CAMERA_EFFECTS = ("brightness", "contrast", "saturation", "hue", "gamma", "blur", "noise", "jpeg")


class TrainingError(RuntimeError):
    """A user-facing problem with the training setup (one clear line)."""


# --------------------------------------------------------------------------------------------
# command line


#: --precision -> autocast dtype (None: plain fp32).
AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    model = parser.add_argument_group("model")
    model.add_argument("--variant", default=DEFAULT_VARIANT, choices=sorted(VARIANTS), help="DDRNet variant")
    model.add_argument("--classes", default=None, metavar="YAML",
                       help="class config (names, colours); default: the built-in Cityscapes 19 classes")
    model.add_argument("--init", default=None, metavar="CKPT",
                       help="fine-tune from this checkpoint (official or ours); a different class count "
                            "re-initialises only the classifier layers")

    data = parser.add_argument_group("data")
    data.add_argument("--data", type=data_argument, action="append", default=None, metavar="SOURCES",
                      help=f"training source(s) among {', '.join(SOURCES)}; mix with + and optional sampling "
                           "weights (camvid:3+synthetic:1) or repeat the flag; default synthetic")
    data.add_argument("--val-data", default=None, choices=sorted(SOURCES),
                      help="source to validate (and pick best.pt) on; default: camvid when trained on, else "
                           "the first --data source")
    data.add_argument("--height", type=int, default=512,
                      help="synthetic scene height; validation input height for every source")
    data.add_argument("--width", type=int, default=1024,
                      help="synthetic scene width; validation input width for every source")
    data.add_argument("--train-seeds", type=int, default=2000, help="synthetic: number of training scenes")
    data.add_argument("--val-seeds", type=int, default=50, help="synthetic: number of held-out validation scenes (seeds from HELDOUT_SEED_START + 1e6)")
    data.add_argument("--cache-dir", default=None,
                      help="synthetic: keep rendered scenes here as PNGs so later epochs do not render again")
    data.add_argument("--cityscapes-root", default=None, help="cityscapes: dataset root")
    data.add_argument("--train-split", default="train", help="cityscapes: training split")
    data.add_argument("--val-split", default="val", help="cityscapes: validation split")
    data.add_argument("--camvid-root", default=None, metavar="DIR",
                      help="camvid: SegNet's CamVid directory (train/, trainannot/, val/, valannot/, ...)")
    data.add_argument("--bag", default=None, help="bag: training rosbag2 directory")
    data.add_argument("--val-bag", default=None, help="bag: validation rosbag2 directory")
    data.add_argument("--image-topic", default="/camera/image_raw", help="bag: image topic")
    data.add_argument("--label-topic", default="/camera/labels", help="bag: label topic (mono8 train ids)")
    data.add_argument("--max-val-frames", type=int, default=None, help="validate on at most this many frames")
    data.add_argument("--val-input-size", type=size_argument, default=None, metavar="HxW",
                      help="network input size to validate at (images resized to it, scores against the "
                           "full-size labels; default: --height x --width); written to the sidecar as "
                           "network_input_size, the size the engine then runs the checkpoint at by default")

    aug = parser.add_argument_group("augmentation")
    aug.add_argument("--crop", type=size_argument, default=(512, 512), metavar="HxW", help="training crop (multiples of 8)")
    aug.add_argument("--scale-min", type=float, default=0.5)
    aug.add_argument("--scale-max", type=float, default=2.0)
    aug.add_argument("--camvid-scale-min", type=float, default=1.5,
                     help="camvid: random scale range of its 480x360 frames (default 1.5-2.5, around the "
                          "720x960 the model is run at)")
    aug.add_argument("--camvid-scale-max", type=float, default=2.5)
    aug.add_argument("--no-flip", action="store_true", help="disable random horizontal flips")
    aug.add_argument("--camera-aug", choices=("real", "all", "none"), default="real",
                     help="camera augmentation (colour, gamma, blur, noise, JPEG) on real sources only "
                          "(default), on every source, or off")
    aug.add_argument("--aug-p", type=float, default=CameraAugmentation.p,
                     help="probability of each camera effect")
    for effect in CAMERA_EFFECTS:
        default = getattr(CameraAugmentation, effect)
        aug.add_argument(f"--aug-{effect}", type=type(default), default=default,
                         help=f"camera augmentation strength (default {default}; 0 = off)")

    opt = parser.add_argument_group("optimisation")
    opt.add_argument("--batch-size", type=int, default=8)
    length = opt.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, default=None, help="passes over the training set")
    length.add_argument("--iterations", type=int, default=None, help="optimizer steps (default: 10 epochs)")
    opt.add_argument("--lr", type=float, default=0.01)
    opt.add_argument("--momentum", type=float, default=0.9)
    opt.add_argument("--weight-decay", type=float, default=5e-4)
    opt.add_argument("--poly-power", type=float, default=0.9)
    opt.add_argument("--aux-weight", type=float, default=0.4, help="0 trains without the auxiliary head")
    opt.add_argument("--ohem-threshold", type=float, default=0.7)
    opt.add_argument("--min-kept", type=int, default=100_000)

    run = parser.add_argument_group("run")
    run.add_argument("--output", required=True, metavar="DIR", help="checkpoints, sidecars and history go here")
    run.add_argument("--resume", action="store_true", help=f"continue from DIR/{RESUME_FILE}")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    run.add_argument("--workers", type=int, default=1, help="DataLoader worker processes (0 = load in-process)")
    run.add_argument("--val-every", type=int, default=None, metavar="N",
                     help="validate every N iterations (default: once per epoch)")
    run.add_argument("--time-budget", type=float, default=None, metavar="MINUTES",
                     help="stop cleanly (validate, save) once the run's wall time (summed over resumed "
                          "sessions) reaches this")
    run.add_argument("--anneal-to-budget", action="store_true",
                     help="poly-decay the learning rate over the time budget as well, whichever of "
                          "iterations or time runs out first, so a slower machine still ends annealed")
    run.add_argument("--log-every", type=int, default=50, metavar="N",
                     help="log a progress line every N iterations when stderr is not a terminal")
    run.add_argument("--allocator", choices=("auto", "system"), default="auto",
                     help="auto: when started as `ddrnet-ros train` on the CPU, restart once with tcmalloc "
                          "preloaded if the system has it (Debian/Ubuntu: libtcmalloc-minimal4); training steps "
                          "were ~1.7x faster here, glibc's malloc page-faults on every large tensor")
    run.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    run.add_argument("--precision", choices=sorted(AUTOCAST_DTYPES), default="fp32",
                     help="forward pass under autocast: bf16 is ~1.5x faster on CPUs with AVX512-BF16 and on "
                          "recent GPUs; fp16 (CUDA only) uses loss scaling. Weights and the loss stay fp32")
    run.add_argument("--channels-last", action="store_true",
                     help="NHWC memory format (faster convolutions on CPUs with oneDNN and on tensor cores)")


# --------------------------------------------------------------------------------------------
# data


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


def _worker_init(_: int) -> None:
    # The worker only decodes/renders/augments: one thread each, leave the rest to training.
    # Ctrl-C reaches the whole process group; the main process alone decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    import cv2

    cv2.setNumThreads(1)


def build_sources(args: argparse.Namespace) -> tuple[list[tuple[str, float, Dataset]], Dataset, dict]:
    """([(name, weight, training source)], validation source, description for the sidecar)."""
    parts = [(name, weight, SOURCES[name].build(args, True)) for name, weight in args.data]
    val_name = args.val_data or ("camvid" if any(n == "camvid" for n, _ in args.data) else args.data[0][0])
    val = SOURCES[val_name].build(args, False)
    if args.max_val_frames is not None and args.max_val_frames < len(val):
        val = torch.utils.data.Subset(val, range(args.max_val_frames))
    train = ([{**_describe(dataset), "weight": weight} for _, weight, dataset in parts] if len(parts) > 1
             else _describe(parts[0][2]))
    return parts, val, {"train": train, "val": _describe(val)}


def camera_augmentation(args: argparse.Namespace, source: str) -> CameraAugmentation:
    """The flags' camera augmentation where ``--camera-aug`` asks for it on this source, else none."""
    wanted = args.camera_aug == "all" or (args.camera_aug == "real" and SOURCES[source].real)
    if not wanted:
        return CameraAugmentation.off()
    return CameraAugmentation(p=args.aug_p, **{effect: getattr(args, f"aug_{effect}") for effect in CAMERA_EFFECTS})


def training_set(args: argparse.Namespace, parts: list[tuple[str, float, Dataset]], label_sets: TrainingLabelSets,
                 ignore_label: int) -> Dataset:
    """Each source augmented its own way and re-coded to training ids, mixed by weight."""
    augmented = []
    for name, weight, source in parts:
        low, high = (getattr(args, flag) for flag in SOURCES[name].scale_flags)
        augmentation = TrainAugmentation(crop=tuple(args.crop), scale_range=(low, high), flip=not args.no_flip,
                                         ignore_label=ignore_label, camera=camera_augmentation(args, name))
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
    return describe() if describe else {"count": len(dataset)}


# --------------------------------------------------------------------------------------------
# model


def init_from_checkpoint(model: nn.Module, path: str | Path) -> list[str]:
    """Load ``path`` for fine-tuning; returns what was (re)initialised instead of loaded.

    Classifier layers whose class count differs keep their fresh initialisation; an
    auxiliary head the file lacks (official checkpoints ship without it) is trained from
    scratch. Any other difference is a :class:`CheckpointError`.
    """
    state = read_state_dict(path)
    expected = model.state_dict()
    fresh: list[str] = []
    for key in list(state):
        if key in expected and state[key].shape != expected[key].shape and key.startswith(CLASSIFIER_PREFIXES):
            fresh.append(f"{key} (file {tuple(state[key].shape)} -> model {tuple(expected[key].shape)})")
            del state[key]
    if not any(k.startswith(AUX_PREFIX) for k in expected):
        state = {k: v for k, v in state.items() if not k.startswith(AUX_PREFIX)}
    missing = sorted(set(expected) - set(state))
    aux_missing = [k for k in missing if k.startswith(AUX_PREFIX)]
    reinitialised = {k.split(" ")[0] for k in fresh}
    other_missing = [k for k in missing if k not in aux_missing and k not in reinitialised]
    unexpected = sorted(set(state) - set(expected))
    mismatched = [k for k in state if k in expected and state[k].shape != expected[k].shape]
    if other_missing or unexpected or mismatched:
        variant = model.config.name
        details = []
        if mismatched:
            details.append(f"shape mismatch: {', '.join(mismatched[:4])}")
        if other_missing:
            details.append(f"{len(other_missing)} missing key(s), e.g. {', '.join(other_missing[:4])}")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected key(s), e.g. {', '.join(unexpected[:4])}")
        raise CheckpointError(f"{path} cannot initialise {variant}: " + "; ".join(details))
    model.load_state_dict(state, strict=False)
    if aux_missing:
        fresh.append(f"{AUX_PREFIX}* (auxiliary head not in the file: trained from scratch)")
    return fresh


def poly_lr(base_lr: float, progress: float, power: float) -> float:
    """The poly schedule: ``base * (1 - progress) ** power``, progress = iteration / total."""
    return base_lr * (1.0 - min(max(progress, 0.0), 1.0)) ** power


# --------------------------------------------------------------------------------------------
# validation


def validate(model: nn.Module, loader: DataLoader, class_map: ClassMap, device: torch.device,
             label_space: CoarseLabelSpace | None = None) -> SegmentationScores:
    """Scores on the whole validation set: logits upsampled to each label map, then argmax;
    with a coarse ``label_space`` the predictions are mapped into it and scored there."""
    was_training = model.training
    model.eval()
    scored = class_map if label_space is None else label_space.class_map()
    lookup = None if label_space is None else label_space.prediction_lookup(class_map)
    accumulator = ConfusionAccumulator(scored.num_classes, scored.names, scored.ignore_label)
    with torch.inference_mode():
        for images, labels in loader:
            logits = model(images.to(device))
            prediction = upsample_logits(logits, tuple(labels.shape[-2:])).argmax(1).cpu().numpy()
            if lookup is not None:
                prediction = lookup[prediction]
            for pred, truth in zip(prediction, labels.numpy()):
                accumulator.update(pred, truth)
    model.train(was_training)
    return accumulator.scores()


# --------------------------------------------------------------------------------------------
# state


@dataclass
class RunState:
    """What survives a restart, besides the model and optimizer."""

    iteration: int = 0
    best_miou: float = -1.0
    best_iteration: int = -1
    wall_time_s: float = 0.0
    last_val: dict = field(default_factory=dict)


def save_resume(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, state: RunState,
                run_config: dict) -> None:
    """Model (with aux head), optimizer, counters and RNG state as plain tensors and scalars."""
    payload = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "iteration": state.iteration,
        "best_miou": state.best_miou,
        "best_iteration": state.best_iteration,
        "wall_time_s": state.wall_time_s,
        "last_val": json.dumps(state.last_val),
        "run_config": json.dumps(run_config),
        "torch_rng_state": torch.get_rng_state(),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_resume(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, run_config: dict) -> RunState:
    if not path.is_file():
        raise TrainingError(f"--resume: {path} not found (nothing to resume in this output directory)")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    saved = json.loads(payload["run_config"])
    for key in ("variant", "num_classes", "aux"):
        if saved.get(key) != run_config.get(key):
            raise TrainingError(f"--resume: {path} was trained with {key}={saved.get(key)!r}, "
                                f"this command asks for {run_config.get(key)!r}")
    for key in sorted(set(saved) | set(run_config)):
        if key not in ("variant", "num_classes", "aux") and saved.get(key) != run_config.get(key):
            LOG.warning("resume: %s changed from %r to %r", key, saved.get(key), run_config.get(key))
    model.load_state_dict(payload["model"], strict=True)
    optimizer.load_state_dict(payload["optimizer"])
    torch.set_rng_state(payload["torch_rng_state"])
    return RunState(iteration=int(payload["iteration"]), best_miou=float(payload["best_miou"]),
                    best_iteration=int(payload["best_iteration"]), wall_time_s=float(payload["wall_time_s"]),
                    last_val=json.loads(payload["last_val"]))


def checkpoint_metadata(args: argparse.Namespace, class_map: ClassMap, data: dict, state: RunState,
                        scores: dict | None, iteration: int) -> dict:
    return {
        "variant": args.variant,
        "num_classes": class_map.num_classes,
        "class_names": list(class_map.names),
        "palette": class_map.colors.tolist(),
        "ignore_label": class_map.ignore_label,
        "input_size": [args.height, args.width],
        **({"network_input_size": list(args.val_input_size)} if args.val_input_size else {}),
        "normalization": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "scale": "0-1 RGB"},
        "training_data": data,
        "iterations": iteration,
        "recipe": {"batch_size": args.batch_size, "crop": list(args.crop), "lr": args.lr, "momentum": args.momentum,
                   "weight_decay": args.weight_decay, "poly_power": args.poly_power, "aux_weight": args.aux_weight,
                   "ohem_threshold": args.ohem_threshold, "min_kept": args.min_kept,
                   "scale_range": [args.scale_min, args.scale_max],
                   "camvid_scale_range": [args.camvid_scale_min, args.camvid_scale_max],
                   "camera_augmentation": {"on": args.camera_aug, "p": args.aug_p,
                                           **{e: getattr(args, f"aug_{e}") for e in CAMERA_EFFECTS}},
                   "flip": not args.no_flip, "seed": args.seed,
                   "init": args.init, "time_budget_min": args.time_budget,
                   "anneal_to_budget": args.anneal_to_budget, "precision": args.precision,
                   "channels_last": args.channels_last},
        "val_miou": None if scores is None else scores["mIoU"],
        "val_per_class_iou": None if scores is None else scores["per_class_iou"],
        "val_pixel_accuracy": None if scores is None else scores["pixel_accuracy"],
        "command": " ".join(["ddrnet-ros", "train", *getattr(args, "argv", [])]),
        "wall_time_s": round(state.wall_time_s, 1),
        "torch_version": torch.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# --------------------------------------------------------------------------------------------
# the loop


class _StopFlag:
    """Set by SIGINT/SIGTERM so the loop can save before it exits."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def __call__(self, signum: int, _frame: Any) -> None:
        self.reason = signal.Signals(signum).name


def _check_args(args: argparse.Namespace) -> None:
    for name in ("height", "width"):
        if getattr(args, name) % INPUT_MULTIPLE:
            raise TrainingError(f"--{name} {getattr(args, name)} must be a multiple of {INPUT_MULTIPLE}")
    if args.crop[0] % INPUT_MULTIPLE or args.crop[1] % INPUT_MULTIPLE:
        raise TrainingError(f"--crop {args.crop[0]}x{args.crop[1]} must be multiples of {INPUT_MULTIPLE}")
    for prefix in ("", "camvid_"):
        low, high = getattr(args, f"{prefix}scale_min"), getattr(args, f"{prefix}scale_max")
        if not 0 < low <= high:
            raise TrainingError(f"--{prefix.replace('_', '-')}scale-min/max must satisfy 0 < min <= max, "
                                f"got {low}, {high}")
    if not 0 <= args.aug_p <= 1:
        raise TrainingError(f"--aug-p must be in [0, 1], got {args.aug_p}")
    for name in ("batch_size", "train_seeds", "val_seeds"):
        if getattr(args, name) < 1:
            raise TrainingError(f"--{name.replace('_', '-')} must be at least 1")
    if args.iterations is not None and args.iterations < 1:
        raise TrainingError("--iterations must be at least 1")
    if args.epochs is not None and args.epochs < 1:
        raise TrainingError("--epochs must be at least 1")
    if args.anneal_to_budget and not args.time_budget:
        raise TrainingError("--anneal-to-budget needs --time-budget")
    if args.precision == "fp16" and not str(args.device).startswith("cuda"):
        raise TrainingError("--precision fp16 needs a CUDA --device; use bf16 on the CPU")


def train(args: argparse.Namespace) -> dict:
    """Run the training described by parsed ``args``; returns a summary dict."""
    _check_args(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    class_map = ClassMap.load(args.classes)

    args.data = flatten_data(args.data)
    train_parts, val_source, data_description = build_sources(args)
    spaces = [space for _, _, source in train_parts if (space := label_space_of(source)) is not None]
    label_sets = TrainingLabelSets.build(class_map, spaces)
    train_set = training_set(args, train_parts, label_sets, class_map.ignore_label)
    val_space = label_space_of(val_source)
    val_set = ValidationPairs(val_source, args.val_input_size or (args.height, args.width))

    torch.manual_seed(args.seed)
    use_aux = args.aux_weight > 0
    model = create_model(args.variant, num_classes=class_map.num_classes, aux=use_aux)
    if args.init and not args.resume:
        for what in init_from_checkpoint(model, args.init):
            LOG.info("init: %s initialised fresh", what)
        LOG.info("init: loaded %s", args.init)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model.to(device, memory_format=memory_format).train()
    autocast_dtype = AUTOCAST_DTYPES[args.precision]
    # Loss scaling keeps small fp16 gradients from flushing to zero; bf16 has fp32's range.
    scaler = torch.amp.GradScaler(device.type, enabled=autocast_dtype is torch.float16)

    criterion = OhemCrossEntropy(class_map.ignore_label, args.ohem_threshold, args.min_kept, label_sets)
    loss_fn = DDRNetLoss(criterion, weights=(1.0, args.aux_weight)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                                weight_decay=args.weight_decay)

    batches_per_epoch = len(train_set) // args.batch_size
    total = args.iterations or (args.epochs or 10) * max(1, batches_per_epoch)
    val_every = args.val_every or max(1, batches_per_epoch)
    run_config = {"variant": args.variant, "num_classes": class_map.num_classes, "aux": use_aux,
                  "total_iterations": total, "batch_size": args.batch_size, "seed": args.seed,
                  "data": data_description}

    state = RunState()
    resume_path = output / RESUME_FILE
    if args.resume:
        state = load_resume(resume_path, model, optimizer, run_config)
        LOG.info("resumed from %s at iteration %d (best mIoU %.4f)", resume_path, state.iteration, state.best_miou)

    sampler = EpochBatches(len(train_set), args.batch_size, args.seed, state.iteration, total)
    loader = DataLoader(train_set, batch_sampler=sampler, num_workers=args.workers,
                        worker_init_fn=_worker_init if args.workers else None,
                        prefetch_factor=4 if args.workers else None)
    val_loader = DataLoader(val_set, batch_size=1, num_workers=min(args.workers, 1),
                            worker_init_fn=_worker_init if args.workers else None)
    LOG.info("training %s (%d classes, aux=%s) for %d iterations (%d per epoch, batch %d, crop %dx%d) on %d "
             "training / %d validation frames; output %s", args.variant, class_map.num_classes, use_aux, total,
             batches_per_epoch, args.batch_size, args.crop[0], args.crop[1], len(train_set), len(val_set), output)

    stop = _StopFlag()
    previous_handlers = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous_handlers[sig] = signal.signal(sig, stop)
        except ValueError:  # not the main thread: no graceful signal stop
            pass

    session_start = time.monotonic()
    wall_before = state.wall_time_s
    budget_s = args.time_budget * 60.0 if args.time_budget else math.inf
    history_path = output / "history.jsonl"
    use_bar = sys.stderr.isatty()
    bar = None
    if use_bar:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=state.iteration, unit="it", dynamic_ncols=True, desc="train")
    last_validated = state.iteration if args.resume else -1
    loss_ema = None
    rate_ema = None
    tick = time.monotonic()
    stopped_by = "completed"

    def run_validation(iteration: int) -> dict:
        nonlocal last_validated
        started = time.monotonic()
        scores = validate(model, val_loader, class_map, device, label_space=val_space).as_dict()
        state.wall_time_s = wall_before + (time.monotonic() - session_start)
        state.last_val = {"iteration": iteration, **scores}
        is_best = scores["mIoU"] > state.best_miou
        if is_best:
            state.best_miou, state.best_iteration = scores["mIoU"], iteration
        metadata = checkpoint_metadata(args, class_map, data_description, state, scores, iteration)
        save_checkpoint(model, output / "last.pt", metadata)
        if is_best:
            save_checkpoint(model, output / "best.pt", metadata)
        save_resume(resume_path, model, optimizer, state, run_config)
        with history_path.open("a") as f:
            f.write(json.dumps({"iteration": iteration, "loss_ema": loss_ema, "wall_time_s": state.wall_time_s,
                                **scores}) + "\n")
        present = {k: round(v, 3) for k, v in scores["per_class_iou"].items() if v is not None}
        LOG.info("val @ %d: mIoU %.4f (best %.4f @ %d), pixel acc %.4f, %.0f s; per class %s", iteration,
                 scores["mIoU"], state.best_miou, state.best_iteration, scores["pixel_accuracy"],
                 time.monotonic() - started, present)
        last_validated = iteration
        return scores

    def run_seconds() -> float:
        return wall_before + (time.monotonic() - session_start)

    def progress(iteration: int) -> float:
        done = iteration / total
        return max(done, run_seconds() / budget_s) if args.anneal_to_budget else done

    try:
        iteration = state.iteration
        for images, labels in loader:
            lr = poly_lr(args.lr, progress(iteration), args.poly_power)
            for group in optimizer.param_groups:
                group["lr"] = lr
            images = images.to(device, non_blocking=True).contiguous(memory_format=memory_format)
            labels = labels.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=autocast_dtype or torch.float32,
                                enabled=autocast_dtype is not None):
                outputs = model(images)
            # OHEM ranks softmax probabilities: compute it in fp32 whatever the forward ran in.
            outputs = outputs.float() if isinstance(outputs, torch.Tensor) else [o.float() for o in outputs]
            loss = loss_fn(outputs, labels)
            if not torch.isfinite(loss):
                raise TrainingError(f"loss became {loss.item()} at iteration {iteration}; lower --lr")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            iteration += 1
            state.iteration = iteration

            now = time.monotonic()
            rate = images.shape[0] / max(now - tick, 1e-9)
            tick = now
            value = float(loss.detach())
            loss_ema = value if loss_ema is None else 0.9 * loss_ema + 0.1 * value
            rate_ema = rate if rate_ema is None else 0.9 * rate_ema + 0.1 * rate
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_ema:.3f}", lr=f"{lr:.2e}", img_s=f"{rate_ema:.1f}")
            elif iteration % args.log_every == 0 or iteration == total:
                eta_s = (total - iteration) * args.batch_size / max(rate_ema, 1e-9)
                LOG.info("it %d/%d  loss %.4f  lr %.2e  %.1f img/s  eta %.0f min", iteration, total, loss_ema, lr,
                         rate_ema, eta_s / 60)

            if iteration % val_every == 0 or iteration == total:
                run_validation(iteration)
            if stop.reason or run_seconds() >= budget_s:
                stopped_by = stop.reason or f"time budget ({args.time_budget:g} min)"
                LOG.info("stopping at iteration %d: %s", iteration, stopped_by)
                break
        if state.iteration != last_validated:
            run_validation(state.iteration)
    finally:
        if bar is not None:
            bar.close()
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)

    state.wall_time_s = wall_before + (time.monotonic() - session_start)
    summary = {"iterations": state.iteration, "total_iterations": total, "stopped_by": stopped_by,
               "best_miou": state.best_miou, "best_iteration": state.best_iteration,
               "last_miou": state.last_val.get("mIoU"), "wall_time_s": round(state.wall_time_s, 1),
               "output": str(output)}
    (output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    LOG.info("done: %s", summary)
    return summary


def find_tcmalloc() -> str | None:
    """The tcmalloc shared library's name as the dynamic loader finds it, or None."""
    import ctypes.util

    return ctypes.util.find_library("tcmalloc_minimal") or ctypes.util.find_library("tcmalloc")


def restart_with_tcmalloc(args: argparse.Namespace) -> None:
    """Replace this process with the same ``ddrnet-ros train`` command under tcmalloc, when that
    helps and is possible; otherwise return (with a hint where the library is missing)."""
    started_as_command = sys.argv[1:2] == ["train"]
    preloaded = "tcmalloc" in os.environ.get("LD_PRELOAD", "")
    if args.allocator != "auto" or not started_as_command or preloaded or not str(args.device).startswith("cpu"):
        return
    library = find_tcmalloc()
    if library is None:
        LOG.info("allocator: glibc malloc (install libtcmalloc-minimal4 for ~1.7x faster CPU training steps)")
        return
    LOG.info("allocator: restarting with %s preloaded (--allocator system keeps glibc malloc)", library)
    env = {**os.environ, "LD_PRELOAD": " ".join(filter(None, [library, os.environ.get("LD_PRELOAD")]))}
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "ddrnet_ros.cli", *sys.argv[1:]], env)


def main(args: argparse.Namespace) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    restart_with_tcmalloc(args)
    if not hasattr(args, "argv"):
        args.argv = sys.argv[2:] if len(sys.argv) > 1 and sys.argv[1] == "train" else sys.argv[1:]
    from .data.bags import BagError

    try:
        train(args)
    except (TrainingError, SourceError, DatasetLayoutError, CheckpointError, ClassMapError, BagError) as exc:
        print(f"ddrnet-ros train: error: {exc}", file=sys.stderr)
        return 1
    return 0


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``ddrnet-ros train`` arguments (for tests and scripts)."""
    parser = argparse.ArgumentParser(prog="ddrnet-ros train")
    configure_parser(parser)
    args = parser.parse_args(list(argv))
    args.argv = list(argv)
    return args


if __name__ == "__main__":
    sys.exit(main(parse_args(sys.argv[1:])))
