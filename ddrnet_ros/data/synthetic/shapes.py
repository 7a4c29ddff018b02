"""World objects and the projected primitives they are drawn from.

Each object has a road-frame position (x, s at time 0), a speed along the road, a drawing layer
(0: frontage, 1: walls/fences, 2: roadside and road) and a draw function; the renderer culls
and orders objects by these alone, whatever they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .camera import NEAR_M, Camera
from .canvas import Canvas
from .palette import shade

FRONTAGE_LAYER, BARRIER_LAYER, STREET_LAYER = 0, 1, 2


@dataclass
class WorldObject:
    layer: int
    x: float
    s: float
    speed: float
    draw: Callable[[Canvas, Camera, float], None]  # (canvas, camera, s_now)
    length: float = 0.0  # extent along the road, for culling

    def s_at(self, t: float) -> float:
        return self.s + self.speed * t


Span = float | tuple[float, float]


def draw_span(rng: np.random.Generator, span: Span):
    """A size from a spec table: a (low, high) range is drawn uniformly, a number is used as is."""
    return rng.uniform(*span) if isinstance(span, tuple) else span


def quad_x_plane(cam: Camera, x: float, s0: float, s1: float, y0: float, y1: float) -> np.ndarray:
    """A rectangle in the vertical plane at lateral x (facades, side faces)."""
    return cam.project_few([x, x, x, x], [y0, y0, y1, y1], [s0, s1, s1, s0])


def quad_s_plane(cam: Camera, s: float, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    """A rectangle facing the camera at distance s (fronts, billboards)."""
    return cam.project_few([x0, x1, x1, x0], [y0, y0, y1, y1], [s, s, s, s])


def box(canvas: Canvas, cam: Camera, x0, x1, y0, y1, s0, s1, color, label, side_shade=0.75, top_shade=1.1) -> int:
    """Draw the camera-facing faces of an axis-aligned box; returns which side face was visible."""
    s0 = max(s0, cam.s + NEAR_M)
    if s1 <= s0:
        return 0
    side = 0
    if cam.lateral(x0, s0) > 0:
        canvas.fill(quad_x_plane(cam, x0, s0, s1, y0, y1), shade(color, side_shade), label)
        side = -1
    elif cam.lateral(x1, s0) < 0:
        canvas.fill(quad_x_plane(cam, x1, s0, s1, y0, y1), shade(color, side_shade), label)
        side = 1
    if y1 < cam.height:
        canvas.fill(cam.project([x0, x1, x1, x0], [y1] * 4, [s0, s0, s1, s1]), shade(color, top_shade), label)
    canvas.fill(quad_s_plane(cam, s0, x0, x1, y0, y1), color, label)
    return side


def circle_in_x_plane(cam: Camera, x: float, s: float, y: float, r: float, n: int = 14) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return cam.project(np.full(n, x), y + r * np.sin(a), s + r * np.cos(a))


def billboard_poly(cam: Camera, x: float, s: float, pts: np.ndarray) -> np.ndarray:
    """(N, 2) points (dx, y) in a plane facing the camera at (x, s)."""
    return cam.project(x + pts[:, 0], pts[:, 1], np.full(len(pts), s))


def regular(n: int, radius: float, phase: float = 0.0) -> np.ndarray:
    a = phase + np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([radius * np.cos(a), radius * np.sin(a)], -1)
