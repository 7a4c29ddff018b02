"""Bicycles and motorcycles in the vertical plane along the road, parked or with a rider.

:data:`TWO_WHEELERS` holds one spec per kind (label, wheel size, wheelbase, how wheels and
frame are drawn, where the rider sits).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .camera import NEAR_M, Camera
from .canvas import Canvas
from .labels import BICYCLE, MOTORCYCLE, RIDER
from .palette import CAR_COLORS, RGB, pick, shade
from .people import Person, make_person
from .shapes import STREET_LAYER, WorldObject, circle_in_x_plane, quad_s_plane

_TYRE_STROKE_M = 0.08  # bicycle tyre and frame width: bold enough to be learnable at 512x1024


@dataclass(frozen=True)
class TwoWheeler:
    """One two-wheeler's drawn parameters; :meth:`draw` paints it with its rear tyre at ``s_now``."""

    spec: TwoWheelerSpec
    x: float
    frame: RGB
    rider: Person | None

    def draw(self, canvas: Canvas, cam: Camera, s_now: float) -> None:
        if s_now < cam.s + NEAR_M:
            return
        spec = self.spec
        for ws in (s_now, s_now + spec.wheelbase):
            tyre = circle_in_x_plane(cam, self.x, ws + spec.wheel_radius, spec.wheel_radius, spec.wheel_radius, 18)
            spec.wheel(canvas, cam, s_now, tyre, spec.label)
        spec.body(self, canvas, cam, s_now)
        if self.rider is not None:
            self.rider.draw(canvas, cam, s_now + spec.wheelbase * 0.5)


# ---- wheels and frames ----------------------------------------------------------------------


def _solid_wheel(canvas: Canvas, cam: Camera, s_now: float, tyre: np.ndarray, label: int) -> None:
    canvas.fill(tyre, (25, 25, 25), label)


def _spoked_wheel(canvas: Canvas, cam: Camera, s_now: float, tyre: np.ndarray, label: int) -> None:
    """Only the tyre: the ground shows through the spokes (and is labelled so)."""
    thickness = max(2, int(round(_TYRE_STROKE_M * cam.pixels_per_metre(s_now))))
    canvas.ring(tyre, (30, 30, 30), label, thickness)


def _motorcycle_body(t: TwoWheeler, canvas: Canvas, cam: Camera, s_now: float) -> None:
    """Tank and seat as one side polygon, and the front fairing facing the camera."""
    x, spec = t.x, t.spec
    a, b = s_now + spec.wheel_radius, s_now + spec.wheelbase + spec.wheel_radius
    body = cam.project([x] * 5, [0.35, 0.45, 0.95, 1.0, 0.7], [a + 0.2, b - 0.2, b - 0.1, a + 0.5, a + 0.1])
    canvas.fill(body, t.frame, spec.label)
    canvas.fill(quad_s_plane(cam, s_now, x - 0.2, x + 0.2, 0.3, 0.9), shade(t.frame, 0.7), spec.label)


def _bicycle_body(t: TwoWheeler, canvas: Canvas, cam: Camera, s_now: float) -> None:
    """Diamond frame as five tubes in the side plane, and the handlebar stem facing the camera."""
    x, spec, r = t.x, t.spec, t.spec.wheel_radius
    a, b = s_now + r, s_now + spec.wheelbase + r
    w = 0.055
    tubes = ((r, a, 0.75, a + 0.45), (0.75, a + 0.45, 0.78, b - 0.1), (r, a + 0.5, 0.78, b - 0.1), (r, b, 0.8, b - 0.1),
             (r, a, r, a + 0.5))
    for (y0, s0, y1, s1) in tubes:
        tube = cam.project([x] * 4, [y0 - w, y0 + w, y1 + w, y1 - w], [s0, s0, s1, s1])
        canvas.fill(tube, t.frame, spec.label)
    canvas.fill(quad_s_plane(cam, s_now, x - 0.03, x + 0.03, 0.0, 0.7), (30, 30, 30), spec.label)


# ---- the table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TwoWheelerSpec:
    label: int
    wheel_radius: float
    wheelbase: float
    rider_lift: float  # seat height: where the rider's feet hang
    wheel: Callable[[Canvas, Camera, float, np.ndarray, int], None]
    body: Callable[[TwoWheeler, Canvas, Camera, float], None]

    @property
    def length(self) -> float:
        return self.wheelbase + 2 * self.wheel_radius


TWO_WHEELERS: dict[str, TwoWheelerSpec] = {
    "motorcycle": TwoWheelerSpec(MOTORCYCLE, 0.3, 1.45, 0.45, _solid_wheel, _motorcycle_body),
    "bicycle": TwoWheelerSpec(BICYCLE, 0.34, 1.1, 0.55, _spoked_wheel, _bicycle_body),
}


def two_wheeler(rng: np.random.Generator, kind: str, x: float, s: float, speed: float, ridden: bool) -> WorldObject:
    """A ``kind`` (a key of :data:`TWO_WHEELERS`) two-wheeler, with a seated rider if ``ridden``."""
    spec = TWO_WHEELERS[kind]
    frame = pick(rng, CAR_COLORS, 15)
    rider = make_person(rng, x, RIDER, lift=spec.rider_lift, pose="seated") if ridden else None
    t = TwoWheeler(spec=spec, x=x, frame=frame, rider=rider)
    return WorldObject(layer=STREET_LAYER, x=float(x), s=float(s), speed=float(speed), draw=t.draw, length=spec.length)
