"""ROS messages <-> numpy: this module only moves fields; pixel layouts live in ddrnet_ros.encodings."""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from ddrnet_ros.classes import ClassMap
from ddrnet_ros.encodings import DecodedImage, decode_compressed, decode_image, encode_compressed, encode_image
from ddrnet_ros.engine import Segmenter
from ddrnet_ros.msg import ClassInfo, SegmentationInfo


def decode_image_msg(msg: Image) -> DecodedImage:
    """Pixels of a sensor_msgs/Image (a view of its buffer where the layout allows)."""
    return decode_image(msg.data, msg.height, msg.width, msg.encoding, msg.step, bool(msg.is_bigendian))


def decode_compressed_msg(msg: CompressedImage) -> DecodedImage:
    """Pixels of a sensor_msgs/CompressedImage (jpeg or png)."""
    return decode_compressed(msg.data, msg.format)


def image_msg(pixels: np.ndarray, encoding: str, header: Header) -> Image:
    """An Image of ``pixels`` (HxW or HxWxC uint8) in ``encoding`` with the given header."""
    data, step = encode_image(pixels, encoding)
    return Image(header=header, height=pixels.shape[0], width=pixels.shape[1], encoding=encoding,
                 is_bigendian=0, step=step, data=data)


#: ``<output>/compressed`` formats: lossless png for the class ids, jpeg for the pictures.
COMPRESSED_FORMATS = {"labels": "png", "color": "jpeg", "overlay": "jpeg", "confidence": "png"}


def compressed_image_msg(pixels: np.ndarray, output: str, header: Header) -> CompressedImage:
    """A CompressedImage of one output in its format (image_transport's compressed convention)."""
    fmt = COMPRESSED_FORMATS[output]
    return CompressedImage(header=header, format=fmt, data=encode_compressed(pixels, fmt, quality=90))


def segmentation_info_msg(header: Header, segmenter: Segmenter) -> SegmentationInfo:
    """What /segmentation/labels means: model, network size, ignore label and the class map."""
    height, width = segmenter.input_size or (0, 0)
    class_map = segmenter.class_map
    classes = [ClassInfo(id=i, name=name, r=int(c[0]), g=int(c[1]), b=int(c[2]))
               for i, (name, c) in enumerate(zip(class_map.names, class_map.colors))]
    return SegmentationInfo(header=header, model_variant=segmenter.variant,
                            checkpoint_sha256=segmenter.checkpoint_sha256 or "", input_height=height,
                            input_width=width, ignore_label=class_map.ignore_label, classes=classes,
                            backend=segmenter.config.backend, precision=segmenter.config.precision)


def vision_label_info_type() -> type | None:
    """vision_msgs/LabelInfo where vision_msgs is installed, else None."""
    try:
        from vision_msgs.msg import LabelInfo
    except ImportError:
        return None
    return LabelInfo


def vision_label_info_msg(header: Header, class_map: ClassMap, confidence_threshold: float):
    """The class map as vision_msgs/LabelInfo (call only where :func:`vision_label_info_type` is not None);
    ``threshold`` is the confidence below which the labels say 255."""
    from vision_msgs.msg import LabelInfo, VisionClass

    return LabelInfo(header=header, class_map=[VisionClass(class_id=i, class_name=name)
                                               for i, name in enumerate(class_map.names)],
                     threshold=float(confidence_threshold))
