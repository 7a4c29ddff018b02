"""The training loop: one :class:`Trainer` per run, ``train(args)`` the composition.

Output directory: ``best.pt`` and ``last.pt`` in the official key layout (auxiliary head left
out, so they load into the official inference model and into ``create_model``) with JSON
sidecars; ``resume.pt`` to continue; ``history.jsonl`` with one line per validation;
``summary.json`` when the run ends.
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
from pathlib import Path
from typing import Any

# Before torch loads its OpenMP runtime: idle OpenMP threads sleep instead of spinning. On a
# small shared CPU, spinning threads burn the cores the busy ones need; measured here with
# 2 threads under load: 7.6-10 CPU-s per training step spinning vs 2.5-3.2 CPU-s passive.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from ..classes import ClassMap, TrainingLabelSets  # noqa: E402
from ..data.camvid import label_space_of  # noqa: E402
from ..data.datasets import ValidationPairs  # noqa: E402
from ..model import INPUT_MULTIPLE, create_model, save_checkpoint  # noqa: E402
from .averaging import WeightAverage  # noqa: E402
from .checkpointing import RESUME_FILE, RunState, checkpoint_metadata, init_from_checkpoint, load_resume, save_resume  # noqa: E402
from .config import TrainConfig  # noqa: E402
from .data import EpochBatches, build_sources, network_input_size, training_set, worker_init  # noqa: E402
from .errors import TrainingError  # noqa: E402
from .losses import DDRNetLoss, OhemCrossEntropy  # noqa: E402
from .progress import Progress  # noqa: E402
from .schedule import PolySchedule  # noqa: E402
from .validation import validate  # noqa: E402

LOG = logging.getLogger("ddrnet_ros.train")

#: --precision -> autocast dtype (None: plain fp32).
AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class StopFlag:
    """Set by SIGINT/SIGTERM so the loop can save before it exits."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def __call__(self, signum: int, _frame: Any) -> None:
        self.reason = signal.Signals(signum).name

    def install(self) -> dict:
        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[sig] = signal.signal(sig, self)
            except ValueError:  # not the main thread: no graceful signal stop
                pass
        return previous


def check_args(args: TrainConfig) -> None:
    """One-line TrainingError for the first setting that cannot work."""
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
    if not 0 <= args.weight_average < 1:
        raise TrainingError(f"--weight-average must be in [0, 1) (0 = off), got {args.weight_average}")
    if args.anneal_to_budget and not args.time_budget:
        raise TrainingError("--anneal-to-budget needs --time-budget")
    if args.precision == "fp16" and not str(args.device).startswith("cuda"):
        raise TrainingError("--precision fp16 needs a CUDA --device; use bf16 on the CPU")


def class_weight_vector(class_map: ClassMap, named: tuple[tuple[str, float], ...]) -> list[float] | None:
    """Per-class loss weights from ``--class-weight`` pairs (others weigh 1); None when none given."""
    if not named:
        return None
    weights = [1.0] * class_map.num_classes
    for name, weight in named:
        if name not in class_map.names:
            raise TrainingError(f"--class-weight: no class {name!r}; the classes are {', '.join(class_map.names)}")
        weights[class_map.names.index(name)] = weight
    return weights


class Trainer:
    """One training run: data, model, optimiser and the files it writes, built from its config."""

    def __init__(self, args: TrainConfig) -> None:
        check_args(args)
        if args.threads:
            torch.set_num_threads(args.threads)
        self.args = args
        self.device = torch.device(args.device)
        self.output = Path(args.output)
        self.output.mkdir(parents=True, exist_ok=True)
        self.class_map = ClassMap.load(args.classes)
        parts, val_source, self.data_description = build_sources(args)
        spaces = [space for _, _, source in parts if (space := label_space_of(source)) is not None]
        label_sets = TrainingLabelSets.build(self.class_map, spaces)
        self.train_set = training_set(args, parts, label_sets, self.class_map.ignore_label)
        self.val_space = label_space_of(val_source)
        self.val_set = ValidationPairs(val_source, network_input_size(args))
        self.model = self._build_model()
        self.autocast_dtype = AUTOCAST_DTYPES[args.precision]
        # Loss scaling keeps small fp16 gradients from flushing to zero; bf16 has fp32's range.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.autocast_dtype is torch.float16)
        criterion = OhemCrossEntropy(self.class_map.ignore_label, args.ohem_threshold, args.min_kept, label_sets,
                                     class_weight_vector(self.class_map, args.class_weight))
        self.loss_fn = DDRNetLoss(criterion, weights=(1.0, args.aux_weight)).to(self.device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=args.lr, momentum=args.momentum,
                                         weight_decay=args.weight_decay)
        self.batches_per_epoch = len(self.train_set) // args.batch_size
        self.total = args.iterations or (args.epochs or 10) * max(1, self.batches_per_epoch)
        self.val_every = args.val_every or max(1, self.batches_per_epoch)
        self.run_config = {"variant": args.variant, "num_classes": self.class_map.num_classes,
                           "aux": args.aux_weight > 0, "total_iterations": self.total,
                           "batch_size": args.batch_size, "seed": args.seed, "data": self.data_description}
        self.average = WeightAverage(self.model, args.weight_average) if args.weight_average else None
        self.state = RunState()
        if args.resume:
            self.state = load_resume(self.output / RESUME_FILE, self.model, self.optimizer, self.run_config,
                                     self.average)
            LOG.info("resumed from %s at iteration %d (best mIoU %.4f)", self.output / RESUME_FILE,
                     self.state.iteration, self.state.best_miou)
        budget_s = args.time_budget * 60.0 if args.time_budget else math.inf
        self.budget_s = budget_s
        self.schedule = PolySchedule(args.lr, args.poly_power, self.total, budget_s, args.anneal_to_budget)
        self.wall_before = self.state.wall_time_s
        self.session_start = time.monotonic()
        self.last_validated = self.state.iteration if args.resume else -1

    @property
    def scored_model(self) -> torch.nn.Module:
        """What is validated and written to best.pt/last.pt: the weight average when there is one."""
        return self.average.model if self.average is not None else self.model

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.args.channels_last else torch.contiguous_format

    def _build_model(self) -> torch.nn.Module:
        args = self.args
        torch.manual_seed(args.seed)
        model = create_model(args.variant, num_classes=self.class_map.num_classes, aux=args.aux_weight > 0)
        if args.init and not args.resume:
            for what in init_from_checkpoint(model, args.init):
                LOG.info("init: %s initialised fresh", what)
            LOG.info("init: loaded %s", args.init)
        # torch's Module.to stubs leave out the memory_format form its docstring documents
        return model.to(self.device, memory_format=self.memory_format).train()  # type: ignore[call-overload]

    def loaders(self) -> tuple[DataLoader, DataLoader]:
        workers = self.args.workers
        sampler = EpochBatches(len(self.train_set), self.args.batch_size, self.args.seed, self.state.iteration,
                               self.total)
        train = DataLoader(self.train_set, batch_sampler=sampler, num_workers=workers,
                           worker_init_fn=worker_init if workers else None, prefetch_factor=4 if workers else None)
        val = DataLoader(self.val_set, batch_size=1, num_workers=min(workers, 1),
                         worker_init_fn=worker_init if workers else None)
        return train, val

    def run_seconds(self) -> float:
        return self.wall_before + (time.monotonic() - self.session_start)

    def step(self, images: torch.Tensor, labels: torch.Tensor, iteration: int, lr: float) -> float:
        """One optimizer step at learning rate ``lr``; returns the loss."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        images = images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        labels = labels.to(self.device, non_blocking=True)
        dtype = self.autocast_dtype
        with torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            outputs = self.model(images)
        # OHEM ranks softmax probabilities: compute it in fp32 whatever the forward ran in.
        outputs = outputs.float() if isinstance(outputs, torch.Tensor) else [o.float() for o in outputs]
        loss = self.loss_fn(outputs, labels)
        if not torch.isfinite(loss):
            raise TrainingError(f"loss became {loss.item()} at iteration {iteration}; lower --lr")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.average is not None:
            self.average.update(self.model)
        return float(loss.detach())

    def validate_and_save(self, iteration: int, val_loader: DataLoader, loss_ema: float | None) -> dict:
        """Score the validation set; write last.pt (and best.pt), resume.pt and a history line."""
        started = time.monotonic()
        scores = validate(self.scored_model, val_loader, self.class_map, self.device,
                          label_space=self.val_space).as_dict()
        state = self.state
        state.wall_time_s = self.run_seconds()
        state.last_val = {"iteration": iteration, **scores}
        is_best = scores["mIoU"] > state.best_miou
        if is_best:
            state.best_miou, state.best_iteration = scores["mIoU"], iteration
        metadata = checkpoint_metadata(self.args, self.class_map, self.data_description, state, scores, iteration)
        save_checkpoint(self.scored_model, self.output / "last.pt", metadata)
        if is_best:
            save_checkpoint(self.scored_model, self.output / "best.pt", metadata)
        save_resume(self.output / RESUME_FILE, self.model, self.optimizer, state, self.run_config, self.average)
        with (self.output / "history.jsonl").open("a") as f:
            f.write(json.dumps({"iteration": iteration, "loss_ema": loss_ema, "wall_time_s": state.wall_time_s,
                                **scores}) + "\n")
        present = {k: round(v, 3) for k, v in scores["per_class_iou"].items() if v is not None}
        LOG.info("val @ %d: mIoU %.4f (best %.4f @ %d), pixel acc %.4f, %.0f s; per class %s", iteration,
                 scores["mIoU"], state.best_miou, state.best_iteration, scores["pixel_accuracy"],
                 time.monotonic() - started, present)
        self.last_validated = iteration
        return scores

    def run(self) -> dict:
        """Train until the iterations, the time budget or a signal end it; validate and save at the end."""
        args = self.args
        train_loader, val_loader = self.loaders()
        LOG.info("training %s (%d classes, aux=%s) for %d iterations (%d per epoch, batch %d, crop %dx%d) on %d "
                 "training / %d validation frames; output %s", args.variant, self.class_map.num_classes,
                 args.aux_weight > 0, self.total, self.batches_per_epoch, args.batch_size, args.crop[0],
                 args.crop[1], len(self.train_set), len(self.val_set), self.output)
        stop = StopFlag()
        previous_handlers = stop.install()
        progress = Progress(self.total, self.state.iteration, args.batch_size, args.log_every, sys.stderr.isatty())
        stopped_by = "completed"
        try:
            iteration = self.state.iteration
            for images, labels in train_loader:
                lr = self.schedule.lr(iteration, self.run_seconds())
                loss = self.step(images, labels, iteration, lr)
                iteration += 1
                self.state.iteration = iteration
                progress.update(iteration, loss, lr, images.shape[0])
                if iteration % self.val_every == 0 or iteration == self.total:
                    self.validate_and_save(iteration, val_loader, progress.loss_ema)
                if stop.reason or self.run_seconds() >= self.budget_s:
                    stopped_by = stop.reason or f"time budget ({args.time_budget:g} min)"
                    LOG.info("stopping at iteration %d: %s", iteration, stopped_by)
                    break
            if self.state.iteration != self.last_validated:
                self.validate_and_save(self.state.iteration, val_loader, progress.loss_ema)
        finally:
            progress.close()
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)
        return self.summary(stopped_by)

    def summary(self, stopped_by: str) -> dict:
        state = self.state
        state.wall_time_s = self.run_seconds()
        summary = {"iterations": state.iteration, "total_iterations": self.total, "stopped_by": stopped_by,
                   "best_miou": state.best_miou, "best_iteration": state.best_iteration,
                   "last_miou": state.last_val.get("mIoU"), "wall_time_s": round(state.wall_time_s, 1),
                   "output": str(self.output)}
        (self.output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        LOG.info("done: %s", summary)
        return summary


def train(args: TrainConfig | argparse.Namespace) -> dict:
    """Run the training described by a config (or parsed ``ddrnet-ros train`` arguments); returns a summary."""
    config = args if isinstance(args, TrainConfig) else TrainConfig.from_args(args)
    return Trainer(config).run()
