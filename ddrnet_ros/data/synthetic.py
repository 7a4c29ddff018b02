"""Procedural forward-camera road scenes with exact Cityscapes train-id labels.

No real driving data can be downloaded where this package is built, so the shipped checkpoint
learns from these scenes. A scene is a small 3-D world (a road with lanes, curbs, sidewalks,
grass, building facades, walls, fences, trees, poles with signs and traffic lights, parked and
moving vehicles, pedestrians and cyclists) seen by a pinhole camera; every shape is projected
once and filled into the image and the label map by the same ``cv2.fillPoly`` call, so labels
are exact. Texture, lighting, blur and noise are applied to the image only, afterwards.

Geometry is expressed in normalised image coordinates (the focal length is a fraction of the
width), so a seed gives the same scene at any resolution. Randomness comes only from
``np.random.default_rng`` streams keyed by the seed: the world is cut into 60 m chunks along
the road, each with its own stream, so a drive (:func:`generate_sequence`) can move through it
frame by frame. Seed ranges: training uses :data:`TRAIN_SEED_RANGE`, held-out evaluation uses
seeds from :data:`HELDOUT_SEED_START` on; sequences draw from a separate stream, so sequence
frames never repeat a training frame.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Callable, Iterator

import cv2
import numpy as np

from ddrnet_ros.classes import IGNORE_LABEL

__all__ = [
    "HELDOUT_SEED_START",
    "TRAIN_SEED_RANGE",
    "SyntheticFrame",
    "generate_scene",
    "generate_sequence",
]

TRAIN_SEED_RANGE = range(0, 1_000_000)
HELDOUT_SEED_START = 10_000_000

# Cityscapes train ids.
ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEGETATION, TERRAIN, SKY = range(11)
PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE = range(11, 19)

_SCENE_STREAM = 0x5CE
_SEQUENCE_STREAM = 0x5E0
_NOMINAL_ASPECT = 2.0  # width / height the vertical focal length is defined for
_CHUNK_M = 60.0  # world is generated in chunks of this length along the road
_FRAME_DT = 0.1  # seconds between sequence frames (10 Hz camera)
_NEAR_M = 1.5  # nothing closer than this to the camera plane is drawn
_FAR_M = 320.0
_SHIFT = 4  # fixed-point bits for cv2 polygon vertices (sub-pixel geometry)
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class SyntheticFrame:
    """One RGB image (HxWx3 uint8) and its train-id labels (HxW uint8, 255 = ignored)."""

    image: np.ndarray
    labels: np.ndarray


# --------------------------------------------------------------------------------------------
# Colours


def _rgb(values) -> tuple[int, int, int]:
    r, g, b = (min(255, max(0, int(float(v) + 0.5))) for v in values)
    return r, g, b


def _jitter(rng: np.random.Generator, base, amount: float) -> tuple[int, int, int]:
    """A colour near ``base``: a shared brightness shift plus a smaller per-channel one."""
    shift = rng.uniform(-amount / 3, amount / 3, 4)
    tone = (shift[3] * 3.0)
    return _rgb((float(c) + tone + d) for c, d in zip(base, shift[:3]))


def _shade(color, factor: float) -> tuple[int, int, int]:
    return _rgb(float(c) * factor for c in color)


_CAR_COLORS = [
    (235, 235, 235), (20, 20, 24), (150, 152, 158), (90, 92, 98), (30, 50, 110), (140, 20, 25),
    (200, 200, 205), (60, 70, 60), (170, 150, 120), (40, 80, 150), (110, 20, 40), (230, 220, 200),
]
_FACADE_COLORS = [
    (200, 190, 170), (225, 220, 205), (170, 165, 160), (150, 90, 70), (120, 115, 110),
    (210, 180, 140), (185, 200, 205), (160, 130, 110), (95, 95, 100), (230, 210, 180),
    (175, 110, 85), (205, 205, 200),
]
_CLOTH_COLORS = [
    (30, 30, 35), (60, 60, 70), (30, 40, 90), (120, 30, 30), (200, 200, 200), (90, 70, 50),
    (50, 90, 60), (150, 140, 120), (180, 60, 40), (70, 100, 160), (220, 180, 60), (20, 20, 20),
]
_SKIN_COLORS = [(235, 200, 170), (200, 150, 115), (150, 100, 70), (95, 65, 45), (225, 185, 150)]


# --------------------------------------------------------------------------------------------
# World description


@dataclass
class _Side:
    """One roadside, described outward from the road edge (distances in metres)."""

    sign: int  # -1 left of the road, +1 right
    curb: float
    grass: float  # grass strip between curb and sidewalk (0 = none)
    sidewalk: float  # 0 = no sidewalk
    front: float  # strip between sidewalk and frontage
    front_is_grass: bool
    frontage: str  # "buildings" | "vegetation" | "open"
    parking: bool
    trees: bool
    curb_color: tuple
    sidewalk_color: tuple
    grass_color: tuple
    front_color: tuple
    paving: float  # paving joint spacing (m), 0 = plain

    @property
    def frontage_offset(self) -> float:
        return self.curb + self.grass + self.sidewalk + self.front


@dataclass
class _Layout:
    """Scene-wide parameters: road cross-section, camera, palette, lighting."""

    lanes: int
    lane_width: float
    oncoming: int  # number of lanes (from the left) with oncoming traffic
    road_width: float
    left: _Side
    right: _Side
    ego_x: float
    ego_speed: float
    cam_height: float
    horizon: float
    focal: float
    curvature: float
    road_color: tuple
    marking_color: tuple
    dash_period: float
    dash_phase: float
    center_solid: bool
    edge_lines: bool
    crossing_s: float  # s of a zebra crossing, or -1
    traffic_density: float
    person_density: float
    vegetation_color: tuple
    sky_top: tuple
    sky_horizon: tuple
    cloudiness: float
    far_ground: tuple
    lighting: dict
    hood: float  # ego-hood height as a fraction of the image height, 0 = none
    hood_color: tuple
    lane_speed: list = field(default_factory=list)

    def side_x(self, side: _Side, d: float) -> float:
        """Road-frame lateral coordinate at distance ``d`` outward from the side's road edge."""
        return -d if side.sign < 0 else self.road_width + d


def _make_side(rng: np.random.Generator, sign: int) -> _Side:
    frontage = str(rng.choice(["buildings", "vegetation", "open"], p=[0.62, 0.26, 0.12]))
    sidewalk = 0.0 if rng.random() < 0.1 else float(rng.uniform(1.5, 5.0))
    grass = float(rng.uniform(0.6, 3.0)) if rng.random() < 0.4 else 0.0
    if sidewalk == 0.0 and grass == 0.0:
        grass = float(rng.uniform(1.0, 4.0))
    paving_base = [(150, 150, 148), (175, 170, 160), (140, 120, 115), (120, 120, 125), (190, 185, 175)]
    sidewalk_color = _jitter(rng, paving_base[rng.integers(len(paving_base))], 18)
    grass_color = _jitter(rng, [(85, 115, 55), (110, 125, 65), (140, 135, 90), (70, 100, 50)][rng.integers(4)], 15)
    front_is_grass = bool(rng.random() < 0.4)
    return _Side(
        sign=sign,
        curb=float(rng.uniform(0.18, 0.35)),
        grass=grass,
        sidewalk=sidewalk,
        front=float(rng.uniform(0.0, 2.5)) if frontage != "buildings" or rng.random() < 0.4 else 0.0,
        front_is_grass=front_is_grass,
        frontage=frontage,
        parking=bool(rng.random() < 0.45),
        trees=bool(rng.random() < 0.6),
        curb_color=_jitter(rng, (165, 165, 160), 20),
        sidewalk_color=sidewalk_color,
        grass_color=grass_color,
        front_color=grass_color if front_is_grass else _shade(sidewalk_color, rng.uniform(0.85, 1.1)),
        paving=float(rng.choice([0.0, 0.5, 1.0, 1.5])),
    )


def _make_layout(rng: np.random.Generator) -> _Layout:
    lanes = int(rng.choice([1, 2, 2, 3, 4, 4]))
    lane_width = float(rng.uniform(2.9, 3.7))
    oncoming = 0 if lanes == 1 or rng.random() < 0.3 else lanes // 2
    left, right = _make_side(rng, -1), _make_side(rng, +1)
    road_width = lanes * lane_width + (2.2 if left.parking else 0.0) + (2.2 if right.parking else 0.0)
    first_lane = 2.2 if left.parking else 0.0
    own_lanes = list(range(oncoming, lanes))
    ego_lane = int(rng.choice(own_lanes))
    ego_x = first_lane + (ego_lane + 0.5) * lane_width + float(rng.uniform(-0.4, 0.4))
    ego_speed = float(rng.uniform(5.0, 14.0))
    lane_speed = []
    for lane in range(lanes):
        if lane < oncoming:
            lane_speed.append(-float(rng.uniform(6.0, 14.0)))
        elif lane == ego_lane:
            lane_speed.append(ego_speed)
        else:
            lane_speed.append(ego_speed + float(rng.uniform(-2.5, 2.5)))
    weather = rng.random()
    if weather < 0.55:  # clear
        sky_top = _jitter(rng, (70, 120, 195), 25)
        sky_horizon = _jitter(rng, (185, 210, 235), 15)
        cloudiness = float(rng.uniform(0.0, 0.6))
    elif weather < 0.85:  # overcast
        grey = rng.uniform(160, 225)
        sky_top = _rgb((grey - 20, grey - 15, grey - 5))
        sky_horizon = _rgb((grey + 10, grey + 12, grey + 15))
        cloudiness = float(rng.uniform(0.3, 1.0))
    else:  # low sun
        sky_top = _jitter(rng, (90, 120, 175), 20)
        sky_horizon = _jitter(rng, (235, 190, 150), 20)
        cloudiness = float(rng.uniform(0.0, 0.5))
    lighting = {
        "gain": float(rng.uniform(0.7, 1.25)),
        "contrast": float(rng.uniform(0.75, 1.2)),
        "cast": rng.uniform(0.92, 1.08, 3),
        "gamma": float(rng.uniform(0.8, 1.25)),
        "blur": float(rng.uniform(0.0, 1.1)),
        "noise": float(rng.uniform(1.0, 7.0)),
        "vignette": float(rng.uniform(0.0, 0.35)),
        "texture": float(rng.uniform(0.6, 1.4)),
    }
    hood = float(rng.uniform(0.06, 0.14)) if rng.random() < 0.3 else 0.0
    road_base = rng.uniform(65, 125)
    return _Layout(
        lanes=lanes,
        lane_width=lane_width,
        oncoming=oncoming,
        road_width=road_width,
        left=left,
        right=right,
        ego_x=ego_x,
        ego_speed=ego_speed,
        cam_height=float(rng.uniform(1.2, 1.6)),
        horizon=float(rng.uniform(0.36, 0.5)),
        focal=float(rng.uniform(0.95, 1.2)),
        curvature=float(np.clip(rng.normal(0.0, 0.0006), -0.0015, 0.0015)),
        road_color=_rgb(np.array([road_base, road_base, road_base + rng.uniform(-4, 8)]) + rng.uniform(-5, 5)),
        marking_color=_rgb((235, 235, 230)) if rng.random() < 0.85 else _rgb((230, 200, 80)),
        dash_period=float(rng.uniform(8.0, 13.0)),
        dash_phase=float(rng.uniform(0, 13.0)),
        center_solid=bool(rng.random() < 0.4),
        edge_lines=bool(rng.random() < 0.6),
        crossing_s=float(rng.uniform(12, 60)) if rng.random() < 0.2 else -1.0,
        traffic_density=float(rng.uniform(0.6, 1.6)),
        person_density=float(rng.uniform(0.5, 2.0)),
        vegetation_color=_jitter(rng, [(60, 95, 45), (75, 105, 50), (50, 80, 40), (90, 110, 55)][rng.integers(4)], 12),
        sky_top=sky_top,
        sky_horizon=sky_horizon,
        cloudiness=cloudiness,
        far_ground=_jitter(rng, (110, 115, 100), 15),
        lighting=lighting,
        hood=hood,
        hood_color=_jitter(rng, _CAR_COLORS[rng.integers(len(_CAR_COLORS))], 10),
        lane_speed=lane_speed,
    )


# --------------------------------------------------------------------------------------------
# Camera and canvas


@dataclass
class _Camera:
    s: float  # position along the road (m)
    x: float  # lateral position in the road frame (m)
    height: float
    horizon: float  # row of the horizon, fraction of the image height
    focal: float  # focal length, fraction of the image width
    curvature: float
    width: int
    height_px: int

    def depth(self, s):
        return np.asarray(s, np.float64) - self.s

    def project(self, x, y, s) -> np.ndarray:
        """Road-frame points (lateral x, height y, distance s) -> (N, 2) float pixel coordinates."""
        z = np.asarray(s, np.float64) - self.s
        np.maximum(z, 0.05, out=z)
        u = (np.asarray(x, np.float64) - self.x + self.curvature * z * z) / z
        u *= self.focal * self.width
        u += 0.5 * self.width
        v = (self.height - np.asarray(y, np.float64)) / z
        v *= self.focal * _NOMINAL_ASPECT * self.height_px
        v += self.horizon * self.height_px
        out = np.empty(np.broadcast_shapes(u.shape, v.shape) + (2,))
        out[..., 0] = u
        out[..., 1] = v
        return out.reshape(-1, 2)

    def project_few(self, xs, ys, ss) -> np.ndarray:
        """:meth:`project` for a handful of points, in plain floats (same arithmetic, less overhead)."""
        sx, sc, sh = self.x, self.curvature, self.height
        ku, ou = self.focal * self.width, 0.5 * self.width
        kv, ov = self.focal * _NOMINAL_ASPECT * self.height_px, self.horizon * self.height_px
        out = []
        for x, y, s in zip(xs, ys, ss):
            z = max(float(s) - self.s, 0.05)
            out.append((((x - sx + sc * z * z) / z) * ku + ou, ((sh - y) / z) * kv + ov))
        return np.array(out, np.float64)

    def pixels_per_metre(self, s: float) -> float:
        return self.focal * self.width / max(s - self.s, 0.05)

    def lateral(self, x: float, s: float) -> float:
        """Camera-frame lateral offset of a road-frame point (sign tells the visible side)."""
        z = max(s - self.s, 0.05)
        return x - self.x + self.curvature * z * z


class _Canvas:
    """An RGB image and its label map, always painted by the same geometry."""

    def __init__(self, height: int, width: int) -> None:
        self.image = np.zeros((height, width, 3), np.uint8)
        self.labels = np.full((height, width), SKY, np.uint8)
        self.height, self.width = height, width

    @staticmethod
    def _fixed(points: np.ndarray) -> np.ndarray:
        # depths are clamped to >= 5 cm in project(), which keeps coordinates far inside int32
        return np.rint(points * _ONE).astype(np.int32)

    def fill(self, points: np.ndarray, color, label: int | None) -> None:
        """Fill one polygon in the image and, unless ``label`` is None, the same one in the labels."""
        pts = [self._fixed(points)]
        cv2.fillPoly(self.image, pts, color, cv2.LINE_8, _SHIFT)
        if label is not None:
            cv2.fillPoly(self.labels, pts, int(label), cv2.LINE_8, _SHIFT)

    def fill_many(self, polygons: np.ndarray, color, label: int | None) -> None:
        """Fill (K, N, 2) polygons of one colour with one call."""
        if len(polygons) == 0:
            return
        pts = list(self._fixed(polygons))
        cv2.fillPoly(self.image, pts, color, cv2.LINE_8, _SHIFT)
        if label is not None:
            cv2.fillPoly(self.labels, pts, int(label), cv2.LINE_8, _SHIFT)

    def ellipse(self, center, axes, color, label: int | None) -> None:
        c = tuple(int(v) for v in self._fixed(np.asarray(center, np.float64)))
        a = tuple(int(max(v, 1)) for v in self._fixed(np.asarray(axes, np.float64)))
        cv2.ellipse(self.image, c, a, 0, 0, 360, color, -1, cv2.LINE_8, _SHIFT)
        if label is not None:
            cv2.ellipse(self.labels, c, a, 0, 0, 360, int(label), -1, cv2.LINE_8, _SHIFT)

    def blend(self, points: np.ndarray, color, alpha: float, label: int) -> None:
        """Semi-transparent polygon (mesh fences): the label takes it, the image shows through."""
        fixed = self._fixed(points)
        x0 = max(int(fixed[:, 0].min()) >> _SHIFT, 0)
        y0 = max(int(fixed[:, 1].min()) >> _SHIFT, 0)
        x1 = min((int(fixed[:, 0].max()) >> _SHIFT) + 2, self.width)
        y1 = min((int(fixed[:, 1].max()) >> _SHIFT) + 2, self.height)
        if x1 <= x0 or y1 <= y0:
            return
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        local = fixed - np.array([x0 << _SHIFT, y0 << _SHIFT], np.int32)
        cv2.fillPoly(mask, [local], 1, cv2.LINE_8, _SHIFT)
        region = self.image[y0:y1, x0:x1]
        sel = mask.astype(bool)
        region[sel] = (region[sel] * (1 - alpha) + np.asarray(color, np.float64) * alpha).astype(np.uint8)
        self.labels[y0:y1, x0:x1][sel] = label


# --------------------------------------------------------------------------------------------
# World objects. Each has a road-frame position (x, s at time 0), a speed along the road, a
# drawing layer (0: frontage, 1: walls/fences, 2: roadside and road) and a draw function.


@dataclass
class _Object:
    layer: int
    x: float
    s: float
    speed: float
    draw: Callable[["_Canvas", "_Camera", float], None]  # (canvas, camera, s_now)
    length: float = 0.0  # extent along the road, for culling

    def s_at(self, t: float) -> float:
        return self.s + self.speed * t


def _quad_x_plane(cam: _Camera, x: float, s0: float, s1: float, y0: float, y1: float) -> np.ndarray:
    """A rectangle in the vertical plane at lateral x (facades, side faces)."""
    return cam.project_few([x, x, x, x], [y0, y0, y1, y1], [s0, s1, s1, s0])


def _quad_s_plane(cam: _Camera, s: float, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    """A rectangle facing the camera at distance s (fronts, billboards)."""
    return cam.project_few([x0, x1, x1, x0], [y0, y0, y1, y1], [s, s, s, s])


def _box(canvas: _Canvas, cam: _Camera, x0, x1, y0, y1, s0, s1, color, label, side_shade=0.75, top_shade=1.1):
    """Draw the camera-facing faces of an axis-aligned box; returns which side face was visible."""
    s0 = max(s0, cam.s + _NEAR_M)
    if s1 <= s0:
        return 0
    side = 0
    if cam.lateral(x0, s0) > 0:
        canvas.fill(_quad_x_plane(cam, x0, s0, s1, y0, y1), _shade(color, side_shade), label)
        side = -1
    elif cam.lateral(x1, s0) < 0:
        canvas.fill(_quad_x_plane(cam, x1, s0, s1, y0, y1), _shade(color, side_shade), label)
        side = 1
    if y1 < cam.height:
        canvas.fill(cam.project([x0, x1, x1, x0], [y1] * 4, [s0, s0, s1, s1]), _shade(color, top_shade), label)
    canvas.fill(_quad_s_plane(cam, s0, x0, x1, y0, y1), color, label)
    return side


def _circle_in_x_plane(cam: _Camera, x: float, s: float, y: float, r: float, n: int = 14) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return cam.project(np.full(n, x), y + r * np.sin(a), s + r * np.cos(a))


def _billboard_poly(cam: _Camera, x: float, s: float, pts: np.ndarray) -> np.ndarray:
    """(N, 2) points (dx, y) in a plane facing the camera at (x, s)."""
    return cam.project(x + pts[:, 0], pts[:, 1], np.full(len(pts), s))


def _regular(n: int, radius: float, phase: float = 0.0) -> np.ndarray:
    a = phase + np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([radius * np.cos(a), radius * np.sin(a)], -1)


# ---- vehicles -------------------------------------------------------------------------------


def _vehicle(rng: np.random.Generator, kind: str, x: float, s: float, speed: float, facing_us: bool) -> _Object:
    """Cars, trucks, buses and trams as boxes with windows, lights and wheels."""
    if kind == "car":
        width, length = rng.uniform(1.65, 1.95), rng.uniform(3.8, 4.9)
        body_top, roof = rng.uniform(0.85, 1.05), rng.uniform(1.35, 1.65)
        label = CAR
    elif kind == "van":
        width, length = rng.uniform(1.8, 2.05), rng.uniform(4.6, 5.6)
        body_top, roof = rng.uniform(1.0, 1.2), rng.uniform(1.9, 2.4)
        label = CAR
    elif kind == "truck":
        width, length = rng.uniform(2.2, 2.5), rng.uniform(6.5, 10.0)
        body_top, roof = rng.uniform(2.6, 3.2), rng.uniform(3.2, 3.9)
        label = TRUCK
    elif kind == "bus":
        width, length = rng.uniform(2.4, 2.55), rng.uniform(10.0, 12.5)
        body_top, roof = 1.2, rng.uniform(2.9, 3.3)
        label = BUS
    else:  # tram
        width, length = 2.5, rng.uniform(20.0, 30.0)
        body_top, roof = 1.1, rng.uniform(3.2, 3.5)
        label = TRAIN
    color = _jitter(rng, _CAR_COLORS[rng.integers(len(_CAR_COLORS))], 12)
    if kind == "bus":
        color = _jitter(rng, [(230, 200, 40), (200, 30, 30), (240, 240, 235), (40, 90, 160), (60, 140, 70)][rng.integers(5)], 12)
    if kind == "tram":
        color = _jitter(rng, [(240, 240, 230), (230, 200, 40), (200, 40, 40)][rng.integers(3)], 10)
    cargo = _jitter(rng, [(235, 235, 235), (200, 60, 40), (60, 90, 150), (180, 180, 185)][rng.integers(4)], 15)
    glass = _jitter(rng, (45, 55, 65), 15)
    wheel_r = 0.32 if label == CAR else 0.5
    width, length = float(width), float(length)

    def draw(canvas: _Canvas, cam: _Camera, s_near: float) -> None:
        x0, x1 = x - width / 2, x + width / 2
        s1 = s_near + length
        if s_near < cam.s + _NEAR_M:
            return
        lateral = cam.lateral(x, s_near)
        side_x = x0 if lateral > 0 else x1
        if cam.pixels_per_metre(s_near) * width < 10.0:  # far away: silhouette only
            _box(canvas, cam, x0, x1, 0.0, body_top, s_near, s1, color, label)
            _box(canvas, cam, x0 + 0.1, x1 - 0.1, body_top, roof, s_near + length * 0.2, s1 - length * 0.2, color, label)
            return
        # wheels on the visible side (drawn first: the body hides their upper part)
        if abs(lateral) > width / 2:
            for ws in (s_near + 0.9 * wheel_r + 0.5, s1 - 0.9 * wheel_r - 0.5):
                canvas.fill(_circle_in_x_plane(cam, side_x, ws, wheel_r, wheel_r), (22, 22, 24), label)
        # underbody and rear/front wheels seen from the end
        canvas.fill(_quad_s_plane(cam, s_near + 0.3, x0 + 0.05, x1 - 0.05, 0.0, 0.35), (25, 25, 27), label)
        if label == CAR:
            _box(canvas, cam, x0, x1, 0.28, body_top, s_near, s1, color, label)
            cab0 = s_near + (0.8 if not facing_us else 1.1) * length / 4.5
            cab1 = s1 - (1.1 if not facing_us else 0.8) * length / 4.5
            side = _box(canvas, cam, x0 + 0.1, x1 - 0.1, body_top, roof, cab0, cab1, color, label)
            # windows: end window and side windows (image only: they are part of the car)
            canvas.fill(_quad_s_plane(cam, cab0, x0 + 0.2, x1 - 0.2, body_top + 0.05, roof - 0.07), glass, None)
            if side:
                sx = x0 + 0.1 if side < 0 else x1 - 0.1
                canvas.fill(_quad_x_plane(cam, sx, cab0 + 0.15, cab1 - 0.15, body_top + 0.05, roof - 0.08), _shade(glass, 0.9), None)
            lamp = (200, 25, 20) if not facing_us else (235, 235, 215)
        elif label == TRUCK:
            if facing_us:
                cab = (s_near, s_near + 2.2)
                box = (s_near + 2.4, s1)
            else:
                box = (s_near, s1 - 2.4)
                cab = (s1 - 2.2, s1)
            _box(canvas, cam, x0 + 0.05, x1 - 0.05, 0.5, roof * 0.82, cab[0], cab[1], color, label)
            _box(canvas, cam, x0, x1, 0.55, roof, box[0], box[1], cargo, label, side_shade=0.85)
            if facing_us:
                canvas.fill(_quad_s_plane(cam, cab[0], x0 + 0.2, x1 - 0.2, roof * 0.5, roof * 0.76), glass, None)
            else:
                canvas.fill(_quad_s_plane(cam, box[0], x - 0.02, x + 0.02, 0.6, roof - 0.1), _shade(cargo, 0.6), None)
            lamp = (200, 25, 20) if not facing_us else (235, 235, 215)
        else:  # bus, tram
            side = _box(canvas, cam, x0, x1, 0.3, roof, s_near, s1, color, label)
            if side:
                sx = x0 if side < 0 else x1
                canvas.fill(_quad_x_plane(cam, sx, s_near + 0.4, s1 - 0.4, body_top, roof - 0.45), glass, None)
                n_doors = 3 if label == BUS else 5
                for k in range(n_doors):
                    ds = s_near + (k + 0.5) * length / n_doors
                    canvas.fill(_quad_x_plane(cam, sx, ds, ds + 1.1, 0.35, roof - 0.45), _shade(glass, 1.2), None)
            lo = body_top if not facing_us else 0.9
            canvas.fill(_quad_s_plane(cam, s_near, x0 + 0.15, x1 - 0.15, lo, roof - 0.3), glass, None)
            if label == BUS:
                canvas.fill(_quad_s_plane(cam, s_near, x0 + 0.4, x1 - 0.4, roof - 0.28, roof - 0.08), (20, 20, 20), None)
            lamp = (200, 25, 20) if not facing_us else (235, 235, 215)
        # lamps and plate on the near end
        ly = min(body_top, 1.2) - 0.25
        canvas.fill(_quad_s_plane(cam, s_near, x0 + 0.08, x0 + 0.35, ly, ly + 0.15), lamp, None)
        canvas.fill(_quad_s_plane(cam, s_near, x1 - 0.35, x1 - 0.08, ly, ly + 0.15), lamp, None)
        canvas.fill(_quad_s_plane(cam, s_near, x - 0.26, x + 0.26, 0.4, 0.52), (225, 225, 220), None)

    return _Object(layer=2, x=float(x), s=float(s), speed=float(speed), draw=draw, length=length)


def _vehicle_shadow(canvas: _Canvas, cam: _Camera, x: float, s_near: float, length: float, width: float = 1.9) -> None:
    s0 = max(s_near - 0.3, cam.s + _NEAR_M)
    pts = cam.project([x - width / 2 - 0.1, x + width / 2 + 0.1, x + width / 2 + 0.1, x - width / 2 - 0.1], [0.0] * 4, [s0, s0, s_near + length, s_near + length])
    canvas.fill(pts, (18, 18, 20), None)


# ---- people ---------------------------------------------------------------------------------


def _person_parts(rng: np.random.Generator, height: float, seated: bool):
    """Body-part polygons (dx, y) for a standing or riding person, in metres."""
    h = height
    stride = rng.uniform(-0.06, 0.06) * h
    shoulder = rng.uniform(0.22, 0.27) * h / 2
    hip = shoulder * 0.8
    base = 0.0
    if seated:
        legs = [np.array([[-hip, 0.45 * h], [-hip + 0.05, 0.45 * h], [-hip + 0.03, 0.0], [-hip - 0.05, 0.0]]),
                np.array([[hip - 0.05, 0.45 * h], [hip, 0.45 * h], [hip + 0.05, 0.02 * h], [hip - 0.03, 0.02 * h]])]
        torso_lo, torso_hi = 0.42 * h, 0.78 * h
    else:
        legs = [np.array([[-hip, 0.5 * h], [-0.01, 0.5 * h], [-0.02 + stride, base], [-hip + stride, base]]),
                np.array([[0.01, 0.5 * h], [hip, 0.5 * h], [hip - stride, base], [0.02 - stride, base]])]
        torso_lo, torso_hi = 0.48 * h, 0.82 * h
    torso = np.array([[-hip, torso_lo], [hip, torso_lo], [shoulder, torso_hi], [-shoulder, torso_hi]])
    swing = rng.uniform(-0.04, 0.04) * h
    arms = [np.array([[-shoulder, torso_hi], [-shoulder + 0.08, torso_hi], [-shoulder - swing + 0.05, 0.46 * h], [-shoulder - swing - 0.03, 0.46 * h]]),
            np.array([[shoulder - 0.08, torso_hi], [shoulder, torso_hi], [shoulder + swing + 0.03, 0.46 * h], [shoulder + swing - 0.05, 0.46 * h]])]
    neck = np.array([[-0.03 * h, torso_hi - 0.01], [0.03 * h, torso_hi - 0.01], [0.03 * h, 0.88 * h], [-0.03 * h, 0.88 * h]])
    return {"legs": legs, "torso": torso, "arms": arms, "neck": neck}


def _person(rng: np.random.Generator, x: float, s: float, speed: float, label: int = PERSON, lift: float = 0.0, seated: bool = False) -> _Object:
    height = float(rng.uniform(1.55, 1.92)) * (0.85 if seated else 1.0)
    parts = _person_parts(rng, height, seated)
    top = _jitter(rng, _CLOTH_COLORS[rng.integers(len(_CLOTH_COLORS))], 15)
    pants = _jitter(rng, _CLOTH_COLORS[rng.integers(len(_CLOTH_COLORS))], 10)
    skin = _jitter(rng, _SKIN_COLORS[rng.integers(len(_SKIN_COLORS))], 8)
    hair = _jitter(rng, [(30, 25, 20), (80, 55, 35), (150, 120, 80), (90, 90, 90)][rng.integers(4)], 8)
    bag = rng.random() < 0.3
    head_r = 0.062 * height

    def draw(canvas: _Canvas, cam: _Camera, s_now: float) -> None:
        if s_now < cam.s + _NEAR_M:
            return

        if cam.pixels_per_metre(s_now) * height < 10.0:  # far away: a two-tone silhouette
            canvas.fill(_billboard_poly(cam, x, s_now, np.array([[-0.2, 0.0], [0.2, 0.0], [0.2, 0.5], [-0.2, 0.5]]) * [1, height] + [0, lift]), pants, label)
            canvas.fill(_billboard_poly(cam, x, s_now, np.array([[-0.25, 0.5], [0.25, 0.5], [0.12, 1.0], [-0.12, 1.0]]) * [1, height] + [0, lift]), top, label)
            return

        def poly(p, color):
            q = p.copy()
            q[:, 1] += lift
            canvas.fill(_billboard_poly(cam, x, s_now, q), color, label)

        for leg in parts["legs"]:
            poly(leg, pants)
        poly(parts["torso"], top)
        for arm in parts["arms"]:
            poly(arm, _shade(top, 0.85))
        poly(parts["neck"], skin)
        if bag:
            poly(np.array([[0.1, 0.5 * height], [0.3, 0.5 * height], [0.3, 0.62 * height], [0.1, 0.62 * height]]) , _shade(pants, 0.6))
        center = cam.project([x], [lift + 0.93 * height], [s_now])[0]
        ppm = cam.pixels_per_metre(s_now)
        ax = (head_r * ppm, head_r * 1.15 * ppm * cam.height_px * _NOMINAL_ASPECT / cam.width)
        canvas.ellipse(center, ax, skin, label)
        canvas.ellipse(center - np.array([0, 0.35 * ax[1]]), (ax[0] * 1.02, ax[1] * 0.7), hair, label)

    return _Object(layer=2, x=float(x), s=float(s), speed=float(speed), draw=draw, length=0.5)


def _two_wheeler(rng: np.random.Generator, x: float, s: float, speed: float, motor: bool, ridden: bool) -> _Object:
    """A bicycle or motorcycle in the vertical plane along the road, optionally with a rider."""
    label = MOTORCYCLE if motor else BICYCLE
    wheel_r = 0.3 if motor else 0.34
    base = 1.45 if motor else 1.1
    frame = _jitter(rng, _CAR_COLORS[rng.integers(len(_CAR_COLORS))], 15)
    rider = _person(rng, x, s, speed, RIDER, lift=0.45 if motor else 0.55, seated=True) if ridden else None

    def draw(canvas: _Canvas, cam: _Camera, s_now: float) -> None:
        if s_now < cam.s + _NEAR_M:
            return
        ppm = cam.pixels_per_metre(s_now)
        thick = max(2, int(round((0.09 if motor else 0.08) * ppm)))  # bold enough to be learnable at 512x1024
        for ws in (s_now, s_now + base):
            ring = _Canvas._fixed(_circle_in_x_plane(cam, x, ws + wheel_r, wheel_r, wheel_r, 18))
            if motor:
                cv2.fillPoly(canvas.image, [ring], (25, 25, 25), cv2.LINE_8, _SHIFT)
                cv2.fillPoly(canvas.labels, [ring], label, cv2.LINE_8, _SHIFT)
            else:
                cv2.polylines(canvas.image, [ring], True, (30, 30, 30), thick, cv2.LINE_8, _SHIFT)
                cv2.polylines(canvas.labels, [ring], True, label, thick, cv2.LINE_8, _SHIFT)
        a, b = s_now + wheel_r, s_now + base + wheel_r
        if motor:
            body = cam.project([x] * 5, [0.35, 0.45, 0.95, 1.0, 0.7], [a + 0.2, b - 0.2, b - 0.1, a + 0.5, a + 0.1])
            canvas.fill(body, frame, label)
            canvas.fill(_quad_s_plane(cam, s_now, x - 0.2, x + 0.2, 0.3, 0.9), _shade(frame, 0.7), label)
        else:
            w = 0.055
            for (y0, s0_, y1, s1_) in ((wheel_r, a, 0.75, a + 0.45), (0.75, a + 0.45, 0.78, b - 0.1), (wheel_r, a + 0.5, 0.78, b - 0.1), (wheel_r, b, 0.8, b - 0.1), (wheel_r, a, wheel_r, a + 0.5)):
                seg = cam.project([x] * 4, [y0 - w, y0 + w, y1 + w, y1 - w], [s0_, s0_, s1_, s1_])
                canvas.fill(seg, frame, label)
            canvas.fill(_quad_s_plane(cam, s_now, x - 0.03, x + 0.03, 0.0, 0.7), (30, 30, 30), label)
        if rider is not None:
            rider.draw(canvas, cam, s_now + base * 0.5)

    return _Object(layer=2, x=float(x), s=float(s), speed=float(speed), draw=draw, length=base + 2 * wheel_r)


# ---- street furniture -----------------------------------------------------------------------


def _pole(rng: np.random.Generator, x: float, s: float, toward_road: int) -> _Object:
    """A pole with traffic signs, a traffic light, or a street lamp."""
    kind = str(rng.choice(["sign", "sign", "light", "lamp", "overhead"], p=[0.3, 0.15, 0.25, 0.2, 0.1]))
    width = float(rng.uniform(0.12, 0.22))
    pole_color = _jitter(rng, [(120, 122, 125), (70, 75, 70), (40, 42, 45), (150, 150, 150)][rng.integers(4)], 10)
    height = {"sign": rng.uniform(2.6, 3.6), "light": rng.uniform(3.2, 4.2), "lamp": rng.uniform(7.0, 10.0), "overhead": rng.uniform(5.5, 6.5)}[kind]
    signs = []
    n_signs = 1 + int(rng.random() < 0.3) if kind == "sign" else int(rng.random() < 0.25)
    top = height
    for k in range(n_signs):
        shape = str(rng.choice(["circle", "triangle", "rect", "diamond", "octagon", "inv_triangle"]))
        size = float(rng.uniform(0.6, 0.9))
        face, border = {
            "circle": [((240, 240, 240), (200, 20, 25)), ((30, 80, 170), (240, 240, 240))][rng.integers(2)],
            "triangle": ((240, 240, 235), (200, 25, 25)),
            "inv_triangle": ((240, 240, 235), (200, 25, 25)),
            "rect": [((30, 80, 170), (240, 240, 240)), ((30, 120, 60), (240, 240, 240)), ((240, 240, 240), (30, 30, 30))][rng.integers(3)],
            "diamond": ((245, 200, 30), (240, 240, 240)),
            "octagon": ((200, 20, 25), (240, 240, 240)),
        }[shape]
        center_y = top - size / 2 - (0.05 if kind == "sign" else 0.0)
        if kind != "sign":
            center_y = rng.uniform(2.2, 2.8)
        signs.append((shape, size, center_y, face, border))
        top = center_y - size / 2 - 0.1
    light_color = _jitter(rng, [(30, 30, 32), (45, 45, 40), (200, 170, 40)][rng.integers(3)], 8)
    lit = int(rng.integers(3))
    arm = float(rng.uniform(2.0, 5.0))
    lamp_arm = float(rng.uniform(1.0, 2.5))

    def sign_shape(shape: str, size: float) -> np.ndarray:
        r = size / 2
        if shape == "circle":
            return _regular(20, r)
        if shape == "triangle":
            return _regular(3, r * 1.15, np.pi / 2) * np.array([1, -1]) + np.array([0, -0.1 * r])
        if shape == "inv_triangle":
            return _regular(3, r * 1.15, np.pi / 2) + np.array([0, 0.1 * r])
        if shape == "diamond":
            return _regular(4, r * 1.1)
        if shape == "octagon":
            return _regular(8, r, np.pi / 8)
        return np.array([[-r * 1.1, -r * 0.75], [r * 1.1, -r * 0.75], [r * 1.1, r * 0.75], [-r * 1.1, r * 0.75]])

    def traffic_light(canvas: _Canvas, cam: _Camera, lx: float, ly: float) -> None:
        w, h = 0.32, 0.95
        canvas.fill(_quad_s_plane(cam, s, lx - w * 0.85, lx + w * 0.85, ly - h * 0.55, ly + h * 0.55), _shade(light_color, 0.8), LIGHT)
        canvas.fill(_quad_s_plane(cam, s, lx - w / 2, lx + w / 2, ly - h / 2, ly + h / 2), light_color, LIGHT)
        ppm = cam.pixels_per_metre(s)
        for k, col in enumerate(((220, 30, 25), (235, 170, 20), (40, 200, 90))):
            cy = ly + h / 3 - k * h / 3
            center = cam.project([lx], [cy], [s])[0]
            color = col if k == lit else _shade(col, 0.3)
            r = 0.1 * ppm
            canvas.ellipse(center, (r, r * cam.height_px * _NOMINAL_ASPECT / cam.width), color, LIGHT)

    def draw(canvas: _Canvas, cam: _Camera, s_now: float) -> None:
        if s < cam.s + _NEAR_M:
            return
        canvas.fill(_quad_s_plane(cam, s, x - width / 2, x + width / 2, 0.0, height), pole_color, POLE)
        if kind == "lamp":
            ax = x + toward_road * lamp_arm
            canvas.fill(_quad_s_plane(cam, s, min(x, ax), max(x, ax), height - 0.12, height), pole_color, POLE)
            canvas.fill(_quad_s_plane(cam, s, ax - 0.35, ax + 0.35, height - 0.28, height - 0.05), _shade(pole_color, 0.8), POLE)
            canvas.fill(_quad_s_plane(cam, s, ax - 0.3, ax + 0.3, height - 0.28, height - 0.22), (235, 230, 200), None)
        elif kind == "light":
            traffic_light(canvas, cam, x, height + 0.45)
        elif kind == "overhead":
            ax = x + toward_road * arm
            canvas.fill(_quad_s_plane(cam, s, min(x, ax), max(x, ax), height - 0.15, height), pole_color, POLE)
            traffic_light(canvas, cam, ax, height - 0.15 - 0.55)
            traffic_light(canvas, cam, x + toward_road * 0.35, 2.6)
        for shape, size, cy, face, border in signs:
            outline = sign_shape(shape, size)
            canvas.fill(_billboard_poly(cam, x, s, outline + np.array([0, cy])), border, SIGN)
            canvas.fill(_billboard_poly(cam, x, s, outline * 0.75 + np.array([0, cy])), face, None)
            if shape in ("circle", "rect", "octagon"):
                bar = np.array([[-0.22, -0.05], [0.22, -0.05], [0.22, 0.05], [-0.22, 0.05]]) * size
                canvas.fill(_billboard_poly(cam, x, s, bar + np.array([0, cy])), border if shape != "octagon" else (240, 240, 240), None)

    return _Object(layer=2, x=float(x), s=float(s), speed=0.0, draw=draw, length=0.3)


def _tree(rng: np.random.Generator, x: float, s: float, base_color, layer: int = 2) -> _Object:
    trunk_h = float(rng.uniform(1.8, 3.5))
    trunk_w = float(rng.uniform(0.22, 0.45))
    crown_r = float(rng.uniform(1.4, 3.4))
    n = int(rng.integers(5, 10))
    blobs = [(float(rng.normal(0, crown_r * 0.45)), float(trunk_h + crown_r * 0.8 + rng.normal(0, crown_r * 0.4)),
              float(crown_r * rng.uniform(0.45, 0.8)), _jitter(rng, base_color, 22)) for _ in range(n)]
    trunk = _jitter(rng, (80, 65, 50), 15)

    def draw(canvas: _Canvas, cam: _Camera, s_now: float) -> None:
        if s < cam.s + _NEAR_M:
            return
        canvas.fill(_quad_s_plane(cam, s, x - trunk_w / 2, x + trunk_w / 2, 0.0, trunk_h + crown_r * 0.5), trunk, VEGETATION)
        ppm = cam.pixels_per_metre(s)
        squash = cam.height_px * _NOMINAL_ASPECT / cam.width
        for bx, by, br, col in blobs:
            center = cam.project([x + bx], [by], [s])[0]
            canvas.ellipse(center, (br * ppm, br * ppm * squash), col, VEGETATION)

    return _Object(layer=layer, x=float(x), s=float(s), speed=0.0, draw=draw, length=0.5)


def _building(rng: np.random.Generator, x: float, s0: float, s1: float, outward: int) -> _Object:
    height = float(rng.choice([rng.uniform(6, 12), rng.uniform(12, 24)]))
    color = _jitter(rng, _FACADE_COLORS[rng.integers(len(_FACADE_COLORS))], 15)
    floor_h = float(rng.uniform(2.9, 3.5))
    col_w = float(rng.uniform(2.0, 3.4))
    win_w, win_h = col_w * rng.uniform(0.35, 0.6), floor_h * rng.uniform(0.4, 0.6)
    ground = float(rng.uniform(3.2, 4.5))
    glass = [_jitter(rng, (55, 65, 80), 18) for _ in range(3)]
    frame_dark = _shade(color, rng.uniform(0.6, 0.8))
    shop = bool(rng.random() < 0.5)
    depth = 12.0

    n_floors = max(int((height - ground - 0.8) / floor_h), 0)
    n_cols = max(int((s1 - s0 - 0.6) / col_w), 1)

    def draw(canvas: _Canvas, cam: _Camera, s_now: float) -> None:
        a = max(s0, cam.s + _NEAR_M)
        if s1 <= a:
            return
        if s0 > cam.s + _NEAR_M:  # end wall facing the camera
            canvas.fill(_quad_s_plane(cam, s0, min(x, x + outward * depth), max(x, x + outward * depth), 0.0, height), _shade(color, 0.8), BUILDING)
        canvas.fill(_quad_x_plane(cam, x, a, s1, 0.0, height), color, BUILDING)
        canvas.fill(_quad_x_plane(cam, x, a, s1, height - 0.5, height), frame_dark, None)
        # window grid, vectorised: (floors x cols) quads in the facade plane
        if n_floors and cam.pixels_per_metre(s1) * win_w > 0.8:
            fy = ground + np.arange(n_floors) * floor_h + (floor_h - win_h) / 2
            fs = s0 + 0.3 + (np.arange(n_cols) + 0.5) * (s1 - s0 - 0.6) / n_cols - win_w / 2
            fs = fs[(fs > cam.s + _NEAR_M)]
            if len(fs):
                yy, ss = np.meshgrid(fy, fs, indexing="ij")
                yy, ss = yy.ravel(), ss.ravel()
                pts = cam.project(np.full((len(yy), 4), x), np.stack([yy, yy, yy + win_h, yy + win_h], 1),
                                  np.stack([ss, ss + win_w, ss + win_w, ss], 1)).reshape(-1, 4, 2)
                idx = (np.arange(len(pts)) * 7 + 3) % 3
                for k in range(3):
                    canvas.fill_many(pts[idx == k], glass[k], None)
        if shop:
            canvas.fill(_quad_x_plane(cam, x, max(s0 + 0.5, a), s1 - 0.5, 0.3, ground - 0.8), _shade(glass[0], 0.8), None)

    return _Object(layer=0, x=float(x), s=float(s0), speed=0.0, draw=draw, length=float(s1 - s0))


def _hedge(rng: np.random.Generator, x: float, s0: float, s1: float, color, tall: bool) -> _Object:
    """A row of vegetation along the road (hedge or tree line) with a ragged top."""
    n = max(int((s1 - s0) / 1.2), 2)
    ss = np.linspace(s0, s1, n)
    base_h = rng.uniform(4.0, 11.0) if tall else rng.uniform(0.8, 2.0)
    hh = base_h + np.cumsum(rng.normal(0, 0.5 if tall else 0.1, n))
    hh = np.clip(hh + (np.sin(ss * rng.uniform(0.3, 0.8)) * (1.2 if tall else 0.1)), 0.5, 16.0)
    fill = _jitter(rng, color, 10)

    def draw(canvas: _Canvas, cam: _Camera, s_now: float) -> None:
        keep = ss > cam.s + _NEAR_M
        if keep.sum() < 2:
            return
        s_vis, h_vis = ss[keep], hh[keep]
        top = cam.project(np.full(len(s_vis), x), h_vis, s_vis)
        bottom = cam.project(np.full(len(s_vis), x), np.zeros(len(s_vis)), s_vis)
        canvas.fill(np.concatenate([top, bottom[::-1]]), fill, VEGETATION)

    return _Object(layer=0, x=float(x), s=float(s0), speed=0.0, draw=draw, length=float(s1 - s0))


def _wall(rng: np.random.Generator, x: float, s0: float, s1: float) -> _Object:
    height = float(rng.uniform(0.8, 2.6))
    color = _jitter(rng, [(160, 158, 150), (140, 90, 75), (120, 120, 115), (190, 180, 160)][rng.integers(4)], 15)
    joints = float(rng.uniform(0.25, 0.6))

    def draw(canvas: _Canvas, cam: _Camera, s_now: float) -> None:
        a = max(s0, cam.s + _NEAR_M)
        if s1 <= a:
            return
        if s0 > cam.s + _NEAR_M:
            canvas.fill(_quad_s_plane(cam, s0, x - 0.15, x + 0.15, 0.0, height), _shade(color, 0.85), WALL)
        canvas.fill(_quad_x_plane(cam, x, a, s1, 0.0, height), color, WALL)
        canvas.fill(_quad_x_plane(cam, x, a, s1, height - 0.1, height), _shade(color, 1.15), None)
        ys = np.arange(joints, height - 0.1, joints)
        if len(ys) and cam.pixels_per_metre(a) * joints > 3:
            lines = cam.project(np.full((len(ys), 2), x), np.stack([ys, ys], 1), np.tile([a, s1], (len(ys), 1)))
            cv2.polylines(canvas.image, list(_Canvas._fixed(lines.reshape(-1, 2, 2))), False, _shade(color, 0.75), 1, cv2.LINE_8, _SHIFT)

    return _Object(layer=1, x=float(x), s=float(s0), speed=0.0, draw=draw, length=float(s1 - s0))


def _fence(rng: np.random.Generator, x: float, s0: float, s1: float) -> _Object:
    height = float(rng.uniform(0.9, 2.0))
    color = _jitter(rng, [(60, 65, 60), (110, 110, 110), (120, 90, 60), (40, 70, 50), (170, 170, 170)][rng.integers(5)], 12)
    mesh = bool(rng.random() < 0.5)
    post_gap = float(rng.uniform(2.0, 3.0))
    picket_gap = float(rng.uniform(0.12, 0.3))

    def draw(canvas: _Canvas, cam: _Camera, s_now: float) -> None:
        a = max(s0, cam.s + _NEAR_M)
        if s1 <= a:
            return
        if mesh:
            canvas.blend(_quad_x_plane(cam, x, a, s1, 0.05, height), color, 0.45, FENCE)
        else:
            picks = np.arange(s0, s1, picket_gap)
            picks = picks[picks > a]
            if len(picks):
                pts = cam.project(np.full((len(picks), 4), x), np.tile([0.05, 0.05, height, height], (len(picks), 1)),
                                  np.stack([picks, picks + 0.05, picks + 0.05, picks], 1)).reshape(-1, 4, 2)
                canvas.fill_many(pts, color, FENCE)
        for ry in (height - 0.08, height * 0.4):
            canvas.fill(_quad_x_plane(cam, x, a, s1, ry, ry + 0.07), _shade(color, 1.1), FENCE)
        posts = np.arange(s0, s1 + 0.01, post_gap)
        posts = posts[posts > a]
        if len(posts):
            pts = cam.project(np.full((len(posts), 4), x), np.tile([0.0, 0.0, height + 0.05, height + 0.05], (len(posts), 1)),
                              np.stack([posts, posts + 0.1, posts + 0.1, posts], 1)).reshape(-1, 4, 2)
            canvas.fill_many(pts, _shade(color, 0.8), FENCE)

    return _Object(layer=1, x=float(x), s=float(s0), speed=0.0, draw=draw, length=float(s1 - s0))


# --------------------------------------------------------------------------------------------
# World chunks


def _chunk(layout: _Layout, key: tuple[int, int], index: int) -> list[_Object]:
    """The objects whose start lies in chunk ``index`` (a deterministic function of the key)."""
    rng = np.random.default_rng([key[0], key[1], index + (1 << 20)])
    s_start = index * _CHUNK_M
    s_end = s_start + _CHUNK_M
    objects: list[_Object] = []
    for side in (layout.left, layout.right):
        out = side.sign
        front_x = layout.side_x(side, side.frontage_offset)
        # frontage: buildings, tree lines, open land
        s = s_start
        while s < s_end:
            length = float(rng.uniform(8.0, 30.0))
            end = min(s + length, s_end)
            pick = rng.random()
            setback = float(rng.uniform(0.0, 3.0)) if rng.random() < 0.5 else 0.0
            bx = front_x + out * setback
            if side.frontage == "buildings":
                if pick < 0.82:
                    objects.append(_building(rng, bx, s, end, out))
                elif pick < 0.94:
                    objects.append(_hedge(rng, bx + out * 2.0, s, end, layout.vegetation_color, tall=True))
            elif side.frontage == "vegetation":
                if pick < 0.85:
                    objects.append(_hedge(rng, bx, s, end, layout.vegetation_color, tall=True))
                else:
                    objects.append(_building(rng, bx + out * 6.0, s, end, out))
            else:
                if pick < 0.3:
                    objects.append(_hedge(rng, bx + out * rng.uniform(10, 40), s, end, layout.vegetation_color, tall=True))
                elif pick < 0.45:
                    objects.append(_building(rng, bx + out * rng.uniform(10, 30), s, end, out))
            # walls and fences at the frontage line
            barrier = rng.random()
            bx_line = front_x - out * 0.1
            if barrier < 0.22:
                objects.append(_wall(rng, bx_line, s, end))
            elif barrier < 0.5:
                objects.append(_fence(rng, bx_line, s, end))
            elif barrier < 0.6:
                objects.append(_hedge(rng, bx_line, s, end, layout.vegetation_color, tall=False))
            s = end + (float(rng.uniform(0.0, 6.0)) if rng.random() < 0.3 else 0.0)
        # trees in the grass strip or at the sidewalk's outer edge
        if side.trees:
            tree_d = side.curb + side.grass / 2 if side.grass > 0.8 else side.curb + side.grass + side.sidewalk - 0.6
            s = s_start + float(rng.uniform(0, 12))
            gap = float(rng.uniform(8.0, 18.0))
            while s < s_end:
                objects.append(_tree(rng, layout.side_x(side, tree_d), s, layout.vegetation_color))
                s += gap * float(rng.uniform(0.8, 1.2))
        # poles at the curb
        s = s_start + float(rng.uniform(0, 15))
        while s < s_end:
            pole_d = side.curb + float(rng.uniform(0.3, 0.7))
            objects.append(_pole(rng, layout.side_x(side, pole_d), s, -out))
            s += float(rng.uniform(10.0, 28.0))
        # pedestrians on the sidewalk
        if side.sidewalk > 0:
            count = rng.poisson(2.5 * layout.person_density)
            for _ in range(count):
                d = side.curb + side.grass + float(rng.uniform(0.3, side.sidewalk - 0.3 if side.sidewalk > 0.8 else 0.5))
                speed = float(rng.choice([0.0, 1.0, -1.0])) * float(rng.uniform(0.8, 1.6))
                ps = float(rng.uniform(s_start, s_end))
                if rng.random() < 0.3:  # a small group
                    for k in range(int(rng.integers(2, 4))):
                        objects.append(_person(rng, layout.side_x(side, d + rng.uniform(-0.4, 0.4)), ps + k * rng.uniform(0.5, 1.2), speed))
                else:
                    objects.append(_person(rng, layout.side_x(side, d), ps, speed))
            # parked bicycles at the sidewalk's outer edge, parked motorcycles at the curb
            for _ in range(rng.binomial(2, 0.3)):
                d = side.curb + side.grass + side.sidewalk - 0.4
                objects.append(_two_wheeler(rng, layout.side_x(side, d), float(rng.uniform(s_start, s_end)), 0.0, motor=False, ridden=False))
            if rng.random() < 0.3:
                d = side.curb + side.grass + 0.5
                objects.append(_two_wheeler(rng, layout.side_x(side, d), float(rng.uniform(s_start, s_end)), 0.0, motor=True, ridden=False))
        # parked cars
        if side.parking:
            px = 1.1 if side.sign < 0 else layout.road_width - 1.1
            s = s_start + float(rng.uniform(0, 6))
            while s < s_end:
                if rng.random() < 0.75:
                    kind = "car" if rng.random() < 0.85 else "van"
                    obj = _vehicle(rng, kind, px, s, 0.0, facing_us=bool(rng.random() < 0.15))
                    objects.append(obj)
                    s += obj.length + float(rng.uniform(0.8, 3.0))
                else:
                    s += float(rng.uniform(4.0, 12.0))
    # moving traffic
    first_lane = 2.2 if layout.left.parking else 0.0
    for lane in range(layout.lanes):
        lx = first_lane + (lane + 0.5) * layout.lane_width
        oncoming = lane < layout.oncoming
        s = s_start + float(rng.uniform(0, 20))
        while s < s_end:
            kind = str(rng.choice(["car", "van", "truck", "bus", "moto", "bike"], p=[0.58, 0.09, 0.09, 0.07, 0.085, 0.085]))
            speed = layout.lane_speed[lane]
            x = lx + float(rng.uniform(-0.3, 0.3))
            if kind in ("moto", "bike"):
                if kind == "bike":
                    x = lx + (layout.lane_width / 2 - 0.6) * (1 if not oncoming else -1)
                obj = _two_wheeler(rng, x, s, speed, motor=kind == "moto", ridden=True)
            else:
                obj = _vehicle(rng, kind, x, s, speed, facing_us=oncoming)
            if not (speed == layout.ego_speed and -12.0 < s < 6.0):  # keep clear of the ego car
                objects.append(obj)
            s += obj.length + float(rng.uniform(6.0, 40.0)) / layout.traffic_density
    if rng.random() < 0.08:  # a tram in the middle of the road
        objects.append(_vehicle(rng, "tram", layout.road_width / 2, s_start + float(rng.uniform(0, 30)), 0.0, facing_us=bool(rng.random() < 0.5)))
    return objects


# --------------------------------------------------------------------------------------------
# Rendering


def _ground_strip(canvas: _Canvas, cam: _Camera, x0: float, x1: float, color, label: int | None, zs: np.ndarray) -> None:
    s = cam.s + zs
    left = cam.project(np.full(len(zs), x0), 0.0, s)
    right = cam.project(np.full(len(zs), x1), 0.0, s)
    canvas.fill(np.concatenate([left, right[::-1]]), color, label)


def _sky(canvas: _Canvas, layout: _Layout, cam: _Camera, rng: np.random.Generator) -> None:
    """Vertical gradient with soft clouds, only down to just below the horizon (ground covers the rest)."""
    h, w = canvas.height, canvas.width
    rows = min(h, max(int((cam.horizon + 0.03) * h), 1))
    v = np.linspace(0.0, (rows - 1) / max(h - 1, 1), rows, dtype=np.float32)[:, None]
    t = np.clip(v / max(cam.horizon, 1e-3), 0, 1) ** 1.5
    top = np.asarray(layout.sky_top, np.float32)
    grad = top * (1 - t) + np.asarray(layout.sky_horizon, np.float32) * t  # (rows, 3)
    if layout.cloudiness > 0.05:
        sh, sw = max(h // 8, 4), max(w // 8, 4)
        mask = np.zeros((sh, sw), np.float32)
        for _ in range(int(6 + 30 * layout.cloudiness)):
            cx, cy = rng.uniform(-0.1, 1.1) * sw, rng.uniform(-0.1, cam.horizon) * sh
            ax = rng.uniform(0.03, 0.15) * sw
            cv2.ellipse(mask, (int(cx), int(cy)), (int(ax) + 1, int(ax * rng.uniform(0.2, 0.45)) + 1), 0, 0, 360, float(rng.uniform(0.3, 1.0)), -1)
        mask = cv2.GaussianBlur(mask, (0, 0), max(sw / 80, 0.8))
        mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)[:rows, :, None] * np.float32(0.85)
        cloud = np.asarray(_rgb(np.array(layout.sky_horizon) * 0.3 + 185), np.float32)
        sky = grad[:, None, :] + mask * (cloud - grad)[:, None, :]
        canvas.image[:rows] = sky.astype(np.uint8)
    else:
        canvas.image[:rows] = grad.astype(np.uint8)[:, None, :]


def _skyline(canvas: _Canvas, layout: _Layout, cam: _Camera, rng: np.random.Generator) -> None:
    """Distant buildings and tree lines just above the horizon."""
    base = (cam.horizon + 0.012) * canvas.height
    u = -0.02
    while u < 1.02:
        width = rng.uniform(0.02, 0.09)
        height = rng.uniform(0.005, 0.07) * canvas.height
        x0, x1 = u * canvas.width, (u + width) * canvas.width
        if rng.random() < 0.55:
            col = _jitter(rng, np.array(layout.sky_horizon) * 0.55 + 40, 12)
            canvas.fill(np.array([[x0, base], [x1, base], [x1, base - height], [x0, base - height]]), col, BUILDING)
        else:
            n = 8
            xs = np.linspace(x0, x1, n)
            ys = base - height * rng.uniform(0.4, 1.0, n)
            pts = np.concatenate([np.stack([xs, ys], 1), [[x1, base], [x0, base]]])
            canvas.fill(pts, _jitter(rng, _shade(layout.vegetation_color, 0.85), 8), VEGETATION)
        u += width * rng.uniform(0.7, 1.1)


def _ground(canvas: _Canvas, layout: _Layout, cam: _Camera, vehicles: list[tuple[_Object, float]]) -> None:
    h = canvas.height
    top = (cam.horizon + 0.008) * h
    canvas.fill(np.array([[-1.0, top], [canvas.width + 1.0, top], [canvas.width + 1.0, h + 1.0], [-1.0, h + 1.0]]), layout.far_ground, TERRAIN)
    zs = np.geomspace(_NEAR_M * 0.7, _FAR_M, 28)
    for side in (layout.left, layout.right):
        d_far = side.frontage_offset + 80.0
        strips = [
            (side.frontage_offset, d_far, side.front_color if side.frontage != "buildings" else side.sidewalk_color,
             TERRAIN if (side.frontage != "buildings" or side.front_is_grass) else SIDEWALK),
            (side.curb + side.grass + side.sidewalk, side.frontage_offset, side.front_color, TERRAIN if side.front_is_grass else SIDEWALK),
            (side.curb + side.grass, side.curb + side.grass + side.sidewalk, side.sidewalk_color, SIDEWALK),
            (side.curb, side.curb + side.grass, side.grass_color, TERRAIN),
            (0.0, side.curb, side.curb_color, SIDEWALK),
        ]
        for d0, d1, color, label in strips:
            if d1 - d0 > 1e-3:
                _ground_strip(canvas, cam, layout.side_x(side, d0), layout.side_x(side, d1), color, label, zs)
        # curb face: a low vertical strip at the road edge
        edge = layout.side_x(side, 0.0)
        s = cam.s + zs
        top_line = cam.project(np.full(len(zs), edge), 0.13, s)
        bottom_line = cam.project(np.full(len(zs), edge), 0.0, s)
        canvas.fill(np.concatenate([top_line, bottom_line[::-1]]), _shade(side.curb_color, 0.8), SIDEWALK)
        # paving joints (image only)
        if side.sidewalk > 0 and side.paving > 0:
            d0, d1 = side.curb + side.grass, side.curb + side.grass + side.sidewalk
            js = np.arange(math.ceil((cam.s + 2.0) / side.paving) * side.paving, cam.s + 40.0, side.paving)
            if len(js):
                lines = cam.project(np.tile([layout.side_x(side, d0), layout.side_x(side, d1)], (len(js), 1)), 0.0, np.stack([js, js], 1))
                cv2.polylines(canvas.image, list(_Canvas._fixed(lines.reshape(-1, 2, 2))), False, _shade(side.sidewalk_color, 0.72), 1, cv2.LINE_8, _SHIFT)
    # road surface
    _ground_strip(canvas, cam, 0.0, layout.road_width, layout.road_color, ROAD, zs)
    _road_markings(canvas, layout, cam)
    for obj, s_now in vehicles:
        _vehicle_shadow(canvas, cam, obj.x, s_now, obj.length)


def _road_markings(canvas: _Canvas, layout: _Layout, cam: _Camera) -> None:
    """Lane lines, edge lines and zebra crossings: image only, labelled road."""
    first_lane = 2.2 if layout.left.parking else 0.0
    color = layout.marking_color
    w = 0.13
    zs = np.geomspace(_NEAR_M * 0.7, 150.0, 16)
    if layout.edge_lines:
        for ex in (first_lane + 0.25, first_lane + layout.lanes * layout.lane_width - 0.25):
            _ground_strip(canvas, cam, ex - w / 2, ex + w / 2, color, None, zs)
    period = layout.dash_period
    for k in range(1, layout.lanes):
        lx = first_lane + k * layout.lane_width
        if k == layout.oncoming and layout.center_solid:
            _ground_strip(canvas, cam, lx - w, lx - w / 3, color, None, zs)
            _ground_strip(canvas, cam, lx + w / 3, lx + w, color, None, zs)
            continue
        start = math.floor((cam.s + _NEAR_M - layout.dash_phase) / period) * period + layout.dash_phase
        dashes = np.arange(start, cam.s + 150.0, period)
        d0 = np.maximum(dashes, cam.s + _NEAR_M * 0.7)
        d1 = dashes + period / 3
        keep = d1 > d0
        d0, d1 = d0[keep], d1[keep]
        if len(d0):
            pts = cam.project(np.tile([lx - w / 2, lx + w / 2, lx + w / 2, lx - w / 2], (len(d0), 1)), 0.0,
                              np.stack([d0, d0, d1, d1], 1)).reshape(-1, 4, 2)
            canvas.fill_many(pts, color, None)
    if layout.crossing_s > 0 and layout.crossing_s > cam.s + _NEAR_M:
        xs = np.arange(first_lane + 0.3, first_lane + layout.lanes * layout.lane_width - 0.5, 1.0)
        c0, c1 = layout.crossing_s, layout.crossing_s + 3.5
        pts = cam.project(np.stack([xs, xs + 0.5, xs + 0.5, xs], 1), 0.0, np.tile([c0, c0, c1, c1], (len(xs), 1))).reshape(-1, 4, 2)
        canvas.fill_many(pts, color, None)
    # darker tyre tracks and patches give the asphalt structure
    for k in range(layout.lanes):
        cx = first_lane + (k + 0.5) * layout.lane_width
        for off in (-0.8, 0.8):
            _ground_strip(canvas, cam, cx + off - 0.25, cx + off + 0.25, _shade(layout.road_color, 0.9), None, zs)


def _hood(canvas: _Canvas, layout: _Layout) -> None:
    h, w = canvas.height, canvas.width
    xs = np.linspace(-0.05, 1.05, 24)
    ys = 1.0 - layout.hood * (1.0 - 0.45 * (2 * xs - 1) ** 2)
    pts = np.concatenate([np.stack([xs * w, ys * h], 1), [[1.05 * w, h + 1.0], [-0.05 * w, h + 1.0]]])
    canvas.fill(pts, layout.hood_color, IGNORE_LABEL)


# Texture amplitudes per class, in grey levels: fine grain, mid-size blotches, coarse shading.
# Vegetation and terrain get strong blotchy, green-tinted texture, sky and vehicles little.
_TEXTURE_AMPLITUDES = {
    ROAD: (7, 5, 8), SIDEWALK: (6, 4, 6), BUILDING: (3, 4, 10), WALL: (5, 5, 8), FENCE: (4, 2, 4),
    POLE: (2, 1, 4), LIGHT: (2, 1, 2), SIGN: (2, 1, 2), VEGETATION: (9, 22, 12), TERRAIN: (12, 10, 12),
    SKY: (1, 0, 3), PERSON: (3, 3, 4), RIDER: (3, 3, 4), CAR: (2, 2, 6), TRUCK: (2, 2, 6), BUS: (2, 2, 6),
    TRAIN: (2, 2, 6), MOTORCYCLE: (2, 2, 4), BICYCLE: (2, 2, 4), IGNORE_LABEL: (1, 1, 4),
}
_TEXTURE_LUT = np.zeros((3, 1, 256), np.float32)
for _label, _amp in _TEXTURE_AMPLITUDES.items():
    _TEXTURE_LUT[:, 0, _label] = _amp
_TINT_LUT = np.ones((1, 256, 3), np.float32)
_TINT_LUT[0, VEGETATION] = (0.7, 1.0, 0.45)
_TINT_LUT[0, TERRAIN] = (0.95, 1.0, 0.6)


def _finish(canvas: _Canvas, layout: _Layout, rng: np.random.Generator) -> np.ndarray:
    """Texture by class family, lighting, blur and sensor noise, on the image only."""
    h, w = canvas.height, canvas.width
    labels = canvas.labels
    light = layout.lighting
    luts = _TEXTURE_LUT * np.float32(light["texture"])
    fine = rng.standard_normal((h, w), dtype=np.float32)
    mid = cv2.resize(rng.standard_normal((max(h // 4, 2), max(w // 4, 2)), dtype=np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    coarse = cv2.resize(rng.standard_normal((max(h // 24, 2), max(w // 24, 2)), dtype=np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    tex = cv2.LUT(labels, luts[0]) * fine
    tex += cv2.LUT(labels, luts[1]) * mid
    tex += cv2.LUT(labels, luts[2]) * coarse
    tint = cv2.LUT(cv2.merge([labels, labels, labels]), _TINT_LUT)
    image = canvas.image.astype(np.float32)
    image += tex[..., None] * tint
    # brightness, colour cast and contrast around the mean, in one multiply-add
    gain = np.float32(light["gain"]) * np.asarray(light["cast"], np.float32) * np.float32(light["contrast"])
    mean = float(canvas.image.mean()) * light["gain"]
    offset = np.float32(mean * (1.0 - light["contrast"]))
    if light["vignette"] > 0:
        image *= (1.0 - np.float32(light["vignette"] * 0.5) * _radius_squared(h, w))[..., None] * gain
    else:
        image *= gain
    image += offset
    np.clip(image, 0, 255, out=image)
    out = cv2.LUT(image.astype(np.uint8), _gamma_lut(light["gamma"]))
    sigma = light["blur"] * w / 1024.0
    if sigma > 0.3:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    amplitude = max(int(round(light["noise"] * 1.7)), 1)
    noise = rng.integers(-amplitude, amplitude + 1, (h, w), dtype=np.int16)
    noisy = out.astype(np.int16)
    noisy += noise[..., None]
    return np.clip(noisy, 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=4)
def _radius_squared(height: int, width: int) -> np.ndarray:
    """Squared distance from the image centre in [-1, 1] coordinates (vignetting), cached per size."""
    yy = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
    xx = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
    field = xx * xx + yy * yy
    field.flags.writeable = False
    return field


def _gamma_lut(gamma: float) -> np.ndarray:
    return np.clip(np.rint(255.0 * (np.arange(256) / 255.0) ** gamma), 0, 255).astype(np.uint8)


def _render(layout: _Layout, world: "_World", cam: _Camera, t: float, rng: np.random.Generator) -> SyntheticFrame:
    """Draw the world at time ``t``; ``rng`` only feeds per-frame noise."""
    canvas = _Canvas(cam.height_px, cam.width)
    backdrop = np.random.default_rng([world.key[0], world.key[1], 4])  # same clouds in every frame
    _sky(canvas, layout, cam, backdrop)
    _skyline(canvas, layout, cam, backdrop)
    # objects start inside their chunk and are at most 30 m long; movers may come from behind
    first = math.floor((cam.s - (32.0 if t == 0 else 80.0)) / _CHUNK_M)
    last = math.floor((cam.s + _FAR_M) / _CHUNK_M)
    visible: list[tuple[_Object, float]] = []
    for index in range(first, last + 1):
        for obj in world(index):
            s_now = obj.s_at(t)
            if s_now + obj.length > cam.s + _NEAR_M and s_now < cam.s + _FAR_M:
                visible.append((obj, s_now))
    vehicles = [(o, s) for o, s in visible if o.layer == 2 and o.length > 3.0]
    _ground(canvas, layout, cam, vehicles)
    # painter's order: outer layers first (nothing further out can hide something further in),
    # then far to near within a layer
    visible.sort(key=lambda item: (item[0].layer, -item[1]))
    for obj, s_now in visible:
        obj.draw(canvas, cam, s_now)
    if layout.hood > 0:
        _hood(canvas, layout)
    image = _finish(canvas, layout, rng)
    return SyntheticFrame(image=image, labels=canvas.labels)


class _World:
    """Lazily generated chunks of one seed's world (cached while a sequence drives through it)."""

    def __init__(self, layout: _Layout, key: tuple[int, int]) -> None:
        self.layout, self.key = layout, key
        self._cache: dict[int, list[_Object]] = {}

    def __call__(self, index: int) -> list[_Object]:
        if index not in self._cache:
            self._cache[index] = _chunk(self.layout, self.key, index)
            for old in [k for k in self._cache if k < index - 4]:
                del self._cache[old]
        return self._cache[index]


def _camera(layout: _Layout, s: float, height: int, width: int, bump: float = 0.0) -> _Camera:
    return _Camera(
        s=s, x=layout.ego_x, height=layout.cam_height, horizon=layout.horizon + bump, focal=layout.focal,
        curvature=layout.curvature, width=width, height_px=height,
    )


def _check_args(seed: int, height: int, width: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"synthetic scene seeds are non-negative integers, got {seed!r}")
    if height < 8 or width < 8:
        raise ValueError(f"synthetic frames need at least 8x8 pixels, got {height}x{width}")


def generate_scene(seed: int, height: int = 512, width: int = 1024) -> SyntheticFrame:
    """One random road scene; the same seed gives the same scene (bytes) at a given size."""
    _check_args(seed, height, width)
    layout = _make_layout(np.random.default_rng([_SCENE_STREAM, seed]))
    world = _World(layout, (_SCENE_STREAM, seed))
    cam = _camera(layout, 0.0, height, width)
    return _render(layout, world, cam, 0.0, np.random.default_rng([_SCENE_STREAM, seed, 1]))


def generate_sequence(seed: int, num_frames: int, height: int = 512, width: int = 1024) -> Iterator[SyntheticFrame]:
    """A drive through one world at 10 Hz: objects approach and grow between frames.

    Sequences draw from their own random stream, so no sequence frame equals a training frame.
    """
    _check_args(seed, height, width)
    layout = _make_layout(np.random.default_rng([_SEQUENCE_STREAM, seed]))
    world = _World(layout, (_SEQUENCE_STREAM, seed))
    bump_phase = float(np.random.default_rng([_SEQUENCE_STREAM, seed, 2]).uniform(0, 2 * np.pi))
    for i in range(num_frames):
        t = i * _FRAME_DT
        bump = 0.003 * math.sin(bump_phase + 2.1 * t)
        cam = _camera(layout, layout.ego_speed * t, height, width, bump)
        # frame noise is per frame, the lighting and world are per sequence
        yield _render(layout, world, cam, t, np.random.default_rng([_SEQUENCE_STREAM, seed, 3, i]))
