"""ReaderWatch: when a lazy output is rendered, on a fake publisher (readers and acknowledgement set by hand).

Over real DDS, with a subscriber process killed: test_dead_readers.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from ddrnet_ros.ros.readers import UNACKED_READER_S, ReaderWatch


@dataclass
class FakePublisher:
    readers: int = 0
    acked: bool = True
    topic_name: str = "/segmentation/color"

    def get_subscription_count(self) -> int:
        return self.readers

    def wait_for_all_acked(self, timeout=None) -> bool:
        return self.acked


def test_an_output_is_rendered_only_while_someone_subscribes():
    publisher = FakePublisher()
    watch = ReaderWatch(publisher)
    assert not watch.wanted(0.0)
    publisher.readers = 1
    assert watch.wanted(0.1)
    publisher.readers = 0
    assert not watch.wanted(0.2) and not watch.paused


def test_a_reader_that_keeps_acknowledging_is_always_served():
    publisher = FakePublisher(readers=1)
    watch = ReaderWatch(publisher)
    assert all(watch.wanted(t * 0.5) for t in range(100))


def test_the_only_reader_silent_for_the_limit_pauses_the_output_until_it_acknowledges():
    publisher = FakePublisher(readers=1, acked=False)
    watch = ReaderWatch(publisher)
    assert watch.wanted(10.0)  # the clock starts at the first unacknowledged look
    assert watch.wanted(10.0 + UNACKED_READER_S - 0.01)
    assert not watch.wanted(10.0 + UNACKED_READER_S) and watch.paused
    assert not watch.wanted(30.0)  # still silent: no frame rendered for it
    publisher.acked = True  # only slow after all
    assert watch.wanted(30.1) and not watch.paused


def test_a_dead_reader_unmatched_by_dds_ends_the_pause_and_a_new_reader_starts_afresh():
    publisher = FakePublisher(readers=1, acked=False)
    watch = ReaderWatch(publisher)
    watch.wanted(0.0)
    assert not watch.wanted(5.0)
    publisher.readers = 0  # the lease ended
    assert not watch.wanted(20.0) and not watch.paused
    publisher.readers = 1  # a new reader, nothing owed to it yet... but the old samples still unacked
    assert watch.wanted(20.5)
    assert watch.wanted(20.5 + UNACKED_READER_S - 0.01)


def test_with_several_readers_the_count_decides_because_the_silent_one_is_unknown():
    publisher = FakePublisher(readers=2, acked=False)
    watch = ReaderWatch(publisher)
    assert watch.wanted(0.0) and watch.wanted(60.0) and not watch.paused
    publisher.readers = 1  # the other left: the remaining one is judged from now on
    assert watch.wanted(61.0)
    assert not watch.wanted(61.0 + UNACKED_READER_S)
