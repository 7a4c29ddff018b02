"""Street furniture at the curb: poles with traffic signs, traffic lights and lamps; street trees.

:data:`POLES` holds one spec per pole kind (how often, how tall, how its signs are mounted,
what is fixed to its top) and :data:`SIGNS` one per sign shape (outline, colour schemes, bar).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .camera import NEAR_M, NOMINAL_ASPECT, Camera
from .canvas import Canvas
from .labels import LIGHT, POLE, SIGN, VEGETATION
from .palette import RGB, jitter, pick, shade
from .shapes import STREET_LAYER, WorldObject, billboard_poly, quad_s_plane, regular

_POLE_COLORS = ((120, 122, 125), (70, 75, 70), (40, 42, 45), (150, 150, 150))
_HOUSING_COLORS = ((30, 30, 32), (45, 45, 40), (200, 170, 40))
_LAMP_COLORS = ((220, 30, 25), (235, 170, 20), (40, 200, 90))  # red, amber, green, top to bottom
_WHITE = (240, 240, 240)
_RED = (200, 25, 25)


# ---- signs ----------------------------------------------------------------------------------


def _rect_outline(r: float) -> np.ndarray:
    return np.array([[-r * 1.1, -r * 0.75], [r * 1.1, -r * 0.75], [r * 1.1, r * 0.75], [-r * 1.1, r * 0.75]])


@dataclass(frozen=True)
class SignSpec:
    """A sign shape: outline for a half-size ``r`` (metres), (face, border) colour schemes, and
    whether a bar in the border colour crosses its face."""

    outline: Callable[[float], np.ndarray]
    schemes: tuple[tuple[RGB, RGB], ...]
    bar: bool = False


# The dict order is the order of the random choice of a shape.
SIGNS: dict[str, SignSpec] = {
    "circle": SignSpec(lambda r: regular(20, r),
                       (((240, 240, 240), (200, 20, 25)), ((30, 80, 170), _WHITE)), bar=True),
    "triangle": SignSpec(lambda r: regular(3, r * 1.15, np.pi / 2) * np.array([1, -1]) + np.array([0, -0.1 * r]),
                         (((240, 240, 235), _RED),)),
    "rect": SignSpec(_rect_outline,
                     (((30, 80, 170), _WHITE), ((30, 120, 60), _WHITE), (_WHITE, (30, 30, 30))), bar=True),
    "diamond": SignSpec(lambda r: regular(4, r * 1.1), (((245, 200, 30), _WHITE),)),
    "octagon": SignSpec(lambda r: regular(8, r, np.pi / 8), (((200, 20, 25), _WHITE),), bar=True),
    "inv_triangle": SignSpec(lambda r: regular(3, r * 1.15, np.pi / 2) + np.array([0, 0.1 * r]),
                             (((240, 240, 235), _RED),)),
}


@dataclass(frozen=True)
class Sign:
    spec: SignSpec
    size: float
    center_y: float
    face: RGB
    border: RGB

    def draw(self, canvas: Canvas, cam: Camera, x: float, s: float) -> None:
        """Border disc labelled sign, the face inside it and the bar as image detail."""
        outline = self.spec.outline(self.size / 2)
        canvas.fill(billboard_poly(cam, x, s, outline + np.array([0, self.center_y])), self.border, SIGN)
        canvas.fill(billboard_poly(cam, x, s, outline * 0.75 + np.array([0, self.center_y])), self.face, None)
        if self.spec.bar:
            bar = np.array([[-0.22, -0.05], [0.22, -0.05], [0.22, 0.05], [-0.22, 0.05]]) * self.size
            canvas.fill(billboard_poly(cam, x, s, bar + np.array([0, self.center_y])), self.border, None)


def _sign_schemes(rng: np.random.Generator) -> dict[str, tuple[RGB, RGB]]:
    """A colour scheme for every shape, drawn in table order whatever the shape (as the stream always was)."""
    return {shape: spec.schemes[rng.integers(len(spec.schemes))] if len(spec.schemes) > 1 else spec.schemes[0]
            for shape, spec in SIGNS.items()}


# ---- poles ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pole:
    """One pole's drawn parameters; it stands still at ``(x, s)``."""

    spec: PoleSpec
    x: float
    s: float
    toward_road: int  # +1 or -1: the direction its arms reach
    width: float
    color: RGB
    height: float
    signs: tuple[Sign, ...]
    housing: RGB
    lit: int  # which lamp of its traffic lights is on
    arm: float  # overhead arm length
    lamp_arm: float

    def draw(self, canvas: Canvas, cam: Camera, s_now: float) -> None:
        if self.s < cam.s + NEAR_M:
            return
        canvas.fill(quad_s_plane(cam, self.s, self.x - self.width / 2, self.x + self.width / 2, 0.0, self.height),
                    self.color, POLE)
        self.spec.fixture(self, canvas, cam)
        for sign in self.signs:
            sign.draw(canvas, cam, self.x, self.s)

    def traffic_light(self, canvas: Canvas, cam: Camera, lx: float, ly: float) -> None:
        """A housing with a back plate and three lamps, one of them lit, centred at (lx, ly)."""
        s, w, h = self.s, 0.32, 0.95
        canvas.fill(quad_s_plane(cam, s, lx - w * 0.85, lx + w * 0.85, ly - h * 0.55, ly + h * 0.55),
                    shade(self.housing, 0.8), LIGHT)
        canvas.fill(quad_s_plane(cam, s, lx - w / 2, lx + w / 2, ly - h / 2, ly + h / 2), self.housing, LIGHT)
        ppm = cam.pixels_per_metre(s)
        for k, col in enumerate(_LAMP_COLORS):
            cy = ly + h / 3 - k * h / 3
            center = cam.project([lx], [cy], [s])[0]
            color = col if k == self.lit else shade(col, 0.3)
            r = 0.1 * ppm
            canvas.ellipse(center, (r, r * cam.height_px * NOMINAL_ASPECT / cam.width), color, LIGHT)


def _no_fixture(pole: Pole, canvas: Canvas, cam: Camera) -> None:
    """Sign posts carry only their signs."""


def _street_lamp(pole: Pole, canvas: Canvas, cam: Camera) -> None:
    """An arm towards the road with a lamp head (the glowing glass is image only)."""
    s, x, height = pole.s, pole.x, pole.height
    ax = x + pole.toward_road * pole.lamp_arm
    canvas.fill(quad_s_plane(cam, s, min(x, ax), max(x, ax), height - 0.12, height), pole.color, POLE)
    canvas.fill(quad_s_plane(cam, s, ax - 0.35, ax + 0.35, height - 0.28, height - 0.05), shade(pole.color, 0.8), POLE)
    canvas.fill(quad_s_plane(cam, s, ax - 0.3, ax + 0.3, height - 0.28, height - 0.22), (235, 230, 200), None)


def _light_on_top(pole: Pole, canvas: Canvas, cam: Camera) -> None:
    pole.traffic_light(canvas, cam, pole.x, pole.height + 0.45)


def _overhead_light(pole: Pole, canvas: Canvas, cam: Camera) -> None:
    """An arm over the road with a light hanging from it, and a second light at eye height."""
    s, x, height = pole.s, pole.x, pole.height
    ax = x + pole.toward_road * pole.arm
    canvas.fill(quad_s_plane(cam, s, min(x, ax), max(x, ax), height - 0.15, height), pole.color, POLE)
    pole.traffic_light(canvas, cam, ax, height - 0.15 - 0.55)
    pole.traffic_light(canvas, cam, x + pole.toward_road * 0.35, 2.6)


@dataclass(frozen=True)
class PoleSpec:
    """A pole kind: choice weights, height range, its signs, and what is fixed to its top."""

    weights: tuple[float, ...]  # one entry per slot of the weighted choice
    height: tuple[float, float]
    min_signs: int
    extra_sign_chance: float
    stacked_signs: bool  # signs stacked down from the top, else one at 2.2-2.8 m
    fixture: Callable[[Pole, Canvas, Camera], None]


# The dict order is the order of the choice slots and of the height draws. Sign posts have two
# slots (0.3 and 0.15): merging them would change the choice's cumulative sums, and so scenes.
POLES: dict[str, PoleSpec] = {
    "sign": PoleSpec((0.3, 0.15), (2.6, 3.6), 1, 0.3, True, _no_fixture),
    "light": PoleSpec((0.25,), (3.2, 4.2), 0, 0.25, False, _light_on_top),
    "lamp": PoleSpec((0.2,), (7.0, 10.0), 0, 0.25, False, _street_lamp),
    "overhead": PoleSpec((0.1,), (5.5, 6.5), 0, 0.25, False, _overhead_light),
}
_POLE_SLOTS = [kind for kind, spec in POLES.items() for _ in spec.weights]
_POLE_WEIGHTS = [w for spec in POLES.values() for w in spec.weights]


def _signs(rng: np.random.Generator, spec: PoleSpec, height: float) -> tuple[Sign, ...]:
    """The signs on a pole, top to bottom."""
    signs = []
    count = spec.min_signs + int(rng.random() < spec.extra_sign_chance)
    top = height
    for _ in range(count):
        shape = str(rng.choice(list(SIGNS)))
        size = float(rng.uniform(0.6, 0.9))
        face, border = _sign_schemes(rng)[shape]
        center_y = top - size / 2 - 0.05 if spec.stacked_signs else rng.uniform(2.2, 2.8)
        signs.append(Sign(SIGNS[shape], size, center_y, face, border))
        top = center_y - size / 2 - 0.1
    return tuple(signs)


def pole(rng: np.random.Generator, x: float, s: float, toward_road: int) -> WorldObject:
    """A pole of a random kind at the curb; ``toward_road`` is the side its arms reach to."""
    kind = str(rng.choice(_POLE_SLOTS, p=_POLE_WEIGHTS))
    spec = POLES[kind]
    width = float(rng.uniform(0.12, 0.22))
    color = pick(rng, _POLE_COLORS, 10)
    heights = {k: rng.uniform(*other.height) for k, other in POLES.items()}  # all drawn: keeps the stream
    signs = _signs(rng, spec, heights[kind])
    p = Pole(spec=spec, x=x, s=s, toward_road=toward_road, width=width, color=color, height=heights[kind], signs=signs,
             housing=pick(rng, _HOUSING_COLORS, 8), lit=int(rng.integers(3)), arm=float(rng.uniform(2.0, 5.0)),
             lamp_arm=float(rng.uniform(1.0, 2.5)))
    return WorldObject(layer=STREET_LAYER, x=float(x), s=float(s), speed=0.0, draw=p.draw, length=0.3)


# ---- trees ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tree:
    """A trunk and a crown of overlapping ellipses, all labelled vegetation."""

    x: float
    s: float
    trunk_h: float
    trunk_w: float
    crown_r: float
    blobs: tuple[tuple[float, float, float, RGB], ...]  # (dx, y, radius, colour)
    trunk: RGB

    def draw(self, canvas: Canvas, cam: Camera, s_now: float) -> None:
        x, s = self.x, self.s
        if s < cam.s + NEAR_M:
            return
        trunk_top = self.trunk_h + self.crown_r * 0.5
        canvas.fill(quad_s_plane(cam, s, x - self.trunk_w / 2, x + self.trunk_w / 2, 0.0, trunk_top),
                    self.trunk, VEGETATION)
        ppm = cam.pixels_per_metre(s)
        squash = cam.height_px * NOMINAL_ASPECT / cam.width
        for bx, by, br, col in self.blobs:
            center = cam.project([x + bx], [by], [s])[0]
            canvas.ellipse(center, (br * ppm, br * ppm * squash), col, VEGETATION)


def tree(rng: np.random.Generator, x: float, s: float, base_color: RGB, layer: int = STREET_LAYER) -> WorldObject:
    trunk_h = float(rng.uniform(1.8, 3.5))
    trunk_w = float(rng.uniform(0.22, 0.45))
    crown_r = float(rng.uniform(1.4, 3.4))
    n = int(rng.integers(5, 10))
    blobs = tuple((float(rng.normal(0, crown_r * 0.45)), float(trunk_h + crown_r * 0.8 + rng.normal(0, crown_r * 0.4)),
                   float(crown_r * rng.uniform(0.45, 0.8)), jitter(rng, base_color, 22)) for _ in range(n))
    t = Tree(x=x, s=s, trunk_h=trunk_h, trunk_w=trunk_w, crown_r=crown_r, blobs=blobs,
             trunk=jitter(rng, (80, 65, 50), 15))
    return WorldObject(layer=layer, x=float(x), s=float(s), speed=0.0, draw=t.draw, length=0.5)
