"""Whether a lazy output (colour, overlay, confidence, the compressed forms) has a reader worth rendering for.

A subscription count is not enough: DDS unmatches a reader whose process died (kill -9, a crash)
only when that process's participant lease ends, 20 s with Fast DDS defaults. The lease is
announced by the reader's own process, so the node cannot shorten it for others (its profile,
fastdds_large_images.xml, sets 3 s for the processes that load it). Liveliness and deadline QoS do
not help either: they are about writers, a publisher learns nothing from them about its readers.

What the node can see sooner is acknowledgement: a live reliable reader acknowledges each sample
within a fraction of a second (at most 0.26 s measured here, 100 Hz, 2 cores under full load),
even while its application is busy, because the DDS threads do it. So when the *only* reader of a
reliable output has left the last sample unacknowledged for :data:`UNACKED_READER_S`, the node
stops rendering that output until the reader acknowledges (it was only slow) or DDS unmatches it
(it was dead). With several readers it cannot tell which one is behind, and best-effort readers
never acknowledge, so then the subscription count decides, as before, until the lease ends.
"""

from __future__ import annotations

from typing import Protocol

from rclpy.duration import Duration

#: Seconds the only reliable reader of an output may leave a sample unacknowledged before the node
#: stops rendering that output for it (a live reader here: 0.26 s at most).
UNACKED_READER_S = 1.0

_NO_WAIT = Duration(seconds=0)


class OutputPublisher(Protocol):
    """What :class:`ReaderWatch` needs of an rclpy publisher (a fake in unit tests)."""

    @property
    def topic_name(self) -> str: ...

    def get_subscription_count(self) -> int: ...

    def wait_for_all_acked(self, timeout: Duration = ...) -> bool: ...


class ReaderWatch:
    """Decides, frame by frame, whether one lazy output publisher is worth rendering for.

    Called from the inference worker only; ``now`` is a monotonic time in seconds.
    """

    def __init__(self, publisher: OutputPublisher, unacked_limit_s: float = UNACKED_READER_S) -> None:
        self.publisher = publisher
        self.unacked_limit_s = unacked_limit_s
        #: True while the only reader has not acknowledged for unacked_limit_s (rendering is paused)
        self.paused = False
        self._readers = 0
        self._unacked_since: float | None = None

    def wanted(self, now: float) -> bool:
        """Render this output now? Someone subscribes, and not only a reader that stopped acknowledging."""
        readers = self.publisher.get_subscription_count()
        if readers != self._readers:  # a reader came or went: judge the new set afresh
            self._readers, self._unacked_since = readers, None
        self.paused = readers == 1 and self._unacked_for(now) >= self.unacked_limit_s
        return readers > 0 and not self.paused

    def _unacked_for(self, now: float) -> float:
        """Seconds the publisher has had an unacknowledged sample, as seen at the calls so far.

        Best-effort publishers and readers count as acknowledged: nothing is owed to them."""
        if self.publisher.wait_for_all_acked(_NO_WAIT):
            self._unacked_since = None
            return 0.0
        if self._unacked_since is None:
            self._unacked_since = now
        return now - self._unacked_since
