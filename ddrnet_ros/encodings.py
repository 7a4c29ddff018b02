"""Camera pixels <-> HxWx3 uint8 numpy images: the one place that knows image encodings.

Works on the raw fields of ``sensor_msgs/Image`` (data, height, width, encoding, step,
is_bigendian) and ``sensor_msgs/CompressedImage`` (data, format) without importing ROS, so
the node, the evaluator and the bag player share one conversion.

Layouts that are a plain grid of bytes (rgb8, bgr8, rgba8, bgra8, mono8 and their 16-bit
forms) come back as strided *views* of the caller's buffer: row padding (``step``), alpha and
the low byte of 16-bit samples are skipped by strides, not by copying. YUV 4:2:2 and Bayer
need one ``cv2.cvtColor`` (a copy, unavoidable). Every malformed input raises
:class:`ImageDecodeError` with a one-line reason, so long-running callers can log, count
and skip it.

cv_bridge is deliberately not used: it needs message objects (this module sees raw fields)
and its conversions for these encodings are the same view or the same single cvtColor.
"""

from __future__ import annotations

import array
import operator
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np

try:
    from numpy.lib.array_utils import byte_bounds  # NumPy >= 2
except ImportError:  # NumPy 1.x: Ubuntu 24.04 (ROS 2 Jazzy) ships 1.26, where it is np.byte_bounds
    byte_bounds = np.byte_bounds  # type: ignore[attr-defined]
from numpy.lib.stride_tricks import as_strided

ChannelOrder = Literal["rgb", "bgr"]
EncodingKind = Literal["rgb", "bgr", "rgba", "bgra", "mono", "uyvy", "yuyv", "bayer"]
BytesLike = bytes | bytearray | memoryview | array.array | np.ndarray

# Larger sides are certainly a corrupt header (sensor_msgs uses uint32 fields).
MAX_SIDE = 1 << 16


class ImageDecodeError(ValueError):
    """An image message cannot be converted; the message says why in one line."""


@dataclass(frozen=True)
class EncodingSpec:
    """How one encoding lays out a pixel in memory."""

    name: str
    kind: EncodingKind
    channels: int  # samples stored per pixel (yuv422: 2, Y and alternately U/V)
    bytes_per_channel: int  # 1 or 2 (16-bit samples, byte order from is_bigendian)
    bayer_pattern: str = ""  # colours of the 2x2 tile, row-major: 'rggb', 'bggr', ...

    @property
    def bytes_per_pixel(self) -> int:
        return self.channels * self.bytes_per_channel

    @property
    def zero_copy(self) -> bool:
        """True when :func:`decode_image` returns a view of the input buffer."""
        return self.kind in ("rgb", "bgr", "rgba", "bgra", "mono")


def _table() -> dict[str, EncodingSpec]:
    specs = []
    grids: tuple[tuple[EncodingKind, int], ...] = (("rgb", 3), ("bgr", 3), ("rgba", 4), ("bgra", 4), ("mono", 1))
    for bits, width in ((8, 1), (16, 2)):
        for kind, channels in grids:
            specs.append(EncodingSpec(f"{kind}{bits}", kind, channels, width))
        for pattern in ("rggb", "bggr", "gbrg", "grbg"):
            specs.append(EncodingSpec(f"bayer_{pattern}{bits}", "bayer", 1, width, pattern))
    # ROS spells UYVY byte order "yuv422" and YUYV "yuv422_yuy2"; "uyvy"/"yuyv" are newer aliases.
    specs += [EncodingSpec("yuv422", "uyvy", 2, 1), EncodingSpec("uyvy", "uyvy", 2, 1),
              EncodingSpec("yuv422_yuy2", "yuyv", 2, 1), EncodingSpec("yuyv", "yuyv", 2, 1)]
    return {spec.name: spec for spec in specs}


ENCODINGS: dict[str, EncodingSpec] = _table()
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(ENCODINGS)

_YUV_TO_RGB = {"uyvy": cv2.COLOR_YUV2RGB_UYVY, "yuyv": cv2.COLOR_YUV2RGB_YUY2}
_RGB_TO_YUV = {"uyvy": cv2.COLOR_RGB2YUV_UYVY, "yuyv": cv2.COLOR_RGB2YUV_YUY2}
_BAYER_TO_RGB = {"rggb": cv2.COLOR_BayerRGGB2RGB, "bggr": cv2.COLOR_BayerBGGR2RGB,
                 "gbrg": cv2.COLOR_BayerGBRG2RGB, "grbg": cv2.COLOR_BayerGRBG2RGB}
_RGB_INDEX = {"r": 0, "g": 1, "b": 2}
_COMPRESSED_CODECS = {"jpeg": ".jpg", "jpg": ".jpg", "png": ".png"}


@dataclass(frozen=True)
class DecodedImage:
    """HxWx3 uint8 pixels in ``channel_order``; read-only when it is a view of message data."""

    pixels: np.ndarray
    channel_order: ChannelOrder

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


def encoding_spec(encoding: str) -> EncodingSpec:
    """The layout of ``encoding`` (case and surrounding spaces ignored)."""
    if not isinstance(encoding, str):
        raise ImageDecodeError(f"encoding must be a string, got {type(encoding).__name__}")
    spec = ENCODINGS.get(encoding.strip().lower())
    if spec is None:
        raise ImageDecodeError(
            f"unsupported encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}")
    return spec


def _byte_buffer(data: Any) -> np.ndarray:
    """A flat uint8 array over ``data``'s memory (no copy)."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise ImageDecodeError(f"data array must be uint8, got {data.dtype}")
        if not data.flags.c_contiguous:
            raise ImageDecodeError("data array must be C-contiguous")
        return data.reshape(-1)
    try:
        view = memoryview(data)
    except TypeError:
        raise ImageDecodeError(f"data must be bytes-like, got {type(data).__name__}") from None
    if not view.c_contiguous:
        raise ImageDecodeError("data buffer must be contiguous")
    if view.nbytes == 0:
        return np.zeros(0, np.uint8)
    return np.frombuffer(view.cast("B"), np.uint8)


def _side(value: Any, name: str) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        side = operator.index(value)
    except TypeError:
        raise ImageDecodeError(f"{name} must be an integer, got {value!r}") from None
    if side <= 0:
        raise ImageDecodeError(f"{name} {side} must be positive")
    if side > MAX_SIDE:
        raise ImageDecodeError(f"{name} {side} exceeds the limit of {MAX_SIDE}")
    return side


def decode_image(data: BytesLike, height: int, width: int, encoding: str, step: int,
                 is_bigendian: bool | int = False) -> DecodedImage:
    """Convert raw ``sensor_msgs/Image`` fields to HxWx3 uint8 pixels.

    Plain layouts return a read-only view of ``data`` (which stays alive with it); 16-bit
    samples keep their high byte. Raises :class:`ImageDecodeError` for any malformed input.
    """
    spec = encoding_spec(encoding)
    height = _side(height, "height")
    width = _side(width, "width")
    shape = f"{spec.name} {width}x{height}"
    try:
        step = operator.index(step)
    except TypeError:
        raise ImageDecodeError(f"step must be an integer, got {step!r}") from None
    row_bytes = width * spec.bytes_per_pixel
    if step < row_bytes:
        raise ImageDecodeError(
            f"step {step} < width*{spec.bytes_per_pixel}={row_bytes} for {shape}")
    if spec.kind in ("uyvy", "yuyv") and width % 2:
        raise ImageDecodeError(f"width {width} must be even for {shape} (4:2:2 pairs pixels)")
    buffer = _byte_buffer(data)
    if buffer.size < step * height:
        raise ImageDecodeError(f"data has {buffer.size} bytes, expected >= {step * height} "
                               f"(step {step} x height {height}) for {shape}")

    # Offset of the byte kept from each sample: the high byte of 16-bit samples.
    high = 1 if spec.bytes_per_channel == 2 and not is_bigendian else 0
    bpc, bpp = spec.bytes_per_channel, spec.bytes_per_pixel
    if spec.zero_copy:
        channel_stride = 0 if spec.kind == "mono" else bpc
        pixels = np.ndarray((height, width, 3), np.uint8, buffer=buffer, offset=high,
                            strides=(step, bpp, channel_stride))
        pixels.flags.writeable = False
        return DecodedImage(pixels, "bgr" if spec.kind in ("bgr", "bgra") else "rgb")

    if spec.kind == "bayer":
        plane = np.ndarray((height, width), np.uint8, buffer=buffer, offset=high,
                           strides=(step, bpp))
        if bpc == 2:
            plane = np.ascontiguousarray(plane)  # cvtColor needs adjacent samples
        code = _BAYER_TO_RGB[spec.bayer_pattern]
    else:
        plane = np.ndarray((height, width, 2), np.uint8, buffer=buffer, strides=(step, 2, 1))
        code = _YUV_TO_RGB[spec.kind]
    try:
        rgb = cv2.cvtColor(plane, code)
    except cv2.error as error:  # e.g. sizes the demosaicer cannot handle
        message = str(error).strip().splitlines()[-1]
        raise ImageDecodeError(f"cannot convert {shape}: {message}") from None
    return DecodedImage(rgb, "rgb")


def _check_compressed_format(format: Any) -> None:
    """Accept a ROS CompressedImage format naming jpeg or png, or an empty one."""
    if not isinstance(format, str):
        raise ImageDecodeError(f"format must be a string, got {type(format).__name__}")
    words = format.lower().replace(";", " ").split()
    if "compresseddepth" in words:
        raise ImageDecodeError(f"unsupported compressed format {format!r} (depth images)")
    if words and not any(word in _COMPRESSED_CODECS for word in words):
        raise ImageDecodeError(f"unsupported compressed format {format!r}; supported: jpeg, png")


def decode_compressed(data: BytesLike, format: str = "") -> DecodedImage:
    """Decode ``sensor_msgs/CompressedImage`` data (jpeg or png) to HxWx3 RGB uint8.

    ``format`` is the message's field ("jpeg", "png", "rgb8; jpeg compressed bgr8"; empty
    means: tell from the bytes). Grey images come back with three equal channels; EXIF
    rotation is ignored so pixels stay on the camera's grid.
    """
    _check_compressed_format(format)
    buffer = _byte_buffer(data)
    if buffer.size == 0:
        raise ImageDecodeError("compressed data is empty")
    try:
        pixels = cv2.imdecode(buffer, cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error:
        pixels = None
    if pixels is None:
        label = format or "compressed"
        raise ImageDecodeError(f"cannot decode {buffer.size} bytes of {label} data")
    return DecodedImage(pixels, "rgb")


def _opencv_source(pixels: np.ndarray) -> tuple[np.ndarray, int]:
    """``pixels`` as an array OpenCV reads in place, and its channel count (1, 3 or 4).

    OpenCV (and numpy) copy a view whose pixels are not adjacent samples slowly, sample by
    sample; mono views (channel stride 0) and rgba/bgra views (pixel stride 4) are read far
    faster as their 1- or 4-channel storage.
    """
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        row, column, channel = pixels.strides
        if channel == 0 and column == 1:
            return pixels[:, :, 0], 1
        if channel == 1 and column == 4 and row >= 0 and _owns_next_byte(pixels):
            return as_strided(pixels, pixels.shape[:2] + (4,), (row, 4, 1), writeable=False), 4
    return pixels, 3


def _owns_next_byte(pixels: np.ndarray) -> bool:
    """Whether the byte after the last pixel's third sample lies in the same buffer."""
    root = pixels
    while isinstance(root.base, np.ndarray):
        root = root.base
    low, high = byte_bounds(root)
    start = pixels.__array_interface__["data"][0]
    end = start + (pixels.shape[0] - 1) * pixels.strides[0] + pixels.shape[1] * 4
    return low <= start and end <= high


def contiguous_pixels(decoded: DecodedImage) -> np.ndarray:
    """C-contiguous HxWx3 pixels in ``decoded.channel_order``; at most one (fast) copy."""
    pixels = decoded.pixels
    if pixels.flags.c_contiguous:
        return pixels
    source, channels = _opencv_source(pixels)
    if channels == 1:
        return cv2.cvtColor(source, cv2.COLOR_GRAY2RGB)
    if channels == 4:
        return cv2.cvtColor(source, cv2.COLOR_RGBA2RGB)  # drops alpha, keeps the order
    return np.ascontiguousarray(pixels)


def to_rgb(decoded: DecodedImage) -> np.ndarray:
    """HxWx3 RGB pixels: ``decoded.pixels`` itself when already RGB, else one copy."""
    if decoded.channel_order == "rgb":
        return decoded.pixels
    source, channels = _opencv_source(decoded.pixels)
    return cv2.cvtColor(source, {1: cv2.COLOR_GRAY2RGB, 3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGB}[channels])


def to_bgr(decoded: DecodedImage) -> np.ndarray:
    """HxWx3 BGR pixels (OpenCV's order): the pixels themselves when already BGR, else one copy."""
    if decoded.channel_order == "bgr":
        return decoded.pixels
    source, channels = _opencv_source(decoded.pixels)
    return cv2.cvtColor(source, {1: cv2.COLOR_GRAY2BGR, 3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGR}[channels])


def _checked_pixels(pixels: np.ndarray) -> np.ndarray:
    """Encoder input: HxW (grey, labels) or HxWx3 (RGB) uint8, not empty."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise ValueError(f"pixels must be uint8, got {pixels.dtype}")
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise ValueError(f"pixels must be HxW or HxWx3, got shape {pixels.shape}")
    if pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise ValueError(f"cannot encode an empty {pixels.shape[1]}x{pixels.shape[0]} image")
    return pixels


def _pack(samples: np.ndarray, spec: EncodingSpec, is_bigendian: bool) -> np.ndarray:
    """uint8 samples -> the encoding's sample bytes; 16-bit scales by 257 (255 -> 65535)."""
    if spec.bytes_per_channel == 1:
        return samples
    wide = samples.astype(np.uint16) * np.uint16(257)
    return wide.astype(">u2" if is_bigendian else "<u2").view(np.uint8)


_FROM_RGB = {"rgb": None, "bgr": cv2.COLOR_RGB2BGR, "rgba": cv2.COLOR_RGB2RGBA, "bgra": cv2.COLOR_RGB2BGRA}


def encode_image(pixels: np.ndarray, encoding: str, *, step: int | None = None,
                 is_bigendian: bool = False) -> tuple[array.array, int]:
    """Lay out RGB (HxWx3) or grey/label (HxW) uint8 pixels as ``encoding``: (data, step).

    ``data`` is an ``array.array('B')``, the type rclpy keeps ``uint8[]`` fields in: assigning
    it costs one memcpy (none with ROS_PYTHON_CHECK_FIELDS=1, which checks bytes one by one).
    ``step`` may ask for padded rows; alpha is 255; 16-bit samples are value*257; bayer
    encodings sample the RGB image through the colour filter pattern; yuv422 uses OpenCV's
    BT.601 (video range) conversion; mono of RGB is BT.601 luma.
    """
    spec = ENCODINGS.get(encoding.strip().lower()) if isinstance(encoding, str) else None
    if spec is None:
        raise ValueError(f"unsupported encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}")
    pixels = _checked_pixels(pixels)
    height, width = pixels.shape[:2]
    if spec.kind in ("uyvy", "yuyv") and width % 2:
        raise ValueError(f"width {width} must be even for {spec.name}")

    if spec.kind == "mono":
        samples = pixels if pixels.ndim == 2 else cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    else:
        rgb = pixels if pixels.ndim == 3 else cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)
        if spec.kind == "bayer":
            samples = np.empty((height, width), np.uint8)
            for index, colour in enumerate(spec.bayer_pattern):
                dy, dx = divmod(index, 2)
                samples[dy::2, dx::2] = rgb[dy::2, dx::2, _RGB_INDEX[colour]]
        elif spec.kind in _FROM_RGB:
            code = _FROM_RGB[spec.kind]
            samples = rgb if code is None else cv2.cvtColor(rgb, code)
        else:
            samples = cv2.cvtColor(rgb, _RGB_TO_YUV[spec.kind])

    rows = np.ascontiguousarray(_pack(samples, spec, is_bigendian)).reshape(height, -1)
    row_bytes = rows.shape[1]
    step = row_bytes if step is None else operator.index(step)
    if step < row_bytes:
        raise ValueError(f"step {step} < width*{spec.bytes_per_pixel}={row_bytes} for {spec.name}")
    if step > row_bytes:
        padded = np.zeros((height, step), np.uint8)
        padded[:, :row_bytes] = rows
        rows = padded
    data = array.array("B")
    data.frombytes(rows.reshape(-1).data)  # the array's buffer (a memoryview), not a copy
    return data, step


def encode_compressed(pixels: np.ndarray, format: str = "jpeg", quality: int = 90) -> bytes:
    """Compress RGB (HxWx3) or grey (HxW) uint8 pixels to jpeg or png bytes.

    ``quality`` (0-100) applies to jpeg; png is lossless and ignores it.
    """
    codec = _COMPRESSED_CODECS.get(format.strip().lower()) if isinstance(format, str) else None
    if codec is None:
        raise ValueError(f"unsupported compressed format {format!r}; supported: jpeg, png")
    if not 0 <= quality <= 100:
        raise ValueError(f"quality {quality} must be in [0, 100]")
    pixels = _checked_pixels(pixels)
    image = pixels if pixels.ndim == 2 else cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if codec == ".jpg" else []
    ok, encoded = cv2.imencode(codec, image, params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {pixels.shape[1]}x{pixels.shape[0]} image as {format}")
    return encoded.tobytes()
