"""``ddrnet-ros play``: publish a rosbag's topics in real time (optionally with /clock)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

import rclpy
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from ..data.bags import BagError
from ..ros.player import DEFAULT_CLOCK_HZ, DELIVERY_TIMEOUT_S, PLAYBACK_DEPTH, BagPlayer


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="rosbag2 directory (or .db3 / .mcap file)")
    parser.add_argument("--rate", type=float, default=1.0, help="speed factor (2 = twice as fast)")
    parser.add_argument("--loop", action="store_true", help="start again at the end, until interrupted")
    parser.add_argument("--clock", nargs="?", type=float, const=DEFAULT_CLOCK_HZ, default=None, metavar="HZ",
                        help=f"publish /clock with the bag's time (default {DEFAULT_CLOCK_HZ:g} Hz when given)")
    parser.add_argument("--topics", nargs="+", default=None, help="only these topics (default: all)")
    parser.add_argument("--start-delay", type=float, default=0.0, metavar="S",
                        help="seconds to wait after start-up before the first message (lets subscribers connect)")
    parser.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="S",
                        help="wait up to S seconds until every played topic has a subscriber")
    parser.add_argument("--qos-reliability", choices=("reliable", "best_effort"), default="reliable")
    parser.add_argument("--qos-depth", type=int, default=PLAYBACK_DEPTH)


def main(args: argparse.Namespace) -> int:
    if args.rate <= 0:
        print(f"ddrnet-ros play: error: --rate must be positive, got {args.rate}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # finish the current message, then leave cleanly
        signal.signal(signum, lambda *_: stop.set())
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = Node("bag_player")
    try:
        player = BagPlayer(node, args.bag, args.rate, args.loop, args.clock, args.topics,
                           args.qos_reliability, args.qos_depth)
        if args.wait_for_subscribers > 0 and not player.wait_for_subscribers(args.wait_for_subscribers):
            node.get_logger().warning(f"no subscriber on some topics after {args.wait_for_subscribers:g} s; "
                                      "playing anyway")
        if not stop.wait(max(0.0, args.start_delay)):
            stats = player.play(stop)
            if not player.wait_for_delivery(DELIVERY_TIMEOUT_S):
                node.get_logger().warning(f"some subscribers had not acknowledged every message after "
                                          f"{DELIVERY_TIMEOUT_S:g} s")
            print(f"played {stats.total} messages ({', '.join(f'{t}: {n}' for t, n in stats.published.items())}) "
                  f"in {stats.wall_time_s:.1f} s, worst lag {stats.max_lag_ms:.1f} ms", flush=True)
        return 0
    except (BagError, ValueError) as exc:
        print(f"ddrnet-ros play: error: {exc}", file=sys.stderr)
        return 1
    finally:
        node.destroy_node()
        rclpy.shutdown()
