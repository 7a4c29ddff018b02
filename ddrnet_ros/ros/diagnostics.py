"""Per-camera counters and their /diagnostics status.

The subscription callback and the inference worker update a :class:`CameraStats` from different
threads; a wall-clock timer takes one window from it about once a second and publishes it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from ddrnet_ros.evaluation.metrics import LatencyStats


@dataclass
class _Window:
    received: int = 0
    published: int = 0
    dropped: int = 0
    bad_input: int = 0
    failed: int = 0
    inference_ms: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    #: the outputs published in the window ("labels", "color/compressed", ...), in first-seen order
    outputs: dict[str, None] = field(default_factory=dict)
    #: frames per forward pass of each published frame (1: alone; more: a cross-camera batch)
    batch_sizes: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class CameraReport:
    """One diagnostics window of one camera, plus the totals since activation."""

    camera: str
    seconds: float
    received: int
    published: int
    dropped: int
    bad_input: int
    failed: int
    inference: LatencyStats
    latency: LatencyStats
    total_received: int
    total_published: int
    total_dropped: int
    total_bad_input: int
    total_failed: int
    #: the outputs published in the window, e.g. ("labels", "color"): lazy ones only while someone reads
    outputs: tuple[str, ...] = ()
    #: frames per forward pass, per published frame of the window
    batch_sizes: tuple[int, ...] = ()

    @property
    def batch_size_mean(self) -> float:
        return sum(self.batch_sizes) / len(self.batch_sizes) if self.batch_sizes else float("nan")

    @property
    def input_rate_hz(self) -> float:
        return self.received / self.seconds if self.seconds > 0 else 0.0

    @property
    def output_rate_hz(self) -> float:
        return self.published / self.seconds if self.seconds > 0 else 0.0


class CameraStats:
    """Thread-safe counters of one camera: a current window and running totals."""

    def __init__(self, camera: str) -> None:
        self.camera = camera
        self._lock = threading.Lock()
        self._window = _Window()
        self._totals = _Window()
        self._window_start = time.monotonic()

    def _count(self, attr: str) -> None:
        with self._lock:
            setattr(self._window, attr, getattr(self._window, attr) + 1)
            setattr(self._totals, attr, getattr(self._totals, attr) + 1)

    def received(self) -> None:
        self._count("received")

    def dropped(self) -> None:
        """A frame was superseded by a newer one before inference started on it."""
        self._count("dropped")

    def bad_input(self) -> None:
        self._count("bad_input")

    def failed(self) -> None:
        """A well-formed frame the engine could not segment (the node's fault, not the camera's)."""
        self._count("failed")

    def published(self, inference_ms: float, latency_ms: float, outputs: Iterable[str] = (),
                  batch_size: int = 1) -> None:
        """A frame was served; ``outputs`` are the topics (relative names) it was published on,
        ``batch_size`` the frames that shared its forward pass."""
        with self._lock:
            self._window.batch_sizes.append(batch_size)
            self._window.published += 1
            self._totals.published += 1
            self._window.inference_ms.append(inference_ms)
            self._window.latency_ms.append(latency_ms)
            self._window.outputs.update(dict.fromkeys(outputs))

    def take_report(self) -> CameraReport:
        """Close the current window and return it; the next window starts now."""
        now = time.monotonic()
        with self._lock:
            w, t = self._window, self._totals
            seconds = now - self._window_start
            self._window, self._window_start = _Window(), now
            totals = (t.received, t.published, t.dropped, t.bad_input, t.failed)
        return CameraReport(self.camera, seconds, w.received, w.published, w.dropped, w.bad_input, w.failed,
                            LatencyStats.from_samples(w.inference_ms), LatencyStats.from_samples(w.latency_ms),
                            *totals, outputs=tuple(w.outputs), batch_sizes=tuple(w.batch_sizes))


def _ms(value: float) -> str:
    return "nan" if value != value else f"{value:.1f}"


def camera_status(report: CameraReport, node_name: str, device: str, engine: str = "",
                  engine_fault: str | None = None) -> DiagnosticStatus:
    """The DiagnosticStatus of one camera's window: ERROR when the engine failed (for good, or on some
    frames), WARN on bad input, STALE when no image arrived (the camera stopped, or never started)."""
    if engine_fault is not None:
        level, message = DiagnosticStatus.ERROR, f"engine fault, node stopping: {engine_fault}"
    elif report.failed:
        level, message = DiagnosticStatus.ERROR, f"inference failed on {report.failed} frame(s)"
    elif report.bad_input:
        level, message = DiagnosticStatus.WARN, f"{report.bad_input} bad input frame(s) skipped"
    elif report.received == 0:
        level, message = DiagnosticStatus.STALE, "no images received"
    else:
        level, message = DiagnosticStatus.OK, (f"{report.input_rate_hz:.1f} Hz in, {report.output_rate_hz:.1f} Hz out, "
                                               f"{report.dropped} dropped")
    values = {
        "input_rate_hz": f"{report.input_rate_hz:.2f}",
        "output_rate_hz": f"{report.output_rate_hz:.2f}",
        "dropped": str(report.dropped),
        "dropped_total": str(report.total_dropped),
        "bad_input": str(report.bad_input),
        "bad_input_total": str(report.total_bad_input),
        "failed": str(report.failed),
        "failed_total": str(report.total_failed),
        "received_total": str(report.total_received),
        "published_total": str(report.total_published),
        "inference_p50_ms": _ms(report.inference.p50_ms),
        "inference_p95_ms": _ms(report.inference.p95_ms),
        "latency_p50_ms": _ms(report.latency.p50_ms),
        "latency_p95_ms": _ms(report.latency.p95_ms),
        "device": device,
        "engine": engine,  # backend and precision that run, e.g. "openvino bf16"
        "outputs": ", ".join(report.outputs),  # what was rendered and published in the window
        "batch_size_mean": "nan" if not report.batch_sizes else f"{report.batch_size_mean:.2f}",
        "batch_size_max": str(max(report.batch_sizes, default=0)),
    }
    return DiagnosticStatus(level=level, name=f"{node_name}: {report.camera}", message=message,
                            hardware_id=device, values=[KeyValue(key=k, value=v) for k, v in values.items()])
