"""Failures after which an engine cannot serve another frame.

Most per-frame errors are the frame's own (a bad image, one odd input) and a caller skips the
frame. An :class:`EngineFault` says the opposite: the device or runtime under the engine is
broken (a sticky CUDA error, a lost device), every later frame would fail the same way, and a
caller that keeps skipping frames would drop its whole input silently while looking alive.
Callers stop instead (the ROS node fails its lifecycle and exits non-zero).
"""

from __future__ import annotations


class EngineFault(RuntimeError):
    """The engine's device or runtime is unusable from now on; the original error is ``__cause__``."""
