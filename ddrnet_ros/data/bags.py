"""rosbag2 bags of camera frames and label images, read and written with ``rosbags``.

No ROS installation is needed: ``rosbags`` reads and writes sqlite3 and mcap storage and
serialises messages to the same CDR bytes a ROS 2 publisher sends, with the message
definitions of its ROS 2 Kilted type store. Every problem with a bag surfaces as a
:class:`BagError` whose text is one line a user can act on. Writers build the bag in a
hidden sibling directory and rename it into place only when it is complete, so a crash
never leaves something that looks like a finished bag.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import struct
import tempfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from ..encodings import ImageDecodeError, decode_compressed, decode_image, encode_compressed, encode_image, to_rgb

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)
#: Encodings accepted for label images: one byte per pixel holding the class id.
LABEL_ENCODINGS = ("mono8", "8uc1")
STORAGES: dict[str, StoragePlugin] = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
Storage = Literal["sqlite3", "mcap"]

#: What rosbag2 records for an ordinary publisher: reliable, volatile, keep last 10.
DEFAULT_OFFERED_QOS = Qos(QosHistory.KEEP_LAST, 10, QosReliability.RELIABLE, QosDurability.VOLATILE,
                          QosTime(0, 0), QosTime(0, 0), QosLiveliness.AUTOMATIC, QosTime(0, 0), False)


class BagError(RuntimeError):
    """A bag cannot be used as asked; the text is one line that says why."""


@lru_cache(maxsize=1)
def typestore():
    """The ROS 2 Kilted message definitions (sensor_msgs, std_msgs, ...) shared by readers and writers."""
    return get_typestore(Stores.ROS2_KILTED)


@dataclass(frozen=True)
class TopicSummary:
    name: str
    msgtype: str
    count: int


@dataclass(frozen=True)
class StampedImage:
    """One decoded image message: RGB HxWx3 for camera frames, HxW class ids for labels."""

    stamp_ns: int  # header stamp
    frame_id: str
    pixels: np.ndarray
    log_time_ns: int  # when the bag recorded it


def stamp_to_ns(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


class BagReader:
    """An open rosbag2 (directory, ``.db3`` or ``.mcap``) whose errors are :class:`BagError`."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f"bag {self.path} does not exist")
        try:
            self._reader = Reader(self.path)
            self._reader.open()
        except Exception as exc:  # rosbags raises many kinds for damaged files
            raise BagError(f"cannot open bag {self.path}: {_one_line(exc)}") from None
        self.topics: dict[str, TopicSummary] = {
            name: TopicSummary(name, info.msgtype or "?", info.msgcount)
            for name, info in self._reader.topics.items()
        }

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._reader.is_open:
            self._reader.close()

    @property
    def start_time_ns(self) -> int:
        return int(self._reader.start_time)

    @property
    def duration_ns(self) -> int:
        return int(self._reader.duration)

    def describe_topics(self) -> str:
        """``/a (sensor_msgs/msg/Image, 60 msgs), /b (...)``: for error messages."""
        if not self.topics:
            return "none"
        return ", ".join(f"{t.name} ({t.msgtype}, {t.count} msgs)" for t in self.topics.values())

    def require_topic(self, topic: str, msgtypes: Iterable[str] = IMAGE_TYPES) -> TopicSummary:
        """The topic's summary, or a :class:`BagError` naming the topics the bag does have."""
        summary = self.topics.get(topic)
        if summary is None:
            raise BagError(f"topic {topic} is not in bag {self.path}; its topics are: {self.describe_topics()}")
        allowed = tuple(msgtypes)
        if summary.msgtype not in allowed:
            raise BagError(f"topic {topic} in bag {self.path} has type {summary.msgtype}; "
                           f"expected {' or '.join(allowed)}")
        return summary

    def raw_messages(self, topics: Iterable[str] | None = None) -> Iterator[tuple[str, str, int, bytes]]:
        """``(topic, msgtype, log_time_ns, cdr_bytes)`` in log-time order, optionally for some topics."""
        wanted = None if topics is None else set(topics)
        connections = [c for c in self._reader.connections if wanted is None or c.topic in wanted]
        if not connections:
            return
        try:
            for connection, log_time, raw in self._reader.messages(connections=connections):
                yield connection.topic, connection.msgtype, int(log_time), raw
        except (ReaderError, sqlite3.Error, OSError, ValueError, KeyError, EOFError, struct.error) as exc:
            raise BagError(f"bag {self.path} is damaged: {_one_line(exc)}") from None

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[tuple[str, int, Any]]:
        """``(topic, log_time_ns, message)`` deserialised with the Kilted type store."""
        store = typestore()
        for topic, msgtype, log_time, raw in self.raw_messages(topics):
            try:
                message = store.deserialize_cdr(raw, msgtype)
            except Exception as exc:
                raise BagError(f"message on {topic} at {log_time} ns in bag {self.path} "
                               f"cannot be deserialised as {msgtype}: {_one_line(exc)}") from None
            yield topic, log_time, message

    def images(self, topic: str) -> Iterator[StampedImage]:
        """Camera frames of ``topic`` (Image or CompressedImage) as RGB uint8."""
        self.require_topic(topic)
        for _, log_time, message in self.messages([topic]):
            yield _stamped(message, self._decode_rgb(topic, message), log_time)

    def labels(self, topic: str) -> Iterator[StampedImage]:
        """Label images of ``topic`` (mono8 Image of class ids) as HxW uint8."""
        self.require_topic(topic, (IMAGE,))
        for _, log_time, message in self.messages([topic]):
            yield _stamped(message, self._decode_labels(topic, message), log_time)

    def labelled_images(self, image_topic: str, label_topic: str, pending_limit: int = 64
                        ) -> Iterator[tuple[StampedImage, StampedImage | None]]:
        """Camera frames with the label image of the same header stamp (None when it has none).

        Reads both topics in one pass; a frame whose label has not turned up after
        ``pending_limit`` further frames is given out without one. A label whose size differs
        from its frame is a :class:`BagError`.
        """
        self.require_topic(image_topic)
        self.require_topic(label_topic, (IMAGE,))
        waiting_images: OrderedDict[int, StampedImage] = OrderedDict()
        waiting_labels: OrderedDict[int, StampedImage] = OrderedDict()
        frame: StampedImage | None
        label: StampedImage | None
        for topic, log_time, message in self.messages([image_topic, label_topic]):
            stamp = stamp_to_ns(message.header.stamp)
            if topic == image_topic:
                frame = _stamped(message, self._decode_rgb(topic, message), log_time)
                label = waiting_labels.pop(stamp, None)
                if label is None:
                    waiting_images[stamp] = frame
                    while len(waiting_images) > pending_limit:
                        yield waiting_images.popitem(last=False)[1], None
                    continue
            else:
                label = _stamped(message, self._decode_labels(topic, message), log_time)
                frame = waiting_images.pop(stamp, None)
                if frame is None:
                    waiting_labels[stamp] = label
                    while len(waiting_labels) > pending_limit:
                        waiting_labels.popitem(last=False)
                    continue
            self._check_sizes(image_topic, label_topic, frame, label)
            # Frames older than this one that never found a label: give them out in order.
            while waiting_images and next(iter(waiting_images)) < stamp:
                yield waiting_images.popitem(last=False)[1], None
            yield frame, label
        for frame in waiting_images.values():
            yield frame, None

    def _check_sizes(self, image_topic: str, label_topic: str, frame: StampedImage, label: StampedImage) -> None:
        if frame.pixels.shape[:2] != label.pixels.shape[:2]:
            (h, w), (lh, lw) = frame.pixels.shape[:2], label.pixels.shape[:2]
            raise BagError(f"labels on {label_topic} are {lw}x{lh} but the images on {image_topic} are "
                           f"{w}x{h} (stamp {frame.stamp_ns} ns in bag {self.path})")

    def _decode_rgb(self, topic: str, message: Any) -> np.ndarray:
        try:
            if message.__msgtype__ == COMPRESSED_IMAGE:
                return to_rgb(decode_compressed(message.data, message.format))
            return to_rgb(decode_image(message.data, message.height, message.width, message.encoding,
                                       message.step, message.is_bigendian))
        except ImageDecodeError as exc:
            raise BagError(f"image on {topic} at stamp {stamp_to_ns(message.header.stamp)} ns "
                           f"in bag {self.path}: {exc}") from None

    def _decode_labels(self, topic: str, message: Any) -> np.ndarray:
        try:
            return decode_labels(message)
        except ImageDecodeError as exc:
            raise BagError(f"labels on {topic} at stamp {stamp_to_ns(message.header.stamp)} ns "
                           f"in bag {self.path}: {exc}") from None


def decode_labels(message: Any) -> np.ndarray:
    """HxW class ids (a view) of a label ``sensor_msgs/Image``, rosbags' or rclpy's; mono8 only."""
    if message.encoding.strip().lower() not in LABEL_ENCODINGS:
        raise ImageDecodeError(f"encoding {message.encoding!r} is not a label image; expected mono8 class ids")
    return decode_image(message.data, message.height, message.width, "mono8", message.step).pixels[:, :, 0]


def _stamped(message: Any, pixels: np.ndarray, log_time: int) -> StampedImage:
    return StampedImage(stamp_to_ns(message.header.stamp), message.header.frame_id, pixels, log_time)


class BagWriter:
    """Writes image topics to a new rosbag2 that appears at ``path`` only once it is complete.

    Use as a context manager: on a clean exit the bag is closed and renamed into place; on
    an exception the partial bag is deleted.
    """

    def __init__(self, path: str | os.PathLike, storage: Storage = "sqlite3", overwrite: bool = False) -> None:
        if storage not in STORAGES:
            raise BagError(f"unknown storage {storage!r}; choose one of {', '.join(STORAGES)}")
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise BagError(f"{self.path} already exists; choose another output path")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._staging = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.partial-", dir=self.path.parent))
        self._writer = Writer(self._staging / self.path.name, version=9, storage_plugin=STORAGES[storage])
        self._writer.open()
        self._connections: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def _connection(self, topic: str, msgtype: str) -> Any:
        connection = self._connections.get(topic)
        if connection is None:
            connection = self._writer.add_connection(topic, msgtype, typestore=typestore(),
                                                     offered_qos_profiles=[DEFAULT_OFFERED_QOS])
            self._connections[topic] = connection
            self.counts[topic] = 0
        elif connection.msgtype != msgtype:
            raise BagError(f"topic {topic} already holds {connection.msgtype}, not {msgtype}")
        return connection

    def write_message(self, topic: str, message: Any, log_time_ns: int) -> None:
        """Serialise a ``rosbags`` message object to CDR and append it."""
        msgtype = message.__msgtype__
        data = typestore().serialize_cdr(message, msgtype)
        self.write_raw(topic, msgtype, data, log_time_ns)

    def write_raw(self, topic: str, msgtype: str, cdr: bytes | memoryview, log_time_ns: int) -> None:
        self._writer.write(self._connection(topic, msgtype), int(log_time_ns), cdr)
        self.counts[topic] += 1

    def write_image(self, topic: str, pixels: np.ndarray, stamp_ns: int, frame_id: str,
                    encoding: str = "rgb8", log_time_ns: int | None = None) -> None:
        """Append a ``sensor_msgs/Image``: RGB HxWx3 or HxW (mono8 labels) uint8 pixels."""
        data, step = encode_image(pixels, encoding)
        height, width = pixels.shape[:2]
        message = typestore().types[IMAGE](
            header=_header(stamp_ns, frame_id), height=height, width=width, encoding=encoding,
            is_bigendian=0, step=step, data=np.frombuffer(data, np.uint8))
        self.write_message(topic, message, stamp_ns if log_time_ns is None else log_time_ns)

    def write_compressed(self, topic: str, pixels: np.ndarray, stamp_ns: int, frame_id: str,
                         format: str = "jpeg", quality: int = 90, log_time_ns: int | None = None) -> None:
        """Append a ``sensor_msgs/CompressedImage`` (jpeg or png) of RGB pixels."""
        data = encode_compressed(pixels, format, quality)
        message = typestore().types[COMPRESSED_IMAGE](
            header=_header(stamp_ns, frame_id), format=format, data=np.frombuffer(data, np.uint8))
        self.write_message(topic, message, stamp_ns if log_time_ns is None else log_time_ns)

    def commit(self) -> Path:
        """Close the bag and move it to ``path`` (replacing an old one only if ``overwrite``)."""
        self._writer.close()
        if self.path.exists():
            shutil.rmtree(self.path) if self.path.is_dir() else self.path.unlink()
        os.replace(self._staging / self.path.name, self.path)
        shutil.rmtree(self._staging, ignore_errors=True)
        return self.path

    def abort(self) -> None:
        """Drop everything written so far."""
        try:
            self._writer.close()
        except Exception:
            pass
        shutil.rmtree(self._staging, ignore_errors=True)


def _header(stamp_ns: int, frame_id: str) -> Any:
    types = typestore().types
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec),
                                         frame_id=frame_id)
