"""Pedestrians and riders: flat body-part polygons facing the camera, with a round head.

:data:`POSES` holds one spec per pose (standing on the sidewalk, seated on a two-wheeler); a
person's random proportions and clothes are drawn by :func:`person`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .camera import NEAR_M, NOMINAL_ASPECT, Camera
from .canvas import Canvas
from .labels import PERSON
from .palette import CLOTH_COLORS, RGB, SKIN_COLORS, pick, shade
from .shapes import STREET_LAYER, WorldObject, billboard_poly

_HAIR_COLORS = ((30, 25, 20), (80, 55, 35), (150, 120, 80), (90, 90, 90))
_SILHOUETTE_PX = 10.0  # shorter than this on screen: a two-tone silhouette


def _standing_legs(h: float, hip: float, stride: float) -> list[np.ndarray]:
    return [np.array([[-hip, 0.5 * h], [-0.01, 0.5 * h], [-0.02 + stride, 0.0], [-hip + stride, 0.0]]),
            np.array([[0.01, 0.5 * h], [hip, 0.5 * h], [hip - stride, 0.0], [0.02 - stride, 0.0]])]


def _seated_legs(h: float, hip: float, stride: float) -> list[np.ndarray]:
    return [np.array([[-hip, 0.45 * h], [-hip + 0.05, 0.45 * h], [-hip + 0.03, 0.0], [-hip - 0.05, 0.0]]),
            np.array([[hip - 0.05, 0.45 * h], [hip, 0.45 * h], [hip + 0.05, 0.02 * h], [hip - 0.03, 0.02 * h]])]


@dataclass(frozen=True)
class Pose:
    """How a person of a pose is shaped: height scale, legs, and torso span (fractions of the height)."""

    height_scale: float
    legs: Callable[[float, float, float], list[np.ndarray]]  # (height, hip half-width, stride)
    torso: tuple[float, float]


POSES: dict[str, Pose] = {
    "standing": Pose(1.0, _standing_legs, (0.48, 0.82)),
    "seated": Pose(0.85, _seated_legs, (0.42, 0.78)),
}


@dataclass(frozen=True)
class BodyParts:
    """Body-part polygons (dx, y) in metres, in a plane facing the camera."""

    legs: list[np.ndarray]
    torso: np.ndarray
    arms: list[np.ndarray]
    neck: np.ndarray


def body_parts(rng: np.random.Generator, height: float, pose: Pose) -> BodyParts:
    """A random stride, build and arm swing for a person of ``height`` in ``pose``."""
    h = height
    stride = rng.uniform(-0.06, 0.06) * h
    shoulder = rng.uniform(0.22, 0.27) * h / 2
    hip = shoulder * 0.8
    legs = pose.legs(h, hip, stride)
    torso_lo, torso_hi = pose.torso[0] * h, pose.torso[1] * h
    torso = np.array([[-hip, torso_lo], [hip, torso_lo], [shoulder, torso_hi], [-shoulder, torso_hi]])
    swing = rng.uniform(-0.04, 0.04) * h
    wrist = 0.46 * h
    arms = [np.array([[-shoulder, torso_hi], [-shoulder + 0.08, torso_hi],
                      [-shoulder - swing + 0.05, wrist], [-shoulder - swing - 0.03, wrist]]),
            np.array([[shoulder - 0.08, torso_hi], [shoulder, torso_hi],
                      [shoulder + swing + 0.03, wrist], [shoulder + swing - 0.05, wrist]])]
    neck = np.array([[-0.03 * h, torso_hi - 0.01], [0.03 * h, torso_hi - 0.01], [0.03 * h, 0.88 * h],
                     [-0.03 * h, 0.88 * h]])
    return BodyParts(legs=legs, torso=torso, arms=arms, neck=neck)


@dataclass(frozen=True)
class Person:
    """One person's drawn parameters; :meth:`draw` paints them standing (or sitting) at ``s_now``."""

    x: float
    label: int
    lift: float  # height of the feet above the ground (riders sit on their vehicle)
    height: float
    parts: BodyParts
    top: RGB
    pants: RGB
    skin: RGB
    hair: RGB
    bag: bool

    def draw(self, canvas: Canvas, cam: Camera, s_now: float) -> None:
        if s_now < cam.s + NEAR_M:
            return
        if cam.pixels_per_metre(s_now) * self.height < _SILHOUETTE_PX:
            self._silhouette(canvas, cam, s_now)
            return
        self._body(canvas, cam, s_now)
        self._head(canvas, cam, s_now)

    def _silhouette(self, canvas: Canvas, cam: Camera, s_now: float) -> None:
        """Legs and upper body as two trapezoids (fractions of the height)."""
        scale, lift = [1, self.height], [0, self.lift]
        legs = np.array([[-0.2, 0.0], [0.2, 0.0], [0.2, 0.5], [-0.2, 0.5]]) * scale + lift
        upper = np.array([[-0.25, 0.5], [0.25, 0.5], [0.12, 1.0], [-0.12, 1.0]]) * scale + lift
        canvas.fill(billboard_poly(cam, self.x, s_now, legs), self.pants, self.label)
        canvas.fill(billboard_poly(cam, self.x, s_now, upper), self.top, self.label)

    def _part(self, canvas: Canvas, cam: Camera, s_now: float, polygon: np.ndarray, color: RGB) -> None:
        lifted = polygon.copy()
        lifted[:, 1] += self.lift
        canvas.fill(billboard_poly(cam, self.x, s_now, lifted), color, self.label)

    def _body(self, canvas: Canvas, cam: Camera, s_now: float) -> None:
        for leg in self.parts.legs:
            self._part(canvas, cam, s_now, leg, self.pants)
        self._part(canvas, cam, s_now, self.parts.torso, self.top)
        for arm in self.parts.arms:
            self._part(canvas, cam, s_now, arm, shade(self.top, 0.85))
        self._part(canvas, cam, s_now, self.parts.neck, self.skin)
        if self.bag:
            h = self.height
            bag = np.array([[0.1, 0.5 * h], [0.3, 0.5 * h], [0.3, 0.62 * h], [0.1, 0.62 * h]])
            self._part(canvas, cam, s_now, bag, shade(self.pants, 0.6))

    def _head(self, canvas: Canvas, cam: Camera, s_now: float) -> None:
        """Face ellipse with a hair cap on its upper part."""
        head_r = 0.062 * self.height
        center = cam.project([self.x], [self.lift + 0.93 * self.height], [s_now])[0]
        ppm = cam.pixels_per_metre(s_now)
        ax = (head_r * ppm, head_r * 1.15 * ppm * cam.height_px * NOMINAL_ASPECT / cam.width)
        canvas.ellipse(center, ax, self.skin, self.label)
        canvas.ellipse(center - np.array([0, 0.35 * ax[1]]), (ax[0] * 1.02, ax[1] * 0.7), self.hair, self.label)


def make_person(rng: np.random.Generator, x: float, label: int = PERSON, lift: float = 0.0,
                pose: str = "standing") -> Person:
    """A person's random height, build and clothes (riders are made by the two-wheeler they sit on)."""
    spec = POSES[pose]
    height = float(rng.uniform(1.55, 1.92)) * spec.height_scale
    parts = body_parts(rng, height, spec)
    top = pick(rng, CLOTH_COLORS, 15)
    pants = pick(rng, CLOTH_COLORS, 10)
    skin = pick(rng, SKIN_COLORS, 8)
    hair = pick(rng, _HAIR_COLORS, 8)
    bag = bool(rng.random() < 0.3)
    return Person(x=x, label=label, lift=lift, height=height, parts=parts, top=top, pants=pants, skin=skin, hair=hair,
                  bag=bag)


def person(rng: np.random.Generator, x: float, s: float, speed: float) -> WorldObject:
    """A pedestrian standing or walking along the road at ``speed``."""
    p = make_person(rng, x)
    return WorldObject(layer=STREET_LAYER, x=float(x), s=float(s), speed=float(speed), draw=p.draw, length=0.5)
