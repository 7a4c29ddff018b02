"""``ddrnet-ros run``: the segmentation node, configured from a ROS params file."""

from __future__ import annotations

import argparse

from ..ros.node import spin_node


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params-file", metavar="YAML",
                        help="ROS parameters file (ros__parameters format), e.g. config/segmentation.yaml")
    parser.add_argument("--ros-args", dest="ros_args", nargs=argparse.REMAINDER, default=[], metavar="ARG",
                        help="everything after it goes to ROS (remappings, -p name:=value, --log-level, ...)")


def main(args: argparse.Namespace) -> int:
    """``ddrnet-ros run``: the node, configured from a params file."""
    ros_args = list(args.ros_args)
    if args.params_file:
        ros_args = ["--params-file", args.params_file, *ros_args]
    return spin_node(["ddrnet-ros-run", "--ros-args", *ros_args] if ros_args else None)
