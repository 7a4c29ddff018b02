"""`ddrnet-ros` command line: one module per subcommand, all of them here.

Each module exposes ``configure_parser(parser)`` and ``main(args) -> int``; it is imported only
when its subcommand runs, so ``ddrnet-ros train`` never loads rclpy and ``ddrnet-ros run`` never
loads the trainer. Shared argument helpers live in :mod:`.common`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand -> (module in this package, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "run the segmentation node (reads a ROS params file)"),
    "play": ("play", "publish a rosbag's topics in real time (with /clock)"),
    "evaluate": ("evaluate", "score a model on a rosbag or a labelled dataset: mIoU, per-class IoU, latency, report"),
    "evaluate-live": ("evaluate_live", "play a bag into the running node and score what it publishes"),
    "demo": ("demo", "synthetic (or CamVid) bag -> node -> scored report, with the shipped checkpoint"),
    "train": ("train", "train or fine-tune a DDRNet variant"),
    "make-bag": ("make_bag", "write a synthetic drive or a CamVid split with ground truth as a rosbag2"),
    "export": ("export", "export a model to ONNX"),
    "bench": ("bench", "time every inference backend against eager PyTorch"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ddrnet-ros", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        parser.parse_args(argv)  # prints usage / error and exits
        return 2
    name = argv[0]
    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(f"{__name__}.{module_name}")
    sub = argparse.ArgumentParser(prog=f"ddrnet-ros {name}", description=help_text)
    module.configure_parser(sub)
    args = sub.parse_args(argv[1:])
    return int(module.main(args) or 0)
