"""One frame: cull the world to what the camera sees, paint it back to front, finish the image."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .backdrop import sky, skyline
from .camera import FAR_M, NEAR_M, Camera
from .canvas import Canvas
from .finish import finish
from .ground import ground
from .labels import IGNORE_LABEL
from .layout import Layout
from .shapes import STREET_LAYER, WorldObject
from .world import CHUNK_M, World

_BACKDROP_STREAM = 4  # same clouds and skyline in every frame of a world
_SHADOW_MIN_LENGTH_M = 3.0  # street objects longer than this (vehicles) cast a shadow


@dataclass(frozen=True)
class SyntheticFrame:
    """One RGB image (HxWx3 uint8) and its train-id labels (HxW uint8, 255 = ignored)."""

    image: np.ndarray
    labels: np.ndarray


def visible_objects(world: World, cam: Camera, t: float) -> list[tuple[WorldObject, float]]:
    """Objects within the drawn depth range at time ``t``, with their position along the road then."""
    # objects start inside their chunk and are at most 30 m long; movers may come from behind
    first = math.floor((cam.s - (32.0 if t == 0 else 80.0)) / CHUNK_M)
    last = math.floor((cam.s + FAR_M) / CHUNK_M)
    visible: list[tuple[WorldObject, float]] = []
    for index in range(first, last + 1):
        for obj in world(index):
            s_now = obj.s_at(t)
            if s_now + obj.length > cam.s + NEAR_M and s_now < cam.s + FAR_M:
                visible.append((obj, s_now))
    return visible


def hood(canvas: Canvas, layout: Layout) -> None:
    """The ego car's bonnet at the bottom of the image, labelled ignore."""
    h, w = canvas.height, canvas.width
    xs = np.linspace(-0.05, 1.05, 24)
    ys = 1.0 - layout.hood * (1.0 - 0.45 * (2 * xs - 1) ** 2)
    pts = np.concatenate([np.stack([xs * w, ys * h], 1), [[1.05 * w, h + 1.0], [-0.05 * w, h + 1.0]]])
    canvas.fill(pts, layout.hood_color, IGNORE_LABEL)


def render(layout: Layout, world: World, cam: Camera, t: float, rng: np.random.Generator) -> SyntheticFrame:
    """Draw the world at time ``t``; ``rng`` only feeds per-frame noise."""
    canvas = Canvas(cam.height_px, cam.width)
    backdrop = np.random.default_rng([world.key[0], world.key[1], _BACKDROP_STREAM])
    sky(canvas, layout, cam, backdrop)
    skyline(canvas, layout, cam, backdrop)
    visible = visible_objects(world, cam, t)
    vehicles = [(o, s) for o, s in visible if o.layer == STREET_LAYER and o.length > _SHADOW_MIN_LENGTH_M]
    ground(canvas, layout, cam, vehicles)
    # painter's order: outer layers first (nothing further out can hide something further in),
    # then far to near within a layer
    visible.sort(key=lambda item: (item[0].layer, -item[1]))
    for obj, s_now in visible:
        obj.draw(canvas, cam, s_now)
    if layout.hood > 0:
        hood(canvas, layout)
    image = finish(canvas, layout.lighting, rng)
    return SyntheticFrame(image=image, labels=canvas.labels)
