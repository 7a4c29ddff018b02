"""`ddrnet-ros train`: train or fine-tune a DDRNet variant with the paper's recipe.

Recipe (DDRNet, arXiv 2101.06085, Cityscapes setting): SGD with momentum 0.9 and weight
decay 5e-4, poly learning-rate decay (power 0.9) from 0.01, OHEM cross-entropy on the main
head plus 0.4 x the auxiliary head, random scale 0.5-2.0, random crop and horizontal flip.
Coarser labels (CamVid) train through the set-valued form of the loss; real sources get
camera augmentation. See :mod:`ddrnet_ros.training` for what is written where.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from ..classes import ClassMapError
from ..data.bags import BagError
from ..data.datasets import DatasetLayoutError
from ..data.sources import SOURCES, SourceError, data_argument
from ..data.transforms import CameraAugmentation
from ..model import VARIANTS, CheckpointError
from ..resources import DEFAULT_VARIANT
from ..training import RESUME_FILE, TrainingError, train
from ..training.data import CAMERA_EFFECTS
from ..training.loop import AUTOCAST_DTYPES
from .common import size_argument

LOG = logging.getLogger("ddrnet_ros.train")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    model = parser.add_argument_group("model")
    model.add_argument("--variant", default=DEFAULT_VARIANT, choices=sorted(VARIANTS), help="DDRNet variant")
    model.add_argument("--class-config", "--classes", dest="classes", default=None, metavar="YAML",
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
    data.add_argument("--val-seeds", type=int, default=50,
                      help="synthetic: number of held-out validation scenes (seeds from HELDOUT_SEED_START + 1e6)")
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
    aug.add_argument("--crop", type=size_argument, default=(512, 512), metavar="HxW",
                     help="training crop (multiples of 8)")
    aug.add_argument("--scale-min", type=float, default=0.5)
    aug.add_argument("--scale-max", type=float, default=2.0)
    aug.add_argument("--camvid-scale-min", type=float, default=1.5,
                     help="camvid: random scale range of its 480x360 frames (default 1.5-2.5, around the "
                          "768x1024 the shipped model runs at)")
    aug.add_argument("--camvid-scale-max", type=float, default=2.5)
    aug.add_argument("--no-flip", action="store_true", help="disable random horizontal flips")
    aug.add_argument("--letterbox-p", type=float, default=0.0, metavar="P",
                     help="probability of padding a frame at the bottom/right to the aspect of the network "
                          "input (--val-input-size) before cropping, as the engine letterboxes frames of "
                          "another aspect with pad_to_input_size (e.g. 2:1 scenes into a 4:3 network); 0 = off")
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
    opt.add_argument("--class-weight", type=class_weight_argument, action="append", default=None,
                     metavar="CLASS=W", dest="class_weight",
                     help="weigh the loss of pixels of this model class (name, '_' for spaces) by W (default 1; "
                          "repeatable); a coarse label takes the largest weight among its classes")
    opt.add_argument("--weight-average", type=float, default=0.0, metavar="DECAY",
                     help="validate and save an exponential moving average of the weights with this decay per "
                          "step (e.g. 0.997: about the last 300 steps) instead of the live weights; steadier "
                          "validation scores when fine-tuning. 0 (default) = off")

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


def class_weight_argument(text: str) -> tuple[str, float]:
    """argparse type for ``--class-weight``: ``pole=2`` or ``traffic_sign=1.5`` -> (name, weight)."""
    name, sep, value = text.rpartition("=")
    try:
        weight = float(value)
    except ValueError:
        weight = 0.0
    if not sep or not name.strip() or not weight > 0:
        raise argparse.ArgumentTypeError(f"expected CLASS=WEIGHT with a weight > 0, got {text!r}")
    return name.strip().replace("_", " "), weight


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
    os.execve(sys.executable, [sys.executable, "-m", "ddrnet_ros", *sys.argv[1:]], env)


def main(args: argparse.Namespace) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    restart_with_tcmalloc(args)
    if not hasattr(args, "argv"):
        args.argv = sys.argv[2:] if len(sys.argv) > 1 and sys.argv[1] == "train" else sys.argv[1:]
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
