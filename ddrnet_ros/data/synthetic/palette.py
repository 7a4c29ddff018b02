"""Colours: rounding to RGB, random variation, shading, and the base palettes objects draw from."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

RGB = tuple[int, int, int]

CAR_COLORS: tuple[RGB, ...] = (
    (235, 235, 235), (20, 20, 24), (150, 152, 158), (90, 92, 98), (30, 50, 110), (140, 20, 25),
    (200, 200, 205), (60, 70, 60), (170, 150, 120), (40, 80, 150), (110, 20, 40), (230, 220, 200),
)
FACADE_COLORS: tuple[RGB, ...] = (
    (200, 190, 170), (225, 220, 205), (170, 165, 160), (150, 90, 70), (120, 115, 110),
    (210, 180, 140), (185, 200, 205), (160, 130, 110), (95, 95, 100), (230, 210, 180),
    (175, 110, 85), (205, 205, 200),
)
CLOTH_COLORS: tuple[RGB, ...] = (
    (30, 30, 35), (60, 60, 70), (30, 40, 90), (120, 30, 30), (200, 200, 200), (90, 70, 50),
    (50, 90, 60), (150, 140, 120), (180, 60, 40), (70, 100, 160), (220, 180, 60), (20, 20, 20),
)
SKIN_COLORS: tuple[RGB, ...] = ((235, 200, 170), (200, 150, 115), (150, 100, 70), (95, 65, 45), (225, 185, 150))


def rgb(values: Iterable[float]) -> RGB:
    """Round and clamp three channel values to an 8-bit colour (cv2 wants plain ints)."""
    r, g, b = (min(255, max(0, int(float(v) + 0.5))) for v in values)
    return r, g, b


def jitter(rng: np.random.Generator, base: Iterable[float], amount: float) -> RGB:
    """A colour near ``base``: a shared brightness shift plus a smaller per-channel one."""
    shift = rng.uniform(-amount / 3, amount / 3, 4)
    tone = (shift[3] * 3.0)
    return rgb((float(c) + tone + d) for c, d in zip(base, shift[:3]))


def pick(rng: np.random.Generator, colors: tuple[RGB, ...], amount: float) -> RGB:
    """One colour of a palette, jittered: the index is drawn first, then the variation."""
    return jitter(rng, colors[rng.integers(len(colors))], amount)


def shade(color: Iterable[float], factor: float) -> RGB:
    """The same colour lit more or less (side faces, trims, dark frames)."""
    return rgb(float(c) * factor for c in color)
