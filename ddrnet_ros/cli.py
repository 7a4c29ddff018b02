"""`ddrnet-ros` command line: one subcommand per tool, each living in its own module.

Each module exposes ``configure_parser(parser)`` and ``main(args) -> int``; it is imported
only when its subcommand runs, so ``ddrnet-ros train`` never loads rclpy and ``ddrnet-ros
run`` never loads the trainer.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("ddrnet_ros.ros.node", "run the segmentation node (reads a ROS params file)"),
    "play": ("ddrnet_ros.ros.player", "publish a rosbag's topics in real time (with /clock)"),
    "evaluate": ("ddrnet_ros.evaluate", "score a model on a rosbag: mIoU, per-class IoU, latency, report"),
    "evaluate-live": ("ddrnet_ros.ros.live_eval", "play a bag into the running node and score what it publishes"),
    "demo": ("ddrnet_ros.demo", "synthetic bag -> node -> scored report, with the shipped checkpoint"),
    "train": ("ddrnet_ros.train", "train or fine-tune a DDRNet variant"),
    "make-bag": ("ddrnet_ros.data.make_bag", "write a synthetic driving sequence with ground truth as a rosbag2"),
    "export": ("ddrnet_ros.engine.export", "export a model to ONNX"),
    "bench": ("ddrnet_ros.engine.bench", "time every inference backend against eager PyTorch"),
}


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ddrnet-ros", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        parser.parse_args(argv)  # prints usage / error and exits
        return 2
    name = argv[0]
    module = importlib.import_module(COMMANDS[name][0])
    sub = argparse.ArgumentParser(prog=f"ddrnet-ros {name}", description=COMMANDS[name][1])
    module.configure_parser(sub)
    args = sub.parse_args(argv[1:])
    return int(module.main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
