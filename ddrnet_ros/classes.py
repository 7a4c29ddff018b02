"""Class names, palette and ignore label: the one place that decides them.

Also home of colorize/overlay, in numpy (CPU paths, reports) and torch (GPU path), so
that every consumer paints a class with the same colour.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

IGNORE_LABEL = 255
BUILTIN_CLASSES = "classes_cityscapes.yaml"


class ClassMapError(ValueError):
    """A class configuration file is malformed or does not fit the model."""


@dataclass(frozen=True)
class ClassMap:
    """Names and RGB colours of the classes a model predicts, indexed by class id."""

    names: tuple[str, ...]
    colors: np.ndarray  # (num_classes, 3) uint8, RGB
    ignore_label: int = IGNORE_LABEL
    source: str = "builtin:" + BUILTIN_CLASSES

    def __post_init__(self) -> None:
        colors = np.asarray(self.colors)
        if colors.shape != (len(self.names), 3):
            raise ClassMapError(
                f"{self.source}: {len(self.names)} class names but colours of shape {colors.shape}"
            )
        if not 0 <= self.ignore_label <= 255 or self.ignore_label < len(self.names):
            raise ClassMapError(
                f"{self.source}: ignore_label {self.ignore_label} must be in "
                f"[{len(self.names)}, 255] (outside the class ids)"
            )
        object.__setattr__(self, "colors", colors.astype(np.uint8))

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def lookup_table(self, ignore_color: Sequence[int] = (0, 0, 0)) -> np.ndarray:
        """A 256x3 uint8 table: class id -> colour; every other value -> ``ignore_color``."""
        table = np.zeros((256, 3), np.uint8)
        table[:] = np.asarray(ignore_color, np.uint8)
        table[: self.num_classes] = self.colors
        return table

    def check_num_classes(self, num_classes: int) -> None:
        if num_classes != self.num_classes:
            raise ClassMapError(
                f"{self.source} lists {self.num_classes} classes but the model predicts "
                f"{num_classes}; use a class_config with exactly {num_classes} entries"
            )

    @classmethod
    def from_yaml(cls, path: str | Path) -> "ClassMap":
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ClassMapError(f"cannot read class config {path}: {exc.strerror}") from None
        return cls._from_text(text, str(path))

    @classmethod
    def builtin(cls) -> "ClassMap":
        text = resources.files("ddrnet_ros.resources").joinpath(BUILTIN_CLASSES).read_text()
        return cls._from_text(text, "builtin:" + BUILTIN_CLASSES)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "ClassMap":
        """The built-in Cityscapes map for an empty path, else the named YAML file."""
        return cls.from_yaml(path) if path else cls.builtin()

    @classmethod
    def _from_text(cls, text: str, source: str) -> "ClassMap":
        try:
            data = yaml.safe_load(text)
            entries = data["classes"]
            names = tuple(str(entry["name"]) for entry in entries)
            colors = np.array([[int(c) for c in entry["color"]] for entry in entries])
            ignore = int(data.get("ignore_label", IGNORE_LABEL))
        except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
            raise ClassMapError(
                f"{source}: expected 'classes: [{{name: ..., color: [r, g, b]}}, ...]' "
                f"and an optional 'ignore_label' ({type(exc).__name__}: {exc})"
            ) from None
        if not names:
            raise ClassMapError(f"{source}: no classes listed")
        if colors.ndim != 2 or colors.shape[1] != 3 or colors.min() < 0 or colors.max() > 255:
            raise ClassMapError(f"{source}: every colour must be three integers in 0..255")
        return cls(names=names, colors=colors, ignore_label=ignore, source=source)


def colorize(labels: np.ndarray, class_map: ClassMap) -> np.ndarray:
    """HxW uint8 labels -> HxWx3 uint8 RGB mask (ignored/unknown ids are black)."""
    return class_map.lookup_table()[labels]


def overlay(image_rgb: np.ndarray, labels: np.ndarray, class_map: ClassMap, alpha: float) -> np.ndarray:
    """Alpha-blend the colour mask over an RGB image; ignored pixels keep the image."""
    color = colorize(labels, class_map).astype(np.float32)
    image = image_rgb.astype(np.float32)
    blended = image * (1.0 - alpha) + color * alpha
    keep = labels >= class_map.num_classes
    blended[keep] = image[keep]
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def colorize_torch(labels, lookup_table):
    """Torch twin of :func:`colorize`: ``lookup_table`` is a (256, 3) uint8 tensor on the labels' device."""
    return lookup_table[labels.long()]


def overlay_torch(image_rgb, labels, lookup_table, num_classes: int, alpha: float):
    """Torch twin of :func:`overlay` (same rounding), for the GPU path."""
    import torch

    color = lookup_table[labels.long()].float()
    image = image_rgb.float()
    blended = image * (1.0 - alpha) + color * alpha
    keep = (labels >= num_classes).unsqueeze(-1)
    blended = torch.where(keep, image, blended)
    return blended.round().clamp_(0, 255).to(torch.uint8)
