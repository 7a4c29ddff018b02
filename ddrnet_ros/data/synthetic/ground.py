"""The ground plane: far terrain, roadside strips and curbs, the road with its markings, shadows.

Everything here lies at height 0 (curb faces excepted) and is drawn before any object, so
objects simply cover it.
"""

from __future__ import annotations

import math

import numpy as np

from .camera import FAR_M, NEAR_M, Camera
from .canvas import Canvas
from .labels import ROAD, SIDEWALK, TERRAIN
from .layout import Layout, Side
from .palette import RGB, shade
from .shapes import WorldObject

_MARKING_W = 0.13  # lane and edge line width (m)


def ground_strip(canvas: Canvas, cam: Camera, x0: float, x1: float, color, label: int | None, zs: np.ndarray) -> None:
    """A band of road-frame x in [x0, x1] on the ground, sampled at depths ``zs`` ahead of the camera."""
    s = cam.s + zs
    left = cam.project(np.full(len(zs), x0), 0.0, s)
    right = cam.project(np.full(len(zs), x1), 0.0, s)
    canvas.fill(np.concatenate([left, right[::-1]]), color, label)


def ground(canvas: Canvas, layout: Layout, cam: Camera, vehicles: list[tuple[WorldObject, float]]) -> None:
    """Far terrain, both roadsides, the road surface and markings, and shadows under ``vehicles``."""
    h = canvas.height
    top = (cam.horizon + 0.008) * h
    right = canvas.width + 1.0
    canvas.fill(np.array([[-1.0, top], [right, top], [right, h + 1.0], [-1.0, h + 1.0]]), layout.far_ground, TERRAIN)
    zs = np.geomspace(NEAR_M * 0.7, FAR_M, 28)
    for side in (layout.left, layout.right):
        _roadside(canvas, layout, cam, side, zs)
    ground_strip(canvas, cam, 0.0, layout.road_width, layout.road_color, ROAD, zs)
    road_markings(canvas, layout, cam)
    for obj, s_now in vehicles:
        vehicle_shadow(canvas, cam, obj.x, s_now, obj.length)


def _side_strips(side: Side) -> list[tuple[float, float, RGB, int]]:
    """(inner d, outer d, colour, label) of one roadside's ground strips, outermost first."""
    paved = side.paved_frontage
    inner = side.curb + side.grass + side.sidewalk
    return [
        (side.frontage_offset, side.frontage_offset + 80.0, side.sidewalk_color if paved else side.front_color,
         SIDEWALK if paved and not side.front_is_grass else TERRAIN),
        (inner, side.frontage_offset, side.front_color, TERRAIN if side.front_is_grass else SIDEWALK),
        (side.curb + side.grass, inner, side.sidewalk_color, SIDEWALK),
        (side.curb, side.curb + side.grass, side.grass_color, TERRAIN),
        (0.0, side.curb, side.curb_color, SIDEWALK),
    ]


def _roadside(canvas: Canvas, layout: Layout, cam: Camera, side: Side, zs: np.ndarray) -> None:
    for d0, d1, color, label in _side_strips(side):
        if d1 - d0 > 1e-3:
            ground_strip(canvas, cam, layout.side_x(side, d0), layout.side_x(side, d1), color, label, zs)
    _curb_face(canvas, layout, cam, side, zs)
    if side.sidewalk > 0 and side.paving > 0:
        _paving_joints(canvas, layout, cam, side)


def _curb_face(canvas: Canvas, layout: Layout, cam: Camera, side: Side, zs: np.ndarray) -> None:
    """A low vertical strip at the road edge, labelled sidewalk like the curb's top."""
    edge = layout.side_x(side, 0.0)
    s = cam.s + zs
    top_line = cam.project(np.full(len(zs), edge), 0.13, s)
    bottom_line = cam.project(np.full(len(zs), edge), 0.0, s)
    canvas.fill(np.concatenate([top_line, bottom_line[::-1]]), shade(side.curb_color, 0.8), SIDEWALK)


def _paving_joints(canvas: Canvas, layout: Layout, cam: Camera, side: Side) -> None:
    """Joints across the sidewalk, image only, up to 40 m ahead."""
    d0, d1 = side.curb + side.grass, side.curb + side.grass + side.sidewalk
    js = np.arange(math.ceil((cam.s + 2.0) / side.paving) * side.paving, cam.s + 40.0, side.paving)
    if len(js):
        lines = cam.project(np.tile([layout.side_x(side, d0), layout.side_x(side, d1)], (len(js), 1)), 0.0,
                            np.stack([js, js], 1))
        canvas.lines(lines.reshape(-1, 2, 2), shade(side.sidewalk_color, 0.72))


def road_markings(canvas: Canvas, layout: Layout, cam: Camera) -> None:
    """Lane lines, edge lines and zebra crossings, and tyre tracks: image only, labelled road."""
    zs = np.geomspace(NEAR_M * 0.7, 150.0, 16)
    if layout.edge_lines:
        _edge_lines(canvas, layout, cam, zs)
    for k in range(1, layout.lanes):
        if k == layout.oncoming and layout.center_solid:
            _centre_line(canvas, layout, cam, k, zs)
        else:
            _lane_dashes(canvas, layout, cam, k)
    if layout.crossing_s > 0 and layout.crossing_s > cam.s + NEAR_M:
        _zebra_crossing(canvas, layout, cam)
    _tyre_tracks(canvas, layout, cam, zs)


def _edge_lines(canvas: Canvas, layout: Layout, cam: Camera, zs: np.ndarray) -> None:
    w, first_lane = _MARKING_W, layout.first_lane_x
    for ex in (first_lane + 0.25, first_lane + layout.lanes * layout.lane_width - 0.25):
        ground_strip(canvas, cam, ex - w / 2, ex + w / 2, layout.marking_color, None, zs)


def _centre_line(canvas: Canvas, layout: Layout, cam: Camera, k: int, zs: np.ndarray) -> None:
    """A solid double line between the directions, left of lane boundary ``k``."""
    w = _MARKING_W
    lx = layout.first_lane_x + k * layout.lane_width
    ground_strip(canvas, cam, lx - w, lx - w / 3, layout.marking_color, None, zs)
    ground_strip(canvas, cam, lx + w / 3, lx + w, layout.marking_color, None, zs)


def _lane_dashes(canvas: Canvas, layout: Layout, cam: Camera, k: int) -> None:
    """Dashes on lane boundary ``k``, a third of the period long, fixed to the road (they pass by)."""
    w, period = _MARKING_W, layout.dash_period
    lx = layout.first_lane_x + k * layout.lane_width
    start = math.floor((cam.s + NEAR_M - layout.dash_phase) / period) * period + layout.dash_phase
    dashes = np.arange(start, cam.s + 150.0, period)
    d0 = np.maximum(dashes, cam.s + NEAR_M * 0.7)
    d1 = dashes + period / 3
    keep = d1 > d0
    d0, d1 = d0[keep], d1[keep]
    if len(d0):
        pts = cam.project(np.tile([lx - w / 2, lx + w / 2, lx + w / 2, lx - w / 2], (len(d0), 1)), 0.0,
                          np.stack([d0, d0, d1, d1], 1)).reshape(-1, 4, 2)
        canvas.fill_many(pts, layout.marking_color, None)


def _zebra_crossing(canvas: Canvas, layout: Layout, cam: Camera) -> None:
    first_lane = layout.first_lane_x
    xs = np.arange(first_lane + 0.3, first_lane + layout.lanes * layout.lane_width - 0.5, 1.0)
    c0, c1 = layout.crossing_s, layout.crossing_s + 3.5
    pts = cam.project(np.stack([xs, xs + 0.5, xs + 0.5, xs], 1), 0.0,
                      np.tile([c0, c0, c1, c1], (len(xs), 1))).reshape(-1, 4, 2)
    canvas.fill_many(pts, layout.marking_color, None)


def _tyre_tracks(canvas: Canvas, layout: Layout, cam: Camera, zs: np.ndarray) -> None:
    """Darker bands where wheels run, which give the asphalt structure."""
    for k in range(layout.lanes):
        cx = layout.first_lane_x + (k + 0.5) * layout.lane_width
        for off in (-0.8, 0.8):
            ground_strip(canvas, cam, cx + off - 0.25, cx + off + 0.25, shade(layout.road_color, 0.9), None, zs)


def vehicle_shadow(canvas: Canvas, cam: Camera, x: float, s_near: float, length: float, width: float = 1.9) -> None:
    """A dark patch under a vehicle (image only: the road stays road)."""
    s0 = max(s_near - 0.3, cam.s + NEAR_M)
    x0, x1 = x - width / 2 - 0.1, x + width / 2 + 0.1
    pts = cam.project([x0, x1, x1, x0], [0.0] * 4, [s0, s0, s_near + length, s_near + length])
    canvas.fill(pts, (18, 18, 20), None)
