"""Argument helpers shared by the ``ddrnet-ros`` subcommands: one meaning for each flag everywhere."""

from __future__ import annotations

import argparse
import sys

from ..classes import LABEL_SPACES, CoarseLabelSpace
from ..engine.backends import BACKENDS
from ..engine.loading import CHECKPOINT_CHOICES, RANDOM, SHIPPED
from ..model import VARIANTS
from ..resources import DEFAULT_VARIANT


def fail(command: str, message: object) -> int:
    """Print ``ddrnet-ros COMMAND: error: MESSAGE`` as one line on stderr; the exit status 1."""
    print(f"ddrnet-ros {command}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return 1


def size_argument(text: str) -> tuple[int, int]:
    """argparse type for sizes: ``256`` -> (256, 256); ``256x512`` -> (256, 512) as (height, width)."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH or N, got {text!r}") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) <= 0:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH or N, got {text!r}")
    return parts[0], parts[1]


def checkpoint_argument(text: str) -> str:
    """argparse type for ``--checkpoint``: a path, ``shipped`` or ``random`` (never empty)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected {CHECKPOINT_CHOICES}, got an empty string")
    return text


def add_checkpoint_argument(parser: argparse.ArgumentParser, default: str = SHIPPED) -> None:
    parser.add_argument("--checkpoint", type=checkpoint_argument, default=default, metavar="PATH|shipped|random",
                        help=f"checkpoint file, '{SHIPPED}' (the packaged model) or '{RANDOM}' (seeded random "
                             f"weights, for tests and benchmarks); default {default}")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--checkpoint/--variant/--backend/--device, the same for every command that runs a model."""
    add_checkpoint_argument(parser)
    parser.add_argument("--variant", default=DEFAULT_VARIANT, choices=sorted(VARIANTS), help="DDRNet variant")
    parser.add_argument("--backend", default="torch", choices=list(BACKENDS), help="inference backend")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")


def label_space_argument(text: str) -> CoarseLabelSpace | None:
    """argparse type for ``--label-space``: ``model`` (the model's own classes) or a coarse space."""
    if text == "model":
        return None
    if text not in LABEL_SPACES:
        raise argparse.ArgumentTypeError(f"unknown label space {text!r}; known: model, {', '.join(LABEL_SPACES)}")
    return LABEL_SPACES[text]


def add_label_space_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--label-space", type=label_space_argument, default=None, metavar="SPACE",
                        help=f"what the bag's label ids are: model (default: the model's classes) or "
                             f"{', '.join(LABEL_SPACES)} (e.g. a bag from make-bag --from-camvid)")

