"""Class names, palette and ignore label: the one place that decides them.

Also home of colorize/overlay, in numpy (CPU paths, reports) and torch (GPU path), so
that every consumer paints a class with the same colour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

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
    def from_yaml(cls, path: str | Path) -> ClassMap:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ClassMapError(f"cannot read class config {path}: {exc.strerror}") from None
        return cls._from_text(text, str(path))

    @classmethod
    def builtin(cls) -> ClassMap:
        text = resources.files("ddrnet_ros.resources").joinpath(BUILTIN_CLASSES).read_text()
        return cls._from_text(text, "builtin:" + BUILTIN_CLASSES)

    @classmethod
    def load(cls, path: str | Path | None = None) -> ClassMap:
        """The built-in Cityscapes map for an empty path, else the named YAML file."""
        return cls.from_yaml(path) if path else cls.builtin()

    @classmethod
    def _from_text(cls, text: str, source: str) -> ClassMap:
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


#: Pixels :func:`overlay` blends at once: its float32 scratch (~70 bytes a pixel) stays a few MB
#: instead of growing with the image (1.1 GB for a 4096x4096 frame in one go).
OVERLAY_BAND_PIXELS = 1 << 16


def overlay(image_rgb: np.ndarray, labels: np.ndarray, class_map: ClassMap, alpha: float) -> np.ndarray:
    """Alpha-blend the colour mask over an RGB image; ignored pixels keep the image.

    Band by band of rows (each pixel on its own, so the result is the same as in one go)."""
    out = np.empty((*labels.shape, 3), np.uint8)
    step = max(1, OVERLAY_BAND_PIXELS // max(1, labels.shape[1]))
    for top in range(0, labels.shape[0], step):
        rows = slice(top, top + step)
        out[rows] = _overlay_band(image_rgb[rows], labels[rows], class_map, alpha)
    return out


def _overlay_band(image_rgb: np.ndarray, labels: np.ndarray, class_map: ClassMap, alpha: float) -> np.ndarray:
    """:func:`overlay` of some rows, in float32 (the rounding :func:`overlay_torch` repeats)."""
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


# --------------------------------------------------------------------------------------------
# coarser label spaces: each of their classes stands for a set of the model's classes


@dataclass(frozen=True)
class CoarseLabelSpace:
    """A dataset's label space whose classes are sets of the model's (Cityscapes) classes.

    Training on it uses a set-valued loss (a pixel labelled with set S is right when the
    model puts its mass anywhere in S); scoring maps each model class to the coarse class
    whose set holds it and compares in the coarse space.
    """

    name: str
    names: tuple[str, ...]                    # coarse class names, indexed by coarse id
    sets: tuple[tuple[str, ...], ...]         # per coarse class: the model class names it stands for
    colors: np.ndarray                        # (len(names), 3) uint8 RGB, for reports
    ignore_label: int                         # the dataset's own "unlabelled" id

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def class_map(self) -> ClassMap:
        """The coarse classes as a ClassMap (names and colours), for reports and metrics."""
        return ClassMap(names=self.names, colors=self.colors, ignore_label=IGNORE_LABEL,
                        source=f"builtin:{self.name}")

    def check_against(self, model_classes: ClassMap) -> None:
        """Every set non-empty and made of known model classes; sets disjoint and covering all."""
        known = set(model_classes.names)
        seen: list[str] = []
        for coarse, members in zip(self.names, self.sets):
            if not members:
                raise ClassMapError(f"{self.name}: class {coarse!r} maps to no model class")
            unknown = [m for m in members if m not in known]
            if unknown:
                raise ClassMapError(f"{self.name}: class {coarse!r} maps to unknown class(es) {unknown}; "
                                    f"the model's classes are {list(model_classes.names)}")
            seen.extend(members)
        if len(seen) != len(set(seen)) or set(seen) != known:
            raise ClassMapError(f"{self.name}: the class sets must cover each of the model's "
                                f"{model_classes.num_classes} classes exactly once")

    def membership(self, model_classes: ClassMap) -> np.ndarray:
        """(coarse classes, model classes) bool: ``[k, c]`` is True when coarse class k holds c."""
        self.check_against(model_classes)
        index = {name: i for i, name in enumerate(model_classes.names)}
        table = np.zeros((self.num_classes, model_classes.num_classes), bool)
        for k, members in enumerate(self.sets):
            table[k, [index[m] for m in members]] = True
        return table

    def prediction_lookup(self, model_classes: ClassMap) -> np.ndarray:
        """A 256-entry uint8 table: model class id -> coarse id; anything else -> 255 (no class)."""
        table = np.full(256, IGNORE_LABEL, np.uint8)
        for k, c in zip(*np.nonzero(self.membership(model_classes))):
            table[c] = k
        return table

    def normalise_labels(self, labels: np.ndarray) -> np.ndarray:
        """The dataset's label ids with its own "unlabelled" id (and anything unknown) -> 255."""
        table = np.full(256, IGNORE_LABEL, np.uint8)
        table[: self.num_classes] = np.arange(self.num_classes, dtype=np.uint8)
        return table[labels]


#: CamVid's 11 classes (SegNet's split, ids 0-10, 11 = unlabelled) as sets of Cityscapes classes.
CAMVID = CoarseLabelSpace(
    name="camvid",
    names=("sky", "building", "pole", "road", "pavement", "tree", "sign symbol", "fence", "car",
           "pedestrian", "bicyclist"),
    sets=(("sky",), ("building", "wall"), ("pole",), ("road",), ("sidewalk",), ("vegetation", "terrain"),
          ("traffic light", "traffic sign"), ("fence",), ("car", "truck", "bus", "train"), ("person",),
          ("rider", "motorcycle", "bicycle")),
    colors=np.array([[128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128], [60, 40, 222],
                     [128, 128, 0], [192, 128, 128], [64, 64, 128], [64, 0, 128], [64, 64, 0],
                     [0, 128, 192]], np.uint8),
    ignore_label=11,
)

#: Coarse label spaces by name: where datasets labelled more coarsely than the model look theirs up.
LABEL_SPACES: dict[str, CoarseLabelSpace] = {space.name: space for space in (CAMVID,)}


@dataclass(frozen=True)
class TrainingLabelSets:
    """The label ids a training batch may hold, each standing for a set of model classes.

    Ids ``0..C-1`` are the model's own classes (singleton sets); each coarse label space in
    use gets a block of ids after them (``offset + coarse id``); every other id is ignored.
    Mixed batches (synthetic frames in model ids, CamVid frames in coarse ids) thus share one
    uint8 label tensor and one loss.
    """

    table: np.ndarray                          # (256, C) bool: id -> member classes
    valid: np.ndarray                          # (256,) bool: id counts in the loss
    offsets: dict[str, int]                    # coarse space name -> first id of its block

    @classmethod
    def build(cls, model_classes: ClassMap, spaces: Sequence[CoarseLabelSpace] = ()) -> TrainingLabelSets:
        num = model_classes.num_classes
        table = np.zeros((256, num), bool)
        table[np.arange(num), np.arange(num)] = True
        offsets: dict[str, int] = {}
        next_id = num
        for space in spaces:
            if space.name in offsets:
                continue
            if next_id + space.num_classes > model_classes.ignore_label:
                raise ClassMapError(f"too many coarse label spaces: ids would reach the ignore label "
                                    f"{model_classes.ignore_label}")
            offsets[space.name] = next_id
            table[next_id:next_id + space.num_classes] = space.membership(model_classes)
            next_id += space.num_classes
        valid = table.any(axis=1)
        assert isinstance(valid, np.ndarray)  # a 2-D table reduced over one axis
        return cls(table=table, valid=valid, offsets=offsets)

    def encoder(self, space: CoarseLabelSpace) -> np.ndarray:
        """A 256-entry uint8 table: the space's normalised ids (255 = ignore) -> training ids."""
        lookup = np.full(256, IGNORE_LABEL, np.uint8)
        offset = self.offsets[space.name]
        lookup[: space.num_classes] = np.arange(offset, offset + space.num_classes, dtype=np.uint8)
        return lookup

    def label_weights(self, class_weights: np.ndarray) -> np.ndarray:
        """(256,) float32: each id's loss weight, the largest weight among the classes it stands for.

        The largest, not the mean, so a coarse label ("sign symbol" = {traffic light, traffic
        sign}) is weighted like its rarest member; ids that count nowhere get 0.
        """
        class_weights = np.asarray(class_weights, np.float32)
        if class_weights.shape != (self.table.shape[1],):
            raise ClassMapError(f"{class_weights.shape[0] if class_weights.ndim else 0} class weights "
                                f"for {self.table.shape[1]} classes")
        weights = np.where(self.table, class_weights[None, :], 0.0).max(axis=1)
        return np.where(self.valid, weights, 0.0).astype(np.float32)

    @property
    def has_sets(self) -> bool:
        """Whether any id stands for more than one class (else plain cross-entropy is exact)."""
        return bool(self.offsets)
