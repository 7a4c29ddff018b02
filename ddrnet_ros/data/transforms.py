"""Training augmentation and input normalisation for (RGB image, label map) pairs.

The augmentation is the paper's: random scale (0.5-2.0 by default), random crop with the
label padded by the ignore label, and random horizontal flip. Every random choice comes
from a ``numpy.random.Generator`` the caller passes in, so a sample's augmentation depends
only on (seed, epoch, index) and not on worker scheduling.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import cv2
import numpy as np
import torch

from ..classes import IGNORE_LABEL

# The engine decides the input normalisation; training must feed the network the same numbers.
from ..engine.preprocess import IMAGENET_MEAN, IMAGENET_STD, PAD_COLOR, plan_frame


def normalize(image_rgb: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 RGB -> 3xHxW float32 tensor, scaled to 0-1 then ImageNet mean/std."""
    mean = np.asarray(IMAGENET_MEAN, np.float32) * 255.0
    scale = 1.0 / (np.asarray(IMAGENET_STD, np.float32) * 255.0)
    chw = ((image_rgb.astype(np.float32) - mean) * scale).transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(chw))


def labels_to_tensor(labels: np.ndarray) -> torch.Tensor:
    """HxW uint8 label map -> HxW int64 tensor (what cross-entropy expects)."""
    return torch.from_numpy(np.ascontiguousarray(labels)).long()


def rescale(image: np.ndarray, labels: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Resize by ``factor``: bilinear for the image (half-pixel centres, like the engine's
    resize), nearest for the labels (ids never blend)."""
    height, width = labels.shape
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    if size == (width, height):
        return image, labels
    return (cv2.resize(image, size, interpolation=cv2.INTER_LINEAR),
            cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST))


def pad_bottom_right(image: np.ndarray, labels: np.ndarray, rows: int, cols: int,
                     ignore_label: int = IGNORE_LABEL) -> tuple[np.ndarray, np.ndarray]:
    """Add ``rows`` at the bottom and ``cols`` at the right, where the engine pads: the image with the
    ImageNet mean colour (zero after normalisation), labels with ``ignore_label`` (padding never
    trains a class). No padding asked: the pair comes back as it is."""
    if not rows and not cols:
        return image, labels
    return (cv2.copyMakeBorder(image, 0, rows, 0, cols, cv2.BORDER_CONSTANT, value=PAD_COLOR),
            cv2.copyMakeBorder(labels, 0, rows, 0, cols, cv2.BORDER_CONSTANT, value=ignore_label))


def random_crop(image: np.ndarray, labels: np.ndarray, crop: tuple[int, int], rng: np.random.Generator,
                ignore_label: int = IGNORE_LABEL) -> tuple[np.ndarray, np.ndarray]:
    """A ``crop`` (height, width) window at a random place; smaller inputs are padded first
    (:func:`pad_bottom_right`)."""
    crop_h, crop_w = crop
    height, width = labels.shape
    image, labels = pad_bottom_right(image, labels, max(crop_h - height, 0), max(crop_w - width, 0), ignore_label)
    height, width = labels.shape
    top = int(rng.integers(0, height - crop_h + 1))
    left = int(rng.integers(0, width - crop_w + 1))
    return image[top:top + crop_h, left:left + crop_w], labels[top:top + crop_h, left:left + crop_w]


def letterbox_pad(image: np.ndarray, labels: np.ndarray, network: tuple[int, int],
                  ignore_label: int = IGNORE_LABEL) -> tuple[np.ndarray, np.ndarray]:
    """Pad a pair at the bottom/right to the aspect of ``network`` (height, width), as the engine
    letterboxes a frame of another aspect into it with ``pad_to_input_size``: the image with the
    mean colour, labels with ``ignore_label``. A frame of the network's aspect comes back unchanged.

    Training then sees what such a network sees around a 2:1 frame in a 4:3 input, a band of
    padding, whose effect on the global context (DAPPM's pooled branches) cost ~2 points of mIoU
    on such frames (notes of issue #13). The engine's default trims that band away instead.
    """
    height, width = labels.shape
    plan = plan_frame(height, width, network)
    padded_h = max(height, round(height * network[0] / plan.resized[0]))
    padded_w = max(width, round(width * network[1] / plan.resized[1]))
    return pad_bottom_right(image, labels, padded_h - height, padded_w - width, ignore_label)


@dataclass(frozen=True)
class CameraAugmentation:
    """What real cameras do to a frame, each effect drawn with probability ``p``.

    Colour (brightness, contrast, saturation, hue), exposure curve (gamma), focus and motion
    (Gaussian blur), sensor noise and JPEG compression. A strength of 0 turns an effect off.
    Only the image changes: labels stay as they are.
    """

    p: float = 0.5
    brightness: float = 0.25       # multiply by 1 +- this
    contrast: float = 0.25         # blend with the mean grey by 1 +- this
    saturation: float = 0.3        # blend with the grey image by 1 +- this
    hue: float = 6.0               # shift hue by up to +- this many degrees
    gamma: float = 0.25            # exponent in [1 - this, 1 + this]
    blur: float = 1.2              # Gaussian sigma up to this (pixels)
    noise: float = 8.0             # Gaussian noise sigma up to this (grey levels)
    jpeg: int = 30                 # JPEG quality from this to 95; 0 = off

    @classmethod
    def off(cls) -> CameraAugmentation:
        return cls(p=0.0)

    def active(self) -> bool:
        return self.p > 0 and any(getattr(self, f.name) for f in fields(self) if f.name != "p")

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if not self.active():
            return image
        steps = [self._color, self._gamma, self._blur, self._noise, self._jpeg]
        draws = rng.random(len(steps))
        for step, draw in zip(steps, draws):
            if draw < self.p:
                image = step(image, rng)
        return image

    def _color(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out: np.ndarray = image.astype(np.float32)
        if self.brightness:
            out *= rng.uniform(1 - self.brightness, 1 + self.brightness)
        if self.contrast:
            out = (out - out.mean()) * rng.uniform(1 - self.contrast, 1 + self.contrast) + out.mean()
        if self.saturation:
            grey = out @ np.array([0.299, 0.587, 0.114], np.float32)
            out = (out - grey[..., None]) * rng.uniform(1 - self.saturation, 1 + self.saturation) + grey[..., None]
        out = np.clip(out, 0, 255).astype(np.uint8)
        if self.hue:
            hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)
            shift = int(round(rng.uniform(-self.hue, self.hue) / 2))  # OpenCV hue is 0..179 (2 degrees)
            hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 180).astype(np.uint8)
            out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        return out

    def _gamma(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if not self.gamma:
            return image
        exponent = rng.uniform(1 - self.gamma, 1 + self.gamma)
        lut = np.clip(np.rint(255.0 * (np.arange(256) / 255.0) ** exponent), 0, 255).astype(np.uint8)
        return lut[image]

    def _blur(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if not self.blur:
            return image
        return cv2.GaussianBlur(image, (0, 0), sigmaX=float(rng.uniform(0.3, self.blur)))

    def _noise(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if not self.noise:
            return image
        sigma = rng.uniform(0, self.noise)
        noisy = image.astype(np.float32) + rng.standard_normal(image.shape, dtype=np.float32) * sigma
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)

    def _jpeg(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if not self.jpeg:
            return image
        quality = int(rng.integers(self.jpeg, 96))
        ok, data = cv2.imencode(".jpg", np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            return image
        decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
        assert decoded is not None  # the JPEG imencode has just written
        return decoded[..., ::-1]


@dataclass(frozen=True)
class TrainAugmentation:
    """What the camera does to the image (real sources), then random scale, then (with
    ``letterbox_p``) the engine's letterbox padding to the aspect of ``letterbox``, then random crop
    (label padding = ignore), then horizontal flip with p=0.5.

    The camera's effects come first, at the source's own resolution, because that is where a camera
    adds them: the engine then scales the frame to the network (CamVid's 480x360 by ~2x), which
    spreads sensor noise into blobs and JPEG's 8x8 blocks into 16x16 ones. Noise added after the
    scaling would be pixel-fine, unlike anything the deployed model sees."""

    crop: tuple[int, int]                      # (height, width), multiples of 8
    scale_range: tuple[float, float] = (0.5, 2.0)
    flip: bool = True
    ignore_label: int = IGNORE_LABEL
    camera: CameraAugmentation = CameraAugmentation.off()
    letterbox: tuple[int, int] | None = None   # the network input size the engine letterboxes into
    letterbox_p: float = 0.0

    def __call__(self, image: np.ndarray, labels: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        image = self.camera(np.ascontiguousarray(image), rng)
        low, high = self.scale_range
        factor = float(rng.uniform(low, high)) if high > low else float(low)
        image, labels = rescale(image, labels, factor)
        # no draw when off, so runs without it keep their augmentation stream
        if self.letterbox is not None and self.letterbox_p > 0 and rng.random() < self.letterbox_p:
            image, labels = letterbox_pad(image, labels, self.letterbox, self.ignore_label)
        image, labels = random_crop(image, labels, self.crop, rng, self.ignore_label)
        if self.flip and rng.random() < 0.5:
            image, labels = image[:, ::-1], labels[:, ::-1]
        return np.ascontiguousarray(image), labels


def resize_to(image: np.ndarray, labels: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Resize a pair to ``size`` (height, width): bilinear image, nearest labels."""
    height, width = labels.shape
    if (height, width) == tuple(size):
        return image, labels
    return (cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR),
            cv2.resize(labels, (size[1], size[0]), interpolation=cv2.INTER_NEAREST))
