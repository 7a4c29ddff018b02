"""What a caller asks of the engine for one frame, so that a batch of cameras can carry it together."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FrameRequest:
    """One camera's uint8 HxWx3 image and the outputs wanted for it (labels always come back).

    ``stream_key`` names the caller's buffers (and CUDA stream) on the single-frame path; a batch
    runs on its own stream, so there it only tells the frames apart in logs.
    """

    image: np.ndarray
    channel_order: str = "rgb"
    want_color: bool = False
    want_overlay: bool = False
    want_confidence: bool = False
    stream_key: str = "default"
