"""Image -> network input: where the image lands in the network's frame, and its normalisation.

Geometry (one :class:`FramePlan` per input size): the image is resized to ``resized`` (only
when a network ``input_size`` is configured) and placed at the **top-left** corner of a
``network`` frame whose sides are multiples of 64 (``model.ALIGNED_MULTIPLE``: the network's branches
line up only then); the rest is padding (zeros after normalisation, i.e. the ImageNet mean
colour). Placing the image at the origin keeps the network's grids anchored at the image's
corner, so undoing the geometry is a crop at the origin followed by the inverse resize (see
:mod:`ddrnet_ros.engine.postprocess`).

Normalisation is the official evaluation's: RGB scaled to 0..1, minus the ImageNet mean,
divided by the ImageNet std. Resizing is bilinear with align_corners=False on the float image,
the same convention the postprocessing inverts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ddrnet_ros.model import INPUT_MULTIPLE, round_up

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: RGB uint8 colour that normalises to (almost) zero: what padded image pixels are filled with
#: wherever a frame is made of uint8 pixels (training crops, uint8 backends).
PAD_COLOR = tuple(int(round(m * 255)) for m in IMAGENET_MEAN)
CHANNEL_ORDERS = ("rgb", "bgr")


@dataclass(frozen=True)
class FramePlan:
    """Where an ``image`` (height, width) sits in the ``network`` input frame.

    ``resized`` is the image's size inside the frame; ``network`` is the frame, multiples of 64,
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


def plan_frame(height: int, width: int, input_size: tuple[int, int] | None = None,
               keep_aspect: bool = True, pad_to_input_size: bool = False) -> FramePlan:
    """The frame plan for an image of ``height`` x ``width``.

    No ``input_size``: the image keeps its size. With it, the image is stretched to exactly
    ``input_size``, or (``keep_aspect``) scaled by the largest factor that fits. A scaled image of
    another aspect then fills a frame trimmed to its own size: a 2:1 camera in a 768x1024
    ``input_size`` runs at 512x1024, not at 768x1024 with a third of the pixels padding, which
    costs time and accuracy (the network never saw such bands in training).
    ``pad_to_input_size`` keeps the frame at ``input_size`` instead (one static shape whatever the
    aspect). Either way the frame's sides are rounded up to multiples of 64, padded at the
    bottom/right: a 720x960 image runs in a 768x960 frame, where its branches align.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image of size {height}x{width} has no pixels")
    if input_size is None:
        return FramePlan((height, width), (height, width), _aligned((height, width)))
    net_h, net_w = int(input_size[0]), int(input_size[1])
    if not keep_aspect:
        return FramePlan((height, width), (net_h, net_w), _aligned((net_h, net_w)))
    scale = min(net_h / height, net_w / width)
    resized = (min(net_h, max(1, round(height * scale))), min(net_w, max(1, round(width * scale))))
    return FramePlan((height, width), resized, _aligned((net_h, net_w) if pad_to_input_size else resized))


def _aligned(size: tuple[int, int]) -> tuple[int, int]:
    """The frame a content of ``size`` runs in: both sides rounded up to multiples of 64."""
    return round_up(size[0]), round_up(size[1])


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
    (it is never touched, so zero-initialising the frame once is enough). Works on any device
    and never reads from host memory per frame: channels are picked with ``select`` (a view),
    not with an index list (which torch copies from the host to the device each time).
    The arithmetic is float32 whatever ``frame``'s dtype: an fp16/bf16 frame gets the float32
    result rounded once, not the product of constants already rounded to 8 or 11 bits.
    """
    scale, shift = normalisation_on(frame.device, torch.float32)
    planes = _image_planes(image, plan)
    rh, rw = plan.resized
    target = frame[0, :, :rh, :rw]
    for c, src in enumerate(rgb_channel_index(channel_order)):  # one channel at a time: no 3-channel temporary
        _normalise_into(target[c], planes[src], scale[c], shift[c])


def _image_planes(image: torch.Tensor, plan: FramePlan) -> torch.Tensor:
    """(3, rh, rw) planes in the image's own channel order: a uint8 view, or float32 when resized."""
    chw = image.permute(2, 0, 1)
    if not plan.needs_resize:
        return chw
    resized = F.interpolate(chw.unsqueeze(0).to(torch.float32), size=plan.resized, mode="bilinear",
                            align_corners=False)
    return resized[0]


def _normalise_into(out: torch.Tensor, plane: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> None:
    """``out = plane * scale - shift`` in float32 (0-dim float32 constants), rounded once into ``out``."""
    if out.dtype == torch.float32:
        torch.mul(plane, scale, out=out)  # straight into the frame: no temporary
        out.sub_(shift)
    else:
        out.copy_(torch.mul(plane, scale).sub_(shift))


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


def normalisation_on(device: torch.device | str, dtype: torch.dtype = torch.float32,
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`normalisation` as tensors on ``device``, made once and then shared (read-only).

    :func:`fill_network_input` asks for float32 whatever the frame's dtype (see there).
    """
    return _NORM_CACHE.get(torch.device(device), dtype)


def normalise_numpy(image_rgb: np.ndarray) -> np.ndarray:
    """Reference normalisation in numpy (HxWx3 uint8 RGB -> 3xHxW float32), for tests and export checks."""
    x: np.ndarray = image_rgb.astype(np.float32) / 255.0
    x = (x - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))
