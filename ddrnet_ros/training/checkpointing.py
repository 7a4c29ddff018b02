"""What a training run writes and reads back: fine-tuning init, resume state, checkpoint sidecars.

``resume.pt`` holds everything needed to continue (model incl. auxiliary head, optimizer,
iteration, counters, RNG state) as plain tensors and scalars, readable with
``torch.load(weights_only=True)``; ``best.pt``/``last.pt`` are official-layout checkpoints with
JSON sidecars saying what made them.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..classes import ClassMap
from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ..model import CheckpointError, DDRNet
from ..model.checkpoint import AUX_PREFIX, read_state_dict
from .averaging import WeightAverage
from .config import TrainConfig
from .data import CAMERA_EFFECTS
from .errors import TrainingError

LOG = logging.getLogger("ddrnet_ros.train")

#: The 1x1 convolutions that map features to class scores; the only layers re-initialised
#: when fine-tuning to a different number of classes.
CLASSIFIER_PREFIXES = ("final_layer.conv2.", AUX_PREFIX + "conv2.")
RESUME_FILE = "resume.pt"


def init_from_checkpoint(model: DDRNet, path: str | Path) -> list[str]:
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


@dataclass
class RunState:
    """What survives a restart, besides the model and optimizer."""

    iteration: int = 0
    best_miou: float = -1.0
    best_iteration: int = -1
    wall_time_s: float = 0.0
    last_val: dict = field(default_factory=dict)


def save_resume(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, state: RunState,
                run_config: dict, average: WeightAverage | None = None) -> None:
    """Model (with aux head), optimizer, weight average, counters and RNG state as plain tensors and scalars."""
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
        **({"weight_average": average.state_dict()} if average is not None else {}),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_resume(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, run_config: dict,
                average: WeightAverage | None = None) -> RunState:
    """Restore what :func:`save_resume` wrote. A run that now averages its weights but saved no
    average starts the average from the resumed weights (its decay warms up again)."""
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
    if average is not None:
        if "weight_average" in payload:
            average.load_state_dict(payload["weight_average"])
        else:
            LOG.info("resume: %s holds no weight average; starting one from the resumed weights", path)
            average.start_from(model)
    return RunState(iteration=int(payload["iteration"]), best_miou=float(payload["best_miou"]),
                    best_iteration=int(payload["best_iteration"]), wall_time_s=float(payload["wall_time_s"]),
                    last_val=json.loads(payload["last_val"]))


def checkpoint_metadata(args: TrainConfig, class_map: ClassMap, data: dict, state: RunState,
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
                   **({"class_weights": dict(args.class_weight)} if args.class_weight else {}),
                   "weight_average": args.weight_average,
                   "scale_range": [args.scale_min, args.scale_max],
                   "camvid_scale_range": [args.camvid_scale_min, args.camvid_scale_max],
                   "camera_augmentation": {"on": args.camera_aug, "p": args.aug_p,
                                           **{e: getattr(args, f"aug_{e}") for e in CAMERA_EFFECTS}},
                   "flip": not args.no_flip, "letterbox_p": args.letterbox_p, "seed": args.seed,
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
