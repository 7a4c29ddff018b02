"""Image encodings: round trips, zero-copy views, hand-built byte layouts and bad input."""

from __future__ import annotations

import array
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddrnet_ros.encodings import (
    ENCODINGS,
    SUPPORTED_ENCODINGS,
    DecodedImage,
    ImageDecodeError,
    contiguous_pixels,
    decode_compressed,
    decode_image,
    encode_compressed,
    encode_image,
    encoding_spec,
    to_bgr,
    to_rgb,
)

PLAIN = [name for name, spec in ENCODINGS.items() if spec.kind in ("rgb", "bgr", "rgba", "bgra")]
MONO = ["mono8", "mono16"]
YUV = ["yuv422", "uyvy", "yuv422_yuy2", "yuyv"]
BAYER = [name for name, spec in ENCODINGS.items() if spec.kind == "bayer"]
ZERO_COPY_8BIT = ["rgb8", "bgr8", "rgba8", "bgra8", "mono8"]


def random_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def smooth_rgb(height: int = 48, width: int = 64) -> np.ndarray:
    """Gentle gradients in every channel: what demosaicing and chroma subsampling assume."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([40 + x * 2, 30 + y * 3, 220 - x - y], axis=-1).astype(np.uint8)


def round_trip(pixels: np.ndarray, encoding: str, **kwargs) -> DecodedImage:
    data, step = encode_image(pixels, encoding, **kwargs)
    return decode_image(data, pixels.shape[0], pixels.shape[1], encoding, step,
                        kwargs.get("is_bigendian", False))


# --- the table ---------------------------------------------------------------------------

def test_table_lists_the_ros_names_of_every_required_encoding():
    required = {"rgb8", "bgr8", "rgba8", "bgra8", "mono8", "yuv422", "uyvy", "yuv422_yuy2", "yuyv",
                "bayer_rggb8", "bayer_bggr8", "bayer_gbrg8", "bayer_grbg8"}
    assert required <= set(SUPPORTED_ENCODINGS)
    assert encoding_spec("yuv422").kind == encoding_spec("uyvy").kind == "uyvy"
    assert encoding_spec("yuv422_yuy2").kind == encoding_spec("yuyv").kind == "yuyv"
    assert [encoding_spec(name).bytes_per_pixel for name in ("rgb8", "bgra8", "mono16", "yuyv")] == [3, 4, 2, 2]


def test_encoding_names_ignore_case_and_spaces():
    assert encoding_spec(" BGR8 ") is encoding_spec("bgr8")


# --- exact round trips -------------------------------------------------------------------

@pytest.mark.parametrize("is_bigendian", [False, True])
@pytest.mark.parametrize("encoding", PLAIN)
def test_colour_encodings_round_trip_exactly(encoding, is_bigendian):
    pixels = random_rgb(7, 9)
    decoded = round_trip(pixels, encoding, is_bigendian=is_bigendian)
    assert decoded.pixels.shape == (7, 9, 3) and decoded.pixels.dtype == np.uint8
    np.testing.assert_array_equal(to_rgb(decoded), pixels)


@pytest.mark.parametrize("is_bigendian", [False, True])
@pytest.mark.parametrize("encoding", MONO)
def test_grey_and_label_images_round_trip_exactly_through_mono(encoding, is_bigendian):
    labels = np.random.default_rng(1).integers(0, 256, (6, 5), dtype=np.uint8)
    labels[0, 0], labels[0, 1] = 255, 0  # ignore label and class 0 survive
    decoded = round_trip(labels, encoding, is_bigendian=is_bigendian)
    for channel in range(3):
        np.testing.assert_array_equal(decoded.pixels[:, :, channel], labels)


def test_mono8_encoding_of_colour_uses_luma():
    pixels = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]], np.uint8)
    data, _ = encode_image(pixels, "mono8")
    assert list(data) == [76, 150, 29, 255]  # BT.601 weights 0.299, 0.587, 0.114


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(encoding=st.sampled_from(PLAIN + MONO), height=st.integers(1, 9), width=st.integers(1, 9),
       padding=st.integers(0, 13), is_bigendian=st.booleans(), seed=st.integers(0, 2**16))
def test_plain_layouts_round_trip_exactly_for_any_size_and_padding(encoding, height, width, padding,
                                                                 is_bigendian, seed):
    pixels = random_rgb(height, width, seed)
    if encoding.startswith("mono"):
        pixels = pixels[:, :, 0]
    row_bytes = width * encoding_spec(encoding).bytes_per_pixel
    decoded = round_trip(pixels, encoding, step=row_bytes + padding, is_bigendian=is_bigendian)
    expected = pixels if pixels.ndim == 3 else np.repeat(pixels[:, :, None], 3, axis=2)
    np.testing.assert_array_equal(to_rgb(decoded), expected)


# --- hand-built bytes: layouts and byte orders as ROS defines them --------------------------

@pytest.mark.parametrize("encoding, pixel_bytes, order", [
    ("rgb8", [10, 20, 30], "rgb"),
    ("bgr8", [30, 20, 10], "bgr"),
    ("rgba8", [10, 20, 30, 99], "rgb"),
    ("bgra8", [30, 20, 10, 99], "bgr"),
])
def test_channel_order_follows_the_encoding(encoding, pixel_bytes, order):
    decoded = decode_image(bytes(pixel_bytes * 2), 1, 2, encoding, 2 * len(pixel_bytes))
    assert decoded.channel_order == order
    np.testing.assert_array_equal(to_rgb(decoded), [[[10, 20, 30], [10, 20, 30]]])
    np.testing.assert_array_equal(to_bgr(decoded), [[[30, 20, 10], [30, 20, 10]]])


def test_is_bigendian_is_ignored_for_8_bit_encodings():
    data = bytes([1, 2, 3, 4, 5, 6])
    little = decode_image(data, 1, 2, "rgb8", 6, is_bigendian=False)
    big = decode_image(data, 1, 2, "rgb8", 6, is_bigendian=True)
    np.testing.assert_array_equal(little.pixels, big.pixels)


def test_16_bit_samples_keep_their_high_byte_in_the_stated_byte_order():
    # One mono16 pixel of value 0x12AB, then one of 0x34CD.
    little = decode_image(bytes([0xAB, 0x12, 0xCD, 0x34]), 1, 2, "mono16", 4, is_bigendian=False)
    big = decode_image(bytes([0x12, 0xAB, 0x34, 0xCD]), 1, 2, "mono16", 4, is_bigendian=1)
    np.testing.assert_array_equal(little.pixels[0, :, 0], [0x12, 0x34])
    np.testing.assert_array_equal(big.pixels[0, :, 0], [0x12, 0x34])
    rgb = decode_image(bytes([0, 10, 0, 20, 0, 30]), 1, 1, "rgb16", 6, is_bigendian=False)
    np.testing.assert_array_equal(rgb.pixels, [[[10, 20, 30]]])


def test_yuv422_is_uyvy_byte_order_with_bt601_video_range():
    # BT.601 limited range: pure red is Y=81, U(Cb)=90, V(Cr)=240; grey 235 is white.
    red_uyvy = bytes([90, 81, 240, 81])
    for encoding in ("yuv422", "uyvy"):
        pixels = decode_image(red_uyvy, 1, 2, encoding, 4).pixels
        assert (pixels[:, :, 0] >= 250).all() and (pixels[:, :, 1:] <= 3).all()
    white_black_yuyv = bytes([235, 128, 16, 128])  # Y0 U Y1 V
    for encoding in ("yuv422_yuy2", "yuyv"):
        pixels = decode_image(white_black_yuyv, 1, 2, encoding, 4).pixels
        np.testing.assert_array_equal(pixels, [[[255, 255, 255], [0, 0, 0]]])
    # The same bytes read in the other order are something else entirely.
    assert not (decode_image(red_uyvy, 1, 2, "yuyv", 4).pixels[:, :, 0] >= 250).all()


@pytest.mark.parametrize("encoding", YUV)
def test_yuv422_round_trip_stays_within_a_few_levels(encoding):
    pixels = smooth_rgb()
    decoded = round_trip(pixels, encoding)
    error = np.abs(to_rgb(decoded).astype(int) - pixels)
    assert error.max() <= 4, error.max()


@pytest.mark.parametrize("pattern, top_left", [("rggb", 0), ("bggr", 2)])
def test_bayer_pattern_names_the_colour_of_each_tile_position(pattern, top_left):
    # A sensor looking at pure red: only the red sites are lit.
    mosaic = np.zeros((8, 8), np.uint8)
    red_row, red_col = (0, 0) if top_left == 0 else (1, 1)
    mosaic[red_row::2, red_col::2] = 200
    pixels = decode_image(mosaic.tobytes(), 8, 8, f"bayer_{pattern}8", 8).pixels
    inner = pixels[2:-2, 2:-2]
    assert (inner[:, :, 0] == 200).all() and (inner[:, :, 1:] == 0).all()


@pytest.mark.parametrize("encoding", BAYER)
def test_bayer_demosaicing_recovers_a_smooth_image(encoding):
    pixels = smooth_rgb()
    decoded = to_rgb(round_trip(pixels, encoding))
    error = np.abs(decoded.astype(int) - pixels)
    assert error[2:-2, 2:-2].max() <= 2 and error.max() <= 8, (error[2:-2, 2:-2].max(), error.max())


def test_bayer_decoded_with_the_wrong_pattern_is_far_off():
    pixels = smooth_rgb()
    data, step = encode_image(pixels, "bayer_rggb8")
    wrong = decode_image(data, 48, 64, "bayer_bggr8", step).pixels
    assert np.abs(wrong.astype(int) - pixels).max() > 100


# --- step padding and zero copy -----------------------------------------------------------

@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
def test_row_padding_is_skipped(encoding):
    pixels = smooth_rgb(6, 8)
    tight, tight_step = encode_image(pixels, encoding)
    rows = np.frombuffer(tight, np.uint8).reshape(6, tight_step)
    padded = np.full((6, tight_step + 7), 0xEE, np.uint8)  # junk in the padding
    padded[:, :tight_step] = rows
    expected = decode_image(tight, 6, 8, encoding, tight_step).pixels
    actual = decode_image(padded.tobytes(), 6, 8, encoding, tight_step + 7).pixels
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("encoding", ZERO_COPY_8BIT + ["rgb16", "bgra16", "mono16"])
def test_plain_layouts_are_views_that_follow_the_source_buffer(encoding):
    spec = encoding_spec(encoding)
    height, width, padding = 4, 5, 3
    step = width * spec.bytes_per_pixel + padding
    source = bytearray(np.random.default_rng(2).integers(0, 256, step * height, dtype=np.uint8).tobytes())
    decoded = decode_image(source, height, width, encoding, step)
    assert np.shares_memory(decoded.pixels, np.frombuffer(source, np.uint8))
    # Change the (high byte of the) first sample of pixel (2, 3) in the source: the view sees it.
    high = 1 if spec.bytes_per_channel == 2 else 0
    index = 2 * step + 3 * spec.bytes_per_pixel + high
    source[index] = (source[index] + 1) % 256
    assert decoded.pixels[2, 3, 0] == source[index]


def test_decoded_views_are_read_only():
    decoded = decode_image(bytearray(12), 2, 2, "rgb8", 6)
    with pytest.raises(ValueError):
        decoded.pixels[0, 0, 0] = 1


def test_to_rgb_returns_rgb_pixels_without_copying():
    decoded = decode_image(bytes(range(12)), 2, 2, "rgb8", 6)
    assert to_rgb(decoded) is decoded.pixels


@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
def test_contiguous_rgb_and_bgr_forms_agree_with_the_view(encoding):
    pixels = smooth_rgb(6, 8)
    step = encoding_spec(encoding).bytes_per_pixel * 8 + 5
    decoded = round_trip(pixels, encoding, step=step)
    view = np.array(decoded.pixels)  # plain numpy copy: the reference
    packed = contiguous_pixels(decoded)
    assert packed.flags.c_contiguous
    np.testing.assert_array_equal(packed, view)
    rgb = view if decoded.channel_order == "rgb" else view[:, :, ::-1]
    np.testing.assert_array_equal(to_rgb(decoded), rgb)
    np.testing.assert_array_equal(to_bgr(decoded), rgb[:, :, ::-1])


def test_four_channel_shortcut_is_taken_only_where_the_fourth_byte_exists():
    from ddrnet_ros.encodings import _opencv_source

    decoded = round_trip(random_rgb(3, 4), "bgra8", step=20)
    assert _opencv_source(decoded.pixels)[1] == 4
    # A 3-of-4 samples view ending at its buffer's last byte: a 4-sample read would overrun.
    storage = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert _opencv_source(storage[:, :, 1:])[1] == 3
    assert _opencv_source(storage[:, :, :3])[1] == 4
    shifted = DecodedImage(storage[:, :, 1:], "bgr")
    np.testing.assert_array_equal(to_rgb(shifted), storage[:, :, 1:][:, :, ::-1])


def test_ros_message_data_decodes_without_copy_and_after_serialization():
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import Image

    pixels = random_rgb(6, 10)
    data, step = encode_image(pixels, "bgra8", step=44)
    message = Image(height=6, width=10, encoding="bgra8", step=step, is_bigendian=0)
    message.data = data
    assert message.data == data
    decoded = decode_image(message.data, message.height, message.width, message.encoding,
                           message.step, message.is_bigendian)
    assert np.shares_memory(decoded.pixels, np.frombuffer(message.data, np.uint8))
    np.testing.assert_array_equal(to_rgb(decoded), pixels)

    received = deserialize_message(serialize_message(message), Image)
    assert isinstance(received.data, array.array)
    decoded = decode_image(received.data, received.height, received.width, received.encoding,
                           received.step, received.is_bigendian)
    assert np.shares_memory(decoded.pixels, np.frombuffer(received.data, np.uint8))
    np.testing.assert_array_equal(to_rgb(decoded), pixels)


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview, lambda b: array.array("B", b),
                                  lambda b: np.frombuffer(b, np.uint8)])
def test_every_bytes_like_container_decodes_alike(wrap):
    raw = bytes(range(24))
    decoded = decode_image(wrap(raw), 2, 4, "rgb8", 12)
    np.testing.assert_array_equal(decoded.pixels.reshape(-1), np.frombuffer(raw, np.uint8))


# --- compressed ---------------------------------------------------------------------------

@pytest.mark.parametrize("format", ["png", "rgb8; png compressed bgr8", "bgr8; png compressed bgr8", ""])
def test_png_round_trips_exactly_with_any_ros_format_string(format):
    pixels = random_rgb(9, 11)
    decoded = decode_compressed(encode_compressed(pixels, "png"), format)
    assert decoded.channel_order == "rgb"
    np.testing.assert_array_equal(to_rgb(decoded), pixels)


@pytest.mark.parametrize("format", ["jpeg", "JPEG", "rgb8; jpeg compressed bgr8", "jpg"])
def test_jpeg_round_trip_stays_close(format):
    pixels = smooth_rgb()
    data = encode_compressed(pixels, "jpeg", quality=95)
    assert data[:2] == b"\xff\xd8"
    error = np.abs(to_rgb(decode_compressed(data, format)).astype(int) - pixels)
    assert error.mean() < 2 and error.max() <= 16, (error.mean(), error.max())


def test_compressed_grey_images_come_back_with_three_equal_channels():
    grey = smooth_rgb()[:, :, 0]
    for format in ("png", "jpeg"):
        pixels = decode_compressed(encode_compressed(grey, format), format).pixels
        assert pixels.shape == grey.shape + (3,)
        np.testing.assert_array_equal(pixels[:, :, 0], pixels[:, :, 2])
    np.testing.assert_array_equal(decode_compressed(encode_compressed(grey, "png"), "png").pixels[:, :, 1], grey)


def test_jpeg_quality_trades_size_for_fidelity():
    pixels = random_rgb(32, 32)
    assert len(encode_compressed(pixels, "jpeg", quality=20)) < len(encode_compressed(pixels, "jpeg", quality=95))


# --- bad input: one exception type, a message that says what is wrong -----------------------

@pytest.mark.parametrize("fields, message", [
    ((bytes(3000 * 640), 640, 1024, "rgb8", 3000), "step 3000 < width*3=3072 for rgb8 1024x640"),
    ((bytes(100), 480, 640, "bgra8", 3840),
     "data has 100 bytes, expected >= 1843200 (step 3840 x height 480) for bgra8 640x480"),
    ((bytes(1843199), 480, 640, "rgb8", 3840), "data has 1843199 bytes, expected >= 1843200"),
    ((bytes(12), 2, 2, "rgb16", 6), "step 6 < width*6=12"),
    ((bytes(12), 2, 2, "32FC1", 8), "unsupported encoding '32FC1'; supported: rgb8, bgr8"),
    ((bytes(12), 2, 2, "", 6), "unsupported encoding ''"),
    ((bytes(12), 2, 2, None, 6), "encoding must be a string"),
    ((b"", 0, 0, "rgb8", 0), "height 0 must be positive"),
    ((bytes(12), 2, 0, "rgb8", 6), "width 0 must be positive"),
    ((bytes(12), -2, 2, "rgb8", 6), "height -2 must be positive"),
    ((bytes(12), 2, 2**31, "rgb8", 6), f"width {2**31} exceeds the limit"),
    ((bytes(12), 2.0, 2, "rgb8", 6), "height must be an integer"),
    ((bytes(12), True, 2, "rgb8", 6), "height must be an integer"),
    ((bytes(12), 2, 2, "rgb8", -6), "step -6 < width*3=6"),
    ((bytes(12), 2, 2, "rgb8", "6"), "step must be an integer"),
    ((bytes(12), 2, 3, "yuv422", 6), "width 3 must be even for yuv422 3x2"),
    ((bytes(12), 2, 3, "yuyv", 6), "width 3 must be even"),
    (("abcdef", 1, 2, "rgb8", 6), "data must be bytes-like, got str"),
    ((None, 1, 2, "rgb8", 6), "data must be bytes-like, got NoneType"),
    (([1, 2, 3, 4, 5, 6], 1, 2, "rgb8", 6), "data must be bytes-like, got list"),
    ((np.zeros(6, np.float32), 1, 2, "rgb8", 6), "data array must be uint8, got float32"),
    ((np.zeros((6, 2), np.uint8)[:, 0], 1, 2, "rgb8", 6), "data array must be C-contiguous"),
])
def test_bad_raw_images_raise_one_error_type_saying_what_is_wrong(fields, message):
    with pytest.raises(ImageDecodeError) as error:
        decode_image(*fields)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_decode_errors_are_value_errors():
    assert issubclass(ImageDecodeError, ValueError)


@pytest.mark.parametrize("data, format, message", [
    (b"", "jpeg", "compressed data is empty"),
    (b"not an image at all", "jpeg", "cannot decode 19 bytes of jpeg data"),
    (b"\x89PNG\r\n\x1a\n", "png", "cannot decode 8 bytes of png data"),
    (b"\xff\xd8\xff", "", "cannot decode 3 bytes of compressed data"),
    (b"\xff\xd8\xff", "h264", "unsupported compressed format 'h264'; supported: jpeg, png"),
    (b"\xff\xd8\xff", "16UC1; compressedDepth png", "depth images"),
    (b"\xff\xd8\xff", None, "format must be a string"),
    ("jpeg bytes", "jpeg", "data must be bytes-like, got str"),
])
def test_undecodable_compressed_data_raises_one_error_type(data, format, message):
    with pytest.raises(ImageDecodeError) as error:
        decode_compressed(data, format)
    assert message in str(error.value)


@pytest.mark.parametrize("format", ["png", "jpeg"])
def test_truncated_compressed_images_are_rejected(format):
    data = encode_compressed(random_rgb(64, 64), format)
    with pytest.raises(ImageDecodeError, match="cannot decode"):
        decode_compressed(data[: len(data) // 2], format)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(encoding=st.sampled_from(SUPPORTED_ENCODINGS + ("rgb32", "16UC1", "")),
       height=st.integers(-2, 9), width=st.integers(-2, 9), step_delta=st.integers(-3, 5),
       size_delta=st.integers(-3, 3), is_bigendian=st.booleans(), draw=st.data())
def test_arbitrary_raw_fields_either_decode_to_the_stated_size_or_raise_decode_error(
        encoding, height, width, step_delta, size_delta, is_bigendian, draw):
    # Sizes near the valid ones (off by a few bytes either way) reach every check and every path.
    bytes_per_pixel = ENCODINGS[encoding].bytes_per_pixel if encoding in ENCODINGS else 3
    step = max(width, 0) * bytes_per_pixel + step_delta
    size = max(0, step * max(height, 0) + size_delta)
    data = draw.draw(st.binary(min_size=size, max_size=size))
    try:
        decoded = decode_image(data, height, width, encoding, step, is_bigendian)
    except ImageDecodeError:
        return
    assert decoded.pixels.shape == (height, width, 3) and decoded.pixels.dtype == np.uint8


@settings(max_examples=60, deadline=None, database=None)
@given(data=st.binary(max_size=200), cut=st.integers(0, 400))
def test_arbitrary_compressed_bytes_either_decode_or_raise_decode_error(data, cut):
    valid = encode_compressed(random_rgb(8, 8), "png" if cut % 2 else "jpeg")
    for candidate in (data, valid[:cut], valid[:cut] + data):
        try:
            decoded = decode_compressed(candidate, "")
        except ImageDecodeError:
            continue
        assert decoded.pixels.ndim == 3 and decoded.pixels.shape[2] == 3


# --- encoders -----------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
def test_encoded_data_fills_step_times_height_bytes(encoding):
    data, step = encode_image(smooth_rgb(6, 8), encoding, step=encoding_spec(encoding).bytes_per_pixel * 8 + 4)
    assert isinstance(data, array.array) and data.typecode == "B"
    assert len(data) == step * 6


@pytest.mark.parametrize("pixels, encoding, kwargs, message", [
    (np.zeros((2, 3, 3), np.uint8), "yuv422", {}, "width 3 must be even"),
    (np.zeros((2, 2, 3), np.float32), "rgb8", {}, "must be uint8"),
    (np.zeros((2, 2, 4), np.uint8), "rgb8", {}, "HxW or HxWx3"),
    (np.zeros((0, 2, 3), np.uint8), "rgb8", {}, "empty"),
    (np.zeros((2, 2, 3), np.uint8), "rgb8", {"step": 5}, "step 5 < width*3=6"),
    (np.zeros((2, 2, 3), np.uint8), "32FC1", {}, "unsupported encoding"),
])
def test_encoders_reject_bad_pixels_with_value_error(pixels, encoding, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        encode_image(pixels, encoding, **kwargs)


def test_compressed_encoder_rejects_unknown_formats_and_quality():
    with pytest.raises(ValueError, match="unsupported compressed format"):
        encode_compressed(random_rgb(4, 4), "gif")
    with pytest.raises(ValueError, match="quality 101"):
        encode_compressed(random_rgb(4, 4), "jpeg", quality=101)


def test_module_stays_free_of_ros_imports():
    code = ("import sys, ddrnet_ros.encodings; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('rclpy', 'sensor_msgs', 'cv_bridge')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
