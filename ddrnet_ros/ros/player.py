"""``ddrnet-ros play``: publish a rosbag2's messages in real time, since rosbag2's player is not installable here.

Messages are published as the bag stores them (their CDR bytes, no deserialisation), at the
times the bag recorded them scaled by ``rate``, optionally looping and publishing ``/clock``
with the bag's time so that nodes using ``use_sim_time`` follow the bag. The QoS is rosbag2's
default for playback: reliable, volatile, keep last 10.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from ddrnet_ros.data.bags import BagError, BagReader

#: rosbag2's default playback QoS: reliable, volatile, keep last 10.
PLAYBACK_DEPTH = 10
#: /clock rate while waiting for the next message, as rosbag2's ``--clock`` default.
DEFAULT_CLOCK_HZ = 40.0
#: How long `ddrnet-ros play` waits at the end for reliable subscribers to acknowledge everything.
DELIVERY_TIMEOUT_S = 10.0


def playback_profile(reliability: str = "reliable", depth: int = PLAYBACK_DEPTH) -> QoSProfile:
    policy = ReliabilityPolicy.RELIABLE if reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=policy,
                      durability=DurabilityPolicy.VOLATILE)


def message_class(msgtype: str) -> type:
    """``sensor_msgs/msg/Image`` -> the rclpy message class ``sensor_msgs.msg.Image``."""
    package, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


@dataclass
class PlaybackStats:
    """What one playback did."""

    published: dict[str, int] = field(default_factory=dict)
    loops: int = 0
    wall_time_s: float = 0.0
    max_lag_ms: float = 0.0  # worst delay of a publish behind its schedule

    @property
    def total(self) -> int:
        return sum(self.published.values())


class BagPlayer:
    """Publishes a bag's topics on ``node`` on the bag's schedule (scaled by ``rate``)."""

    def __init__(self, node: Node, bag_path: str | Path, rate: float = 1.0, loop: bool = False,
                 clock_hz: float | None = None, topics: Iterable[str] | None = None,
                 reliability: str = "reliable", depth: int = PLAYBACK_DEPTH) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.node = node
        self.bag_path = Path(bag_path)
        self.rate = rate
        self.loop = loop
        self.clock_hz = clock_hz
        with BagReader(self.bag_path) as bag:  # check the bag and topics now, not when play() starts
            wanted = list(topics) if topics else list(bag.topics)
            for topic in wanted:
                if topic not in bag.topics:
                    raise BagError(f"topic {topic} is not in bag {self.bag_path}; its topics are: "
                                   f"{bag.describe_topics()}")
            self.summaries = {t: bag.topics[t] for t in wanted}
        profile = playback_profile(reliability, depth)
        self.publishers: dict[str, Any] = {}
        for topic, summary in self.summaries.items():
            try:
                cls = message_class(summary.msgtype)
            except (ImportError, AttributeError, ValueError):
                node.get_logger().warning(f"skipping {topic}: message type {summary.msgtype} is not installed")
                continue
            self.publishers[topic] = node.create_publisher(cls, topic, profile)
        if not self.publishers:
            raise BagError(f"none of the topics of bag {self.bag_path} can be published")
        self.clock_publisher = None
        if clock_hz:
            from rosgraph_msgs.msg import Clock

            self._clock_type = Clock
            self.clock_publisher = node.create_publisher(Clock, "/clock", 10)

    def wait_for_subscribers(self, timeout_s: float, topics: Iterable[str] | None = None) -> bool:
        """Wait until every (or each named) topic has a subscriber: messages sent before are lost."""
        names = list(topics) if topics else list(self.publishers)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(self.publishers[t].get_subscription_count() > 0 for t in names):
                return True
            time.sleep(0.02)
        return False

    def play(self, stop: threading.Event | None = None,
             on_publish: Callable[[str, int], None] | None = None) -> PlaybackStats:
        """Publish until the bag ends (or, looping, until ``stop`` is set); blocks."""
        stop = stop or threading.Event()
        stats = PlaybackStats(published={t: 0 for t in self.publishers})
        started = time.monotonic()
        while not stop.is_set():
            self._play_once(stop, stats, on_publish)
            stats.loops += 1
            if not self.loop:
                break
        stats.wall_time_s = time.monotonic() - started
        return stats

    def _play_once(self, stop: threading.Event, stats: PlaybackStats,
                   on_publish: Callable[[str, int], None] | None) -> None:
        with BagReader(self.bag_path) as bag:
            bag_start = bag.start_time_ns
            wall_start = time.monotonic()
            next_clock = wall_start
            for topic, _, log_time, raw in bag.raw_messages(self.publishers):
                due = wall_start + (log_time - bag_start) / 1e9 / self.rate
                while True:  # sleep until due, keeping /clock going meanwhile
                    now = time.monotonic()
                    if self.clock_publisher is not None and now >= next_clock:
                        assert self.clock_hz  # the clock publisher exists only with clock_hz
                        self._publish_clock(bag_start + round((min(now, due) - wall_start) * self.rate * 1e9))
                        next_clock = now + 1.0 / self.clock_hz
                    if now >= due or stop.is_set():
                        break
                    wake = due if self.clock_publisher is None else min(due, next_clock)
                    stop.wait(max(0.0, wake - now))
                if stop.is_set():
                    return
                if self.clock_publisher is not None:
                    self._publish_clock(log_time)
                self.publishers[topic].publish(bytes(raw))
                stats.published[topic] += 1
                stats.max_lag_ms = max(stats.max_lag_ms, (time.monotonic() - due) * 1000.0)
                if on_publish is not None:
                    on_publish(topic, log_time)

    def wait_for_delivery(self, timeout_s: float) -> bool:
        """Block until every reliable subscriber acknowledged all played messages (or ``timeout_s``):
        a player that exits right after its last publish would otherwise lose what is in flight."""
        deadline = time.monotonic() + timeout_s
        publishers = [*self.publishers.values(), *([self.clock_publisher] if self.clock_publisher else [])]
        return all(publisher.wait_for_all_acked(Duration(seconds=max(0.0, deadline - time.monotonic())))
                   for publisher in publishers)

    def _publish_clock(self, bag_time_ns: int) -> None:
        message = self._clock_type()
        message.clock.sec, message.clock.nanosec = divmod(int(bag_time_ns), 1_000_000_000)
        assert self.clock_publisher is not None  # called only when there is one
        self.clock_publisher.publish(message)
