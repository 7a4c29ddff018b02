"""The canvas: an RGB image and its label map, painted by the same calls so labels are exact."""

from __future__ import annotations

import cv2
import numpy as np

from .labels import SKY

SHIFT = 4  # fixed-point bits for cv2 polygon vertices (sub-pixel geometry)
_ONE = 1 << SHIFT


def fixed(points: np.ndarray) -> np.ndarray:
    """Float pixel coordinates -> cv2's fixed-point int32 vertices (``SHIFT`` fractional bits)."""
    # depths are clamped to >= 5 cm in Camera.project(), which keeps coordinates far inside int32
    return np.rint(points * _ONE).astype(np.int32)


class Canvas:
    """An RGB image and its label map, always painted by the same geometry."""

    def __init__(self, height: int, width: int) -> None:
        self.image = np.zeros((height, width, 3), np.uint8)
        self.labels = np.full((height, width), SKY, np.uint8)
        self.height, self.width = height, width

    def fill(self, points: np.ndarray, color, label: int | None) -> None:
        """Fill one polygon in the image and, unless ``label`` is None, the same one in the labels."""
        pts = [fixed(points)]
        cv2.fillPoly(self.image, pts, color, cv2.LINE_8, SHIFT)
        if label is not None:
            cv2.fillPoly(self.labels, pts, int(label), cv2.LINE_8, SHIFT)

    def fill_many(self, polygons: np.ndarray, color, label: int | None) -> None:
        """Fill (K, N, 2) polygons of one colour with one call."""
        if len(polygons) == 0:
            return
        pts = list(fixed(polygons))
        cv2.fillPoly(self.image, pts, color, cv2.LINE_8, SHIFT)
        if label is not None:
            cv2.fillPoly(self.labels, pts, int(label), cv2.LINE_8, SHIFT)

    def ellipse(self, center, axes, color, label: int | None) -> None:
        c = tuple(int(v) for v in fixed(np.asarray(center, np.float64)))
        a = tuple(int(max(v, 1)) for v in fixed(np.asarray(axes, np.float64)))
        cv2.ellipse(self.image, c, a, 0, 0, 360, color, -1, cv2.LINE_8, SHIFT)
        if label is not None:
            cv2.ellipse(self.labels, c, a, 0, 0, 360, int(label), -1, cv2.LINE_8, SHIFT)

    def lines(self, segments: np.ndarray, color, thickness: int = 1) -> None:
        """(K, 2, 2) line segments in the image only (joints, grooves: texture, not classes)."""
        cv2.polylines(self.image, list(fixed(segments)), False, color, thickness, cv2.LINE_8, SHIFT)

    def ring(self, points: np.ndarray, color, label: int, thickness: int) -> None:
        """A closed outline in the image and the labels (bicycle tyres: thin, with the ground showing through)."""
        pts = [fixed(points)]
        cv2.polylines(self.image, pts, True, color, thickness, cv2.LINE_8, SHIFT)
        cv2.polylines(self.labels, pts, True, label, thickness, cv2.LINE_8, SHIFT)

    def blend(self, points: np.ndarray, color, alpha: float, label: int) -> None:
        """Semi-transparent polygon (mesh fences): the label takes it, the image shows through."""
        pts = fixed(points)
        x0 = max(int(pts[:, 0].min()) >> SHIFT, 0)
        y0 = max(int(pts[:, 1].min()) >> SHIFT, 0)
        x1 = min((int(pts[:, 0].max()) >> SHIFT) + 2, self.width)
        y1 = min((int(pts[:, 1].max()) >> SHIFT) + 2, self.height)
        if x1 <= x0 or y1 <= y0:
            return
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        local = pts - np.array([x0 << SHIFT, y0 << SHIFT], np.int32)
        cv2.fillPoly(mask, [local], 1, cv2.LINE_8, SHIFT)
        region = self.image[y0:y1, x0:x1]
        sel = mask.astype(bool)
        region[sel] = (region[sel] * (1 - alpha) + np.asarray(color, np.float64) * alpha).astype(np.uint8)
        self.labels[y0:y1, x0:x1][sel] = label
