"""Scene-wide parameters drawn once per seed: road cross-section, roadsides, camera, palette, light.

A layout fixes everything that stays the same along the road; the objects standing on it are
drawn chunk by chunk in :mod:`.world`. The order of the random draws is part of the scenes'
identity (a seed must keep its bytes), so helpers below are called in the original draw order.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .palette import CAR_COLORS, RGB, jitter, pick, rgb, shade

PARKING_STRIP_M = 2.2  # width of a parking strip at a road edge


@dataclass(frozen=True)
class FrontagePiece:
    """What may stand along one stretch of a frontage: ``kind`` when the stretch's draw is below ``below``.

    ``offset`` moves it outward from the frontage line: a fixed distance, a (low, high) range
    drawn when the piece is placed, or None for on the line.
    """

    below: float
    kind: str  # "building" | "tall_hedge"; builders in world.py
    offset: float | tuple[float, float] | None = None


@dataclass(frozen=True)
class Frontage:
    """One kind of roadside frontage: how often it is drawn, its ground, and what stands on it."""

    weight: float
    paved: bool  # buildings stand behind paving; other frontages on grass or open land
    pieces: tuple[FrontagePiece, ...]


# Keyed by ``Side.frontage``; the dict order is the order of the weighted choice.
FRONTAGES: dict[str, Frontage] = {
    "buildings": Frontage(0.62, True, (FrontagePiece(0.82, "building"), FrontagePiece(0.94, "tall_hedge", 2.0))),
    "vegetation": Frontage(0.26, False, (FrontagePiece(0.85, "tall_hedge"), FrontagePiece(1.0, "building", 6.0))),
    "open": Frontage(0.12, False, (FrontagePiece(0.3, "tall_hedge", (10, 40)),
                                   FrontagePiece(0.45, "building", (10, 30)))),
}

_PAVING_COLORS = ((150, 150, 148), (175, 170, 160), (140, 120, 115), (120, 120, 125), (190, 185, 175))
_GRASS_COLORS = ((85, 115, 55), (110, 125, 65), (140, 135, 90), (70, 100, 50))
_VEGETATION_COLORS = ((60, 95, 45), (75, 105, 50), (50, 80, 40), (90, 110, 55))


@dataclass
class Side:
    """One roadside, described outward from the road edge (distances in metres)."""

    sign: int  # -1 left of the road, +1 right
    curb: float
    grass: float  # grass strip between curb and sidewalk (0 = none)
    sidewalk: float  # 0 = no sidewalk
    front: float  # strip between sidewalk and frontage
    front_is_grass: bool
    frontage: str  # a key of FRONTAGES
    parking: bool
    trees: bool
    curb_color: RGB
    sidewalk_color: RGB
    grass_color: RGB
    front_color: RGB
    paving: float  # paving joint spacing (m), 0 = plain

    @property
    def frontage_offset(self) -> float:
        return self.curb + self.grass + self.sidewalk + self.front

    @property
    def paved_frontage(self) -> bool:
        return FRONTAGES[self.frontage].paved


@dataclass(frozen=True)
class Sky:
    top: RGB
    horizon: RGB
    cloudiness: float


@dataclass(frozen=True)
class Lighting:
    """Image-only photometric parameters, applied after the geometry (see :mod:`.finish`)."""

    gain: float
    contrast: float
    cast: np.ndarray  # per-channel gain, (3,)
    gamma: float
    blur: float  # Gaussian sigma at 1024 px width
    noise: float
    vignette: float
    texture: float  # scale of the per-class texture amplitudes


@dataclass
class Layout:
    """Scene-wide parameters: road cross-section, camera, palette, lighting."""

    lanes: int
    lane_width: float
    oncoming: int  # number of lanes (from the left) with oncoming traffic
    road_width: float
    left: Side
    right: Side
    ego_x: float
    ego_speed: float
    cam_height: float
    horizon: float
    focal: float
    curvature: float
    road_color: RGB
    marking_color: RGB
    dash_period: float
    dash_phase: float
    center_solid: bool
    edge_lines: bool
    crossing_s: float  # s of a zebra crossing, or -1
    traffic_density: float
    person_density: float
    vegetation_color: RGB
    sky_top: RGB
    sky_horizon: RGB
    cloudiness: float
    far_ground: RGB
    lighting: Lighting
    hood: float  # ego-hood height as a fraction of the image height, 0 = none
    hood_color: RGB
    lane_speed: list = field(default_factory=list)

    def side_x(self, side: Side, d: float) -> float:
        """Road-frame lateral coordinate at distance ``d`` outward from the side's road edge."""
        return -d if side.sign < 0 else self.road_width + d

    @property
    def first_lane_x(self) -> float:
        """Left edge of the leftmost lane (a left parking strip comes first)."""
        return PARKING_STRIP_M if self.left.parking else 0.0


# ---- roadsides ------------------------------------------------------------------------------


def make_side(rng: np.random.Generator, sign: int) -> Side:
    """One roadside's cross-section and colours."""
    frontage = str(rng.choice(list(FRONTAGES), p=[f.weight for f in FRONTAGES.values()]))
    sidewalk = 0.0 if rng.random() < 0.1 else float(rng.uniform(1.5, 5.0))
    grass = float(rng.uniform(0.6, 3.0)) if rng.random() < 0.4 else 0.0
    if sidewalk == 0.0 and grass == 0.0:
        grass = float(rng.uniform(1.0, 4.0))
    sidewalk_color = pick(rng, _PAVING_COLORS, 18)
    grass_color = pick(rng, _GRASS_COLORS, 15)
    front_is_grass = bool(rng.random() < 0.4)
    return Side(
        sign=sign,
        curb=float(rng.uniform(0.18, 0.35)),
        grass=grass,
        sidewalk=sidewalk,
        front=float(rng.uniform(0.0, 2.5)) if not FRONTAGES[frontage].paved or rng.random() < 0.4 else 0.0,
        front_is_grass=front_is_grass,
        frontage=frontage,
        parking=bool(rng.random() < 0.45),
        trees=bool(rng.random() < 0.6),
        curb_color=jitter(rng, (165, 165, 160), 20),
        sidewalk_color=sidewalk_color,
        grass_color=grass_color,
        front_color=grass_color if front_is_grass else shade(sidewalk_color, rng.uniform(0.85, 1.1)),
        paving=float(rng.choice([0.0, 0.5, 1.0, 1.5])),
    )


# ---- sky ------------------------------------------------------------------------------------


def _tinted_sky(rng: np.random.Generator, top: RGB, top_jitter: float, horizon: RGB, horizon_jitter: float,
                max_cloudiness: float) -> Sky:
    """A coloured gradient (clear day, low sun) with at most ``max_cloudiness`` clouds."""
    return Sky(jitter(rng, top, top_jitter), jitter(rng, horizon, horizon_jitter),
               float(rng.uniform(0.0, max_cloudiness)))


def _overcast_sky(rng: np.random.Generator) -> Sky:
    """A grey gradient, slightly bluer at the top, with many clouds."""
    grey = rng.uniform(160, 225)
    return Sky(rgb((grey - 20, grey - 15, grey - 5)), rgb((grey + 10, grey + 12, grey + 15)),
               float(rng.uniform(0.3, 1.0)))


# weather -> (upper bound of the weather draw, sky builder); checked in this order
WEATHER: dict[str, tuple[float, Callable[[np.random.Generator], Sky]]] = {
    "clear": (0.55, functools.partial(_tinted_sky, top=(70, 120, 195), top_jitter=25, horizon=(185, 210, 235),
                                      horizon_jitter=15, max_cloudiness=0.6)),
    "overcast": (0.85, _overcast_sky),
    "low sun": (1.0, functools.partial(_tinted_sky, top=(90, 120, 175), top_jitter=20, horizon=(235, 190, 150),
                                       horizon_jitter=20, max_cloudiness=0.5)),
}


def _sky(rng: np.random.Generator) -> Sky:
    weather = rng.random()
    return next(build for below, build in WEATHER.values() if weather < below)(rng)


# ---- whole layout ---------------------------------------------------------------------------


def _lane_speeds(rng: np.random.Generator, lanes: int, oncoming: int, ego_lane: int, ego_speed: float) -> list[float]:
    """Oncoming lanes drive towards the camera; the others near the ego speed, the ego lane at it."""
    speeds = []
    for lane in range(lanes):
        if lane < oncoming:
            speeds.append(-float(rng.uniform(6.0, 14.0)))
        elif lane == ego_lane:
            speeds.append(ego_speed)
        else:
            speeds.append(ego_speed + float(rng.uniform(-2.5, 2.5)))
    return speeds


def _lighting(rng: np.random.Generator) -> Lighting:
    return Lighting(
        gain=float(rng.uniform(0.7, 1.25)),
        contrast=float(rng.uniform(0.75, 1.2)),
        cast=rng.uniform(0.92, 1.08, 3),
        gamma=float(rng.uniform(0.8, 1.25)),
        blur=float(rng.uniform(0.0, 1.1)),
        noise=float(rng.uniform(1.0, 7.0)),
        vignette=float(rng.uniform(0.0, 0.35)),
        texture=float(rng.uniform(0.6, 1.4)),
    )


def make_layout(rng: np.random.Generator) -> Layout:
    """Draw a scene's layout; every random draw happens here, in a fixed order."""
    lanes = int(rng.choice([1, 2, 2, 3, 4, 4]))
    lane_width = float(rng.uniform(2.9, 3.7))
    oncoming = 0 if lanes == 1 or rng.random() < 0.3 else lanes // 2
    left, right = make_side(rng, -1), make_side(rng, +1)
    road_width = (lanes * lane_width + (PARKING_STRIP_M if left.parking else 0.0)
                  + (PARKING_STRIP_M if right.parking else 0.0))
    first_lane = PARKING_STRIP_M if left.parking else 0.0
    ego_lane = int(rng.choice(list(range(oncoming, lanes))))
    ego_x = first_lane + (ego_lane + 0.5) * lane_width + float(rng.uniform(-0.4, 0.4))
    ego_speed = float(rng.uniform(5.0, 14.0))
    lane_speed = _lane_speeds(rng, lanes, oncoming, ego_lane, ego_speed)
    sky = _sky(rng)
    lighting = _lighting(rng)
    hood = float(rng.uniform(0.06, 0.14)) if rng.random() < 0.3 else 0.0
    road_base = rng.uniform(65, 125)
    return Layout(
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
        road_color=rgb(np.array([road_base, road_base, road_base + rng.uniform(-4, 8)]) + rng.uniform(-5, 5)),
        marking_color=rgb((235, 235, 230)) if rng.random() < 0.85 else rgb((230, 200, 80)),
        dash_period=float(rng.uniform(8.0, 13.0)),
        dash_phase=float(rng.uniform(0, 13.0)),
        center_solid=bool(rng.random() < 0.4),
        edge_lines=bool(rng.random() < 0.6),
        crossing_s=float(rng.uniform(12, 60)) if rng.random() < 0.2 else -1.0,
        traffic_density=float(rng.uniform(0.6, 1.6)),
        person_density=float(rng.uniform(0.5, 2.0)),
        vegetation_color=pick(rng, _VEGETATION_COLORS, 12),
        sky_top=sky.top,
        sky_horizon=sky.horizon,
        cloudiness=sky.cloudiness,
        far_ground=jitter(rng, (110, 115, 100), 15),
        lighting=lighting,
        hood=hood,
        hood_color=pick(rng, CAR_COLORS, 10),
        lane_speed=lane_speed,
    )
