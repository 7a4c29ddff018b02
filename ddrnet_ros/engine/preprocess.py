"""Image -> network input: where the image lands in the network's frame, and its normalisation.

Geometry (one :class:`FramePlan` per input size): the image is resized to ``resized`` (only
when a network ``input_size`` is configured) and placed at the **top-left** corner of a
``network`` frame whose sides are multiples of 8; the rest is padding (zeros after
normalisation, i.e. the ImageNet mean colour). Placing the image at the origin keeps the
network's 1/8 grid anchored at the image's corner, so undoing the geometry is a crop at the
origin followed by the inverse resize (see :mod:`ddrnet_ros.engine.postprocess`).

Normalisation is the official evaluation's: RGB scaled to 0..1, minus the ImageNet mean,
divided by the ImageNet std. Resizing is bilinear with align_corners=False on the float image,
the same convention the postprocessing inverts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ddrnet_ros.model import INPUT_MULTIPLE

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CHANNEL_ORDERS = ("rgb", "bgr")


@dataclass(frozen=True)
class FramePlan:
    """Where an ``image`` (height, width) sits in the ``network`` input frame.

    ``resized`` is the image's size inside the frame; ``network`` is the frame, multiples of 8,
    at least ``resized`` on both sides. Rows/columns beyond ``resized`` are padding.
    """

    image: tuple[int, int]
    resized: tuple[int, int]
    network: tuple[int, int]

    @property
    def needs_resize(self) -> bool:
        return self.resized != self.image

    @property
    def logits_size(self) -> tuple[int, int]:
        return self.network[0] // INPUT_MULTIPLE, self.network[1] // INPUT_MULTIPLE


def round_up(value: int, multiple: int = INPUT_MULTIPLE) -> int:
    return -(-value // multiple) * multiple


def plan_frame(height: int, width: int, input_size: tuple[int, int] | None = None,
               keep_aspect: bool = True) -> FramePlan:
    """The frame plan for an image of ``height`` x ``width``.

    No ``input_size``: the image keeps its size and is padded to multiples of 8. With it: the
    network runs at exactly ``input_size``; the image is stretched to it, or (``keep_aspect``)
    scaled by the largest factor that fits and padded at the bottom/right.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image of size {height}x{width} has no pixels")
    if input_size is None:
        return FramePlan((height, width), (height, width), (round_up(height), round_up(width)))
    net_h, net_w = int(input_size[0]), int(input_size[1])
    if not keep_aspect:
        return FramePlan((height, width), (net_h, net_w), (net_h, net_w))
    scale = min(net_h / height, net_w / width)
    resized = (min(net_h, max(1, round(height * scale))), min(net_w, max(1, round(width * scale))))
    return FramePlan((height, width), resized, (net_h, net_w))


def normalisation() -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (scale, shift) in RGB order, (3,) float32: ``x_net = pixel * scale - shift``."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32)
    return 1.0 / (255.0 * std), mean / std


def rgb_channel_index(channel_order: str) -> tuple[int, int, int]:
    """Indices of R, G, B in an image of ``channel_order``."""
    if channel_order == "rgb":
        return 0, 1, 2
    if channel_order == "bgr":
        return 2, 1, 0
    raise ValueError(f"channel_order must be one of {', '.join(CHANNEL_ORDERS)}, got {channel_order!r}")


def fill_network_input(frame: torch.Tensor, image: torch.Tensor, plan: FramePlan, channel_order: str) -> None:
    """Write the normalised, resized ``image`` (HxWx3 uint8 tensor) into ``frame`` (1x3xHnxWn).

    Only the image area is written: the padding of a reused ``frame`` must already be zero
    (it is never touched, so zero-initialising the frame once is enough). Works on any device.
    """
    scale, shift = normalisation_on(frame.device, frame.dtype)
    order = rgb_channel_index(channel_order)
    rh, rw = plan.resized
    if not plan.needs_resize:
        target = frame[0, :, :rh, :rw]
        for c, src in enumerate(order):  # channel by channel: no full-size float temporary
            torch.mul(image[:, :, src], scale[c], out=target[c])
        target.sub_(shift.view(3, 1, 1))
        return
    chw = image.permute(2, 0, 1)[list(order)].to(torch.float32).unsqueeze(0)
    resized = F.interpolate(chw, size=(rh, rw), mode="bilinear", align_corners=False)
    resized = resized.mul_(scale.view(1, 3, 1, 1).float()).sub_(shift.view(1, 3, 1, 1).float())
    frame[:, :, :rh, :rw].copy_(resized)


class _NormCache:
    """(scale, shift) tensors per (device, dtype), made once."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}

    def get(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        key = (str(device), dtype)
        if key not in self._cache:
            scale, shift = normalisation()
            self._cache[key] = (scale.to(device=device, dtype=dtype), shift.to(device=device, dtype=dtype))
        return self._cache[key]


_NORM_CACHE = _NormCache()


def normalisation_on(device: torch.device | str, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`normalisation` as tensors on ``device``, made once and then shared (read-only)."""
    return _NORM_CACHE.get(torch.device(device), dtype)


def normalise_numpy(image_rgb: np.ndarray) -> np.ndarray:
    """Reference normalisation in numpy (HxWx3 uint8 RGB -> 3xHxW float32), for tests and export checks."""
    x: np.ndarray = image_rgb.astype(np.float32) / 255.0
    x = (x - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))
