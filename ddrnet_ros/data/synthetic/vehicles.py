"""Cars, vans, trucks, buses and trams: boxes with windows, lights and wheels.

:data:`VEHICLES` holds one spec per kind (sizes, label, paint, body style); :func:`vehicle`
draws a vehicle's random parameters from it and returns the world object that draws it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .camera import NEAR_M, Camera
from .canvas import Canvas
from .labels import BUS, CAR, TRAIN, TRUCK
from .palette import CAR_COLORS, RGB, jitter, pick, shade
from .shapes import STREET_LAYER, Span, WorldObject, box, circle_in_x_plane, draw_span, quad_s_plane, quad_x_plane

_TAIL_LAMP = (200, 25, 20)
_HEAD_LAMP = (235, 235, 215)
_CARGO_COLORS = ((235, 235, 235), (200, 60, 40), (60, 90, 150), (180, 180, 185))
_SILHOUETTE_PX = 10.0  # narrower than this on screen: body and cabin only


@dataclass(frozen=True)
class Vehicle:
    """One vehicle's drawn parameters; :meth:`draw` paints it with its near end at ``s_near``."""

    spec: VehicleSpec
    x: float
    width: float
    length: float
    body_top: float
    roof: float
    color: RGB
    cargo: RGB
    glass: RGB
    facing_us: bool

    @property
    def x0(self) -> float:
        return self.x - self.width / 2

    @property
    def x1(self) -> float:
        return self.x + self.width / 2

    @property
    def lamp(self) -> RGB:
        return _HEAD_LAMP if self.facing_us else _TAIL_LAMP

    def draw(self, canvas: Canvas, cam: Camera, s_near: float) -> None:
        if s_near < cam.s + NEAR_M:
            return
        if cam.pixels_per_metre(s_near) * self.width < _SILHOUETTE_PX:
            self._silhouette(canvas, cam, s_near)
            return
        self._wheels(canvas, cam, s_near)
        self.spec.body(self, canvas, cam, s_near)
        self._lamps_and_plate(canvas, cam, s_near)

    def _silhouette(self, canvas: Canvas, cam: Camera, s_near: float) -> None:
        """Far away: body and cabin boxes, no detail that would only alias."""
        s1, label = s_near + self.length, self.spec.label
        box(canvas, cam, self.x0, self.x1, 0.0, self.body_top, s_near, s1, self.color, label)
        box(canvas, cam, self.x0 + 0.1, self.x1 - 0.1, self.body_top, self.roof, s_near + self.length * 0.2,
            s1 - self.length * 0.2, self.color, label)

    def _wheels(self, canvas: Canvas, cam: Camera, s_near: float) -> None:
        """Side wheels when a side is seen (drawn first: the body hides their upper part), and the underbody."""
        x0, x1, label, wheel_r = self.x0, self.x1, self.spec.label, self.spec.wheel_radius
        lateral = cam.lateral(self.x, s_near)
        side_x = x0 if lateral > 0 else x1
        if abs(lateral) > self.width / 2:
            for ws in (s_near + 0.9 * wheel_r + 0.5, s_near + self.length - 0.9 * wheel_r - 0.5):
                canvas.fill(circle_in_x_plane(cam, side_x, ws, wheel_r, wheel_r), (22, 22, 24), label)
        canvas.fill(quad_s_plane(cam, s_near + 0.3, x0 + 0.05, x1 - 0.05, 0.0, 0.35), (25, 25, 27), label)

    def _lamps_and_plate(self, canvas: Canvas, cam: Camera, s_near: float) -> None:
        """Lamps and number plate on the near end (image only: they are part of the vehicle)."""
        x0, x1 = self.x0, self.x1
        ly = min(self.body_top, 1.2) - 0.25
        canvas.fill(quad_s_plane(cam, s_near, x0 + 0.08, x0 + 0.35, ly, ly + 0.15), self.lamp, None)
        canvas.fill(quad_s_plane(cam, s_near, x1 - 0.35, x1 - 0.08, ly, ly + 0.15), self.lamp, None)
        canvas.fill(quad_s_plane(cam, s_near, self.x - 0.26, self.x + 0.26, 0.4, 0.52), (225, 225, 220), None)


# ---- body styles ----------------------------------------------------------------------------


def _car_body(v: Vehicle, canvas: Canvas, cam: Camera, s_near: float) -> None:
    """Body box, a narrower cabin set towards the rear (front when facing us), end and side windows."""
    x0, x1, s1, label = v.x0, v.x1, s_near + v.length, v.spec.label
    box(canvas, cam, x0, x1, 0.28, v.body_top, s_near, s1, v.color, label)
    cab0 = s_near + (0.8 if not v.facing_us else 1.1) * v.length / 4.5
    cab1 = s1 - (1.1 if not v.facing_us else 0.8) * v.length / 4.5
    side = box(canvas, cam, x0 + 0.1, x1 - 0.1, v.body_top, v.roof, cab0, cab1, v.color, label)
    canvas.fill(quad_s_plane(cam, cab0, x0 + 0.2, x1 - 0.2, v.body_top + 0.05, v.roof - 0.07), v.glass, None)
    if side:
        sx = x0 + 0.1 if side < 0 else x1 - 0.1
        canvas.fill(quad_x_plane(cam, sx, cab0 + 0.15, cab1 - 0.15, v.body_top + 0.05, v.roof - 0.08),
                    shade(v.glass, 0.9), None)


def _truck_body(v: Vehicle, canvas: Canvas, cam: Camera, s_near: float) -> None:
    """A cab and a cargo box; the near end shows the windscreen (facing us) or the cargo doors."""
    x0, x1, s1, label = v.x0, v.x1, s_near + v.length, v.spec.label
    if v.facing_us:
        cab = (s_near, s_near + 2.2)
        cargo = (s_near + 2.4, s1)
    else:
        cargo = (s_near, s1 - 2.4)
        cab = (s1 - 2.2, s1)
    box(canvas, cam, x0 + 0.05, x1 - 0.05, 0.5, v.roof * 0.82, cab[0], cab[1], v.color, label)
    box(canvas, cam, x0, x1, 0.55, v.roof, cargo[0], cargo[1], v.cargo, label, side_shade=0.85)
    if v.facing_us:
        canvas.fill(quad_s_plane(cam, cab[0], x0 + 0.2, x1 - 0.2, v.roof * 0.5, v.roof * 0.76), v.glass, None)
    else:
        canvas.fill(quad_s_plane(cam, cargo[0], v.x - 0.02, v.x + 0.02, 0.6, v.roof - 0.1), shade(v.cargo, 0.6), None)


def _coach_body(v: Vehicle, canvas: Canvas, cam: Camera, s_near: float) -> None:
    """One long box with a window band and doors along the seen side (buses, trams)."""
    x0, x1, s1, spec = v.x0, v.x1, s_near + v.length, v.spec
    side = box(canvas, cam, x0, x1, 0.3, v.roof, s_near, s1, v.color, spec.label)
    if side:
        sx = x0 if side < 0 else x1
        canvas.fill(quad_x_plane(cam, sx, s_near + 0.4, s1 - 0.4, v.body_top, v.roof - 0.45), v.glass, None)
        for k in range(spec.doors):
            ds = s_near + (k + 0.5) * v.length / spec.doors
            canvas.fill(quad_x_plane(cam, sx, ds, ds + 1.1, 0.35, v.roof - 0.45), shade(v.glass, 1.2), None)
    lo = v.body_top if not v.facing_us else 0.9
    canvas.fill(quad_s_plane(cam, s_near, x0 + 0.15, x1 - 0.15, lo, v.roof - 0.3), v.glass, None)
    if spec.destination_sign:
        canvas.fill(quad_s_plane(cam, s_near, x0 + 0.4, x1 - 0.4, v.roof - 0.28, v.roof - 0.08), (20, 20, 20), None)


# ---- the table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class VehicleSpec:
    """Sizes (m; a range is drawn, a number is fixed), label and look of one vehicle kind."""

    label: int
    width: Span
    length: Span
    body_top: Span
    roof: Span
    body: Callable[[Vehicle, Canvas, Camera, float], None]
    wheel_radius: float
    paint: tuple[RGB, ...] | None = None  # own livery, drawn after (and instead of) a car colour
    paint_jitter: float = 0.0
    doors: int = 0  # coach bodies: doors along the side
    destination_sign: bool = False


VEHICLES: dict[str, VehicleSpec] = {
    "car": VehicleSpec(CAR, (1.65, 1.95), (3.8, 4.9), (0.85, 1.05), (1.35, 1.65), _car_body, 0.32),
    "van": VehicleSpec(CAR, (1.8, 2.05), (4.6, 5.6), (1.0, 1.2), (1.9, 2.4), _car_body, 0.32),
    "truck": VehicleSpec(TRUCK, (2.2, 2.5), (6.5, 10.0), (2.6, 3.2), (3.2, 3.9), _truck_body, 0.5),
    "bus": VehicleSpec(BUS, (2.4, 2.55), (10.0, 12.5), 1.2, (2.9, 3.3), _coach_body, 0.5,
                       paint=((230, 200, 40), (200, 30, 30), (240, 240, 235), (40, 90, 160), (60, 140, 70)),
                       paint_jitter=12, doors=3, destination_sign=True),
    "tram": VehicleSpec(TRAIN, 2.5, (20.0, 30.0), 1.1, (3.2, 3.5), _coach_body, 0.5,
                        paint=((240, 240, 230), (230, 200, 40), (200, 40, 40)), paint_jitter=10, doors=5),
}


def vehicle(rng: np.random.Generator, kind: str, x: float, s: float, speed: float, facing_us: bool) -> WorldObject:
    """A vehicle of ``kind`` (a key of :data:`VEHICLES`) with its near end at ``s``."""
    spec = VEHICLES[kind]
    width, length = draw_span(rng, spec.width), draw_span(rng, spec.length)
    body_top, roof = draw_span(rng, spec.body_top), draw_span(rng, spec.roof)
    color = pick(rng, CAR_COLORS, 12)  # drawn for every kind, so liveries do not shift the stream
    if spec.paint is not None:
        color = pick(rng, spec.paint, spec.paint_jitter)
    cargo = pick(rng, _CARGO_COLORS, 15)
    glass = jitter(rng, (45, 55, 65), 15)
    v = Vehicle(spec=spec, x=x, width=float(width), length=float(length), body_top=body_top, roof=roof, color=color,
                cargo=cargo, glass=glass, facing_us=facing_us)
    return WorldObject(layer=STREET_LAYER, x=float(x), s=float(s), speed=float(speed), draw=v.draw, length=v.length)
