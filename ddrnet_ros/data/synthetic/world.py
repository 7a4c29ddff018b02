"""The world along the road: objects generated chunk by chunk, each chunk from its own stream.

The world is cut into :data:`CHUNK_M` chunks along the road, each a deterministic function of
the seed's key and the chunk index, so a drive can move through it frame by frame and a single
frame only generates what it can see. Within a chunk the random draws happen in a fixed order
(frontage, street trees, poles, people and parked two-wheelers, parked cars, each side in turn;
then moving traffic and a tram), which is part of every scene's identity.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from .frontage import building, fence, hedge, wall
from .furniture import pole, tree
from .layout import FRONTAGES, PARKING_STRIP_M, Layout, Side
from .people import person
from .shapes import WorldObject, draw_span
from .two_wheelers import two_wheeler
from .vehicles import vehicle

CHUNK_M = 60.0  # world is generated in chunks of this length along the road

# (rng, layout, x, s0, s1, outward) -> object; the kinds FRONTAGES and _BARRIERS name
_Builder = Callable[[np.random.Generator, Layout, float, float, float, int], WorldObject]
_BUILDERS: dict[str, _Builder] = {
    "building": lambda rng, layout, x, s0, s1, out: building(rng, x, s0, s1, out),
    "tall_hedge": lambda rng, layout, x, s0, s1, out: hedge(rng, x, s0, s1, layout.vegetation_color, tall=True),
    "low_hedge": lambda rng, layout, x, s0, s1, out: hedge(rng, x, s0, s1, layout.vegetation_color, tall=False),
    "wall": lambda rng, layout, x, s0, s1, out: wall(rng, x, s0, s1),
    "fence": lambda rng, layout, x, s0, s1, out: fence(rng, x, s0, s1),
}
# barrier at the frontage line: the first kind whose bound is above the draw (none above 0.6)
_BARRIERS: tuple[tuple[float, str], ...] = ((0.22, "wall"), (0.5, "fence"), (0.6, "low_hedge"))


def _build(kind: str, rng: np.random.Generator, layout: Layout, x: float, s0: float, s1: float,
           out: int) -> WorldObject:
    return _BUILDERS[kind](rng, layout, x, s0, s1, out)


def _barrier_kind(draw: float) -> str | None:
    return next((kind for below, kind in _BARRIERS if draw < below), None)


# ---- roadside -------------------------------------------------------------------------------


def _frontage_stretch(rng: np.random.Generator, layout: Layout, side: Side, s: float, end: float) -> list[WorldObject]:
    """What stands on one stretch of frontage, and the wall, fence or hedge in front of it."""
    out = side.sign
    front_x = layout.side_x(side, side.frontage_offset)
    objects = []
    pick = rng.random()
    setback = float(rng.uniform(0.0, 3.0)) if rng.random() < 0.5 else 0.0
    bx = front_x + out * setback
    piece = next((p for p in FRONTAGES[side.frontage].pieces if pick < p.below), None)
    if piece is not None:
        x = bx if piece.offset is None else bx + out * draw_span(rng, piece.offset)
        objects.append(_build(piece.kind, rng, layout, x, s, end, out))
    barrier = _barrier_kind(rng.random())
    if barrier is not None:
        objects.append(_build(barrier, rng, layout, front_x - out * 0.1, s, end, out))
    return objects


def _frontage(rng: np.random.Generator, layout: Layout, side: Side, s_start: float, s_end: float) -> list[WorldObject]:
    """Stretches of 8-30 m of frontage, sometimes with gaps, filling the chunk."""
    objects = []
    s = s_start
    while s < s_end:
        end = min(s + float(rng.uniform(8.0, 30.0)), s_end)
        objects += _frontage_stretch(rng, layout, side, s, end)
        s = end + (float(rng.uniform(0.0, 6.0)) if rng.random() < 0.3 else 0.0)
    return objects


def _street_trees(rng: np.random.Generator, layout: Layout, side: Side, s_start: float,
                  s_end: float) -> list[WorldObject]:
    """Trees in the grass strip, or at the sidewalk's outer edge, at a roughly regular spacing."""
    if not side.trees:
        return []
    tree_d = side.curb + side.grass / 2 if side.grass > 0.8 else side.curb + side.grass + side.sidewalk - 0.6
    objects = []
    s = s_start + float(rng.uniform(0, 12))
    gap = float(rng.uniform(8.0, 18.0))
    while s < s_end:
        objects.append(tree(rng, layout.side_x(side, tree_d), s, layout.vegetation_color))
        s += gap * float(rng.uniform(0.8, 1.2))
    return objects


def _poles(rng: np.random.Generator, layout: Layout, side: Side, s_start: float, s_end: float) -> list[WorldObject]:
    """Poles just behind the curb, arms reaching over the road."""
    objects = []
    s = s_start + float(rng.uniform(0, 15))
    while s < s_end:
        pole_d = side.curb + float(rng.uniform(0.3, 0.7))
        objects.append(pole(rng, layout.side_x(side, pole_d), s, -side.sign))
        s += float(rng.uniform(10.0, 28.0))
    return objects


def _pedestrians(rng: np.random.Generator, layout: Layout, side: Side, s_start: float,
                 s_end: float) -> list[WorldObject]:
    """People on the sidewalk, standing or walking either way, alone or in small groups."""
    objects = []
    for _ in range(rng.poisson(2.5 * layout.person_density)):
        d = side.curb + side.grass + float(rng.uniform(0.3, side.sidewalk - 0.3 if side.sidewalk > 0.8 else 0.5))
        speed = float(rng.choice([0.0, 1.0, -1.0])) * float(rng.uniform(0.8, 1.6))
        ps = float(rng.uniform(s_start, s_end))
        if rng.random() < 0.3:  # a small group
            for k in range(int(rng.integers(2, 4))):
                objects.append(person(rng, layout.side_x(side, d + rng.uniform(-0.4, 0.4)),
                                      ps + k * rng.uniform(0.5, 1.2), speed))
        else:
            objects.append(person(rng, layout.side_x(side, d), ps, speed))
    return objects


def _parked_two_wheelers(rng: np.random.Generator, layout: Layout, side: Side, s_start: float,
                         s_end: float) -> list[WorldObject]:
    """Bicycles at the sidewalk's outer edge, sometimes a motorcycle at the curb."""
    objects = []
    for _ in range(rng.binomial(2, 0.3)):
        d = side.curb + side.grass + side.sidewalk - 0.4
        objects.append(two_wheeler(rng, "bicycle", layout.side_x(side, d), float(rng.uniform(s_start, s_end)),
                                   0.0, ridden=False))
    if rng.random() < 0.3:
        d = side.curb + side.grass + 0.5
        objects.append(two_wheeler(rng, "motorcycle", layout.side_x(side, d), float(rng.uniform(s_start, s_end)),
                                   0.0, ridden=False))
    return objects


def _parked_cars(rng: np.random.Generator, layout: Layout, side: Side, s_start: float,
                 s_end: float) -> list[WorldObject]:
    """Cars and vans along a parking strip, with gaps."""
    if not side.parking:
        return []
    objects = []
    px = PARKING_STRIP_M / 2 if side.sign < 0 else layout.road_width - PARKING_STRIP_M / 2
    s = s_start + float(rng.uniform(0, 6))
    while s < s_end:
        if rng.random() < 0.75:
            kind = "car" if rng.random() < 0.85 else "van"
            obj = vehicle(rng, kind, px, s, 0.0, facing_us=bool(rng.random() < 0.15))
            objects.append(obj)
            s += obj.length + float(rng.uniform(0.8, 3.0))
        else:
            s += float(rng.uniform(4.0, 12.0))
    return objects


def _roadside(rng: np.random.Generator, layout: Layout, side: Side, s_start: float, s_end: float) -> list[WorldObject]:
    objects = _frontage(rng, layout, side, s_start, s_end)
    objects += _street_trees(rng, layout, side, s_start, s_end)
    objects += _poles(rng, layout, side, s_start, s_end)
    if side.sidewalk > 0:
        objects += _pedestrians(rng, layout, side, s_start, s_end)
        objects += _parked_two_wheelers(rng, layout, side, s_start, s_end)
    objects += _parked_cars(rng, layout, side, s_start, s_end)
    return objects


# ---- traffic --------------------------------------------------------------------------------


def _motor_vehicle(kind: str, rng: np.random.Generator, layout: Layout, x: float, lane_x: float, s: float,
                   speed: float, oncoming: bool) -> WorldObject:
    """Cars, vans, trucks and buses: oncoming ones show their front."""
    return vehicle(rng, kind, x, s, speed, facing_us=oncoming)


def _motorcycle(rng: np.random.Generator, layout: Layout, x: float, lane_x: float, s: float, speed: float,
                oncoming: bool) -> WorldObject:
    return two_wheeler(rng, "motorcycle", x, s, speed, ridden=True)


def _bicycle(rng: np.random.Generator, layout: Layout, x: float, lane_x: float, s: float, speed: float,
             oncoming: bool) -> WorldObject:
    """Cyclists keep to the lane's outer edge (the right edge of their own direction)."""
    x = lane_x + (layout.lane_width / 2 - 0.6) * (1 if not oncoming else -1)
    return two_wheeler(rng, "bicycle", x, s, speed, ridden=True)


# kind -> (share of moving traffic, spawner(rng, layout, x, lane centre, s, speed, oncoming));
# the dict order is the order of the weighted choice
TRAFFIC: dict[str, tuple[float, Callable[..., WorldObject]]] = {
    "car": (0.58, functools.partial(_motor_vehicle, "car")),
    "van": (0.09, functools.partial(_motor_vehicle, "van")),
    "truck": (0.09, functools.partial(_motor_vehicle, "truck")),
    "bus": (0.07, functools.partial(_motor_vehicle, "bus")),
    "moto": (0.085, _motorcycle),
    "bike": (0.085, _bicycle),
}


def _lane_traffic(rng: np.random.Generator, layout: Layout, lane: int, s_start: float,
                  s_end: float) -> list[WorldObject]:
    """Vehicles in one lane at its speed, spaced by the scene's traffic density; none on the ego car."""
    objects = []
    lane_x = layout.first_lane_x + (lane + 0.5) * layout.lane_width
    oncoming = lane < layout.oncoming
    s = s_start + float(rng.uniform(0, 20))
    while s < s_end:
        kind = str(rng.choice(list(TRAFFIC), p=[share for share, _ in TRAFFIC.values()]))
        speed = layout.lane_speed[lane]
        x = lane_x + float(rng.uniform(-0.3, 0.3))
        obj = TRAFFIC[kind][1](rng, layout, x, lane_x, s, speed, oncoming)
        if not (speed == layout.ego_speed and -12.0 < s < 6.0):  # keep clear of the ego car
            objects.append(obj)
        s += obj.length + float(rng.uniform(6.0, 40.0)) / layout.traffic_density
    return objects


def _tram(rng: np.random.Generator, layout: Layout, s_start: float) -> list[WorldObject]:
    """Sometimes a tram standing in the middle of the road."""
    if rng.random() >= 0.08:
        return []
    s = s_start + float(rng.uniform(0, 30))
    return [vehicle(rng, "tram", layout.road_width / 2, s, 0.0, facing_us=bool(rng.random() < 0.5))]


# ---- chunks ---------------------------------------------------------------------------------


def chunk(layout: Layout, key: tuple[int, int], index: int) -> list[WorldObject]:
    """The objects whose start lies in chunk ``index`` (a deterministic function of the key)."""
    rng = np.random.default_rng([key[0], key[1], index + (1 << 20)])
    s_start = index * CHUNK_M
    s_end = s_start + CHUNK_M
    objects: list[WorldObject] = []
    for side in (layout.left, layout.right):
        objects += _roadside(rng, layout, side, s_start, s_end)
    for lane in range(layout.lanes):
        objects += _lane_traffic(rng, layout, lane, s_start, s_end)
    objects += _tram(rng, layout, s_start)
    return objects


class World:
    """Lazily generated chunks of one seed's world (cached while a sequence drives through it)."""

    def __init__(self, layout: Layout, key: tuple[int, int]) -> None:
        self.layout, self.key = layout, key
        self._cache: dict[int, list[WorldObject]] = {}

    def __call__(self, index: int) -> list[WorldObject]:
        if index not in self._cache:
            self._cache[index] = chunk(self.layout, self.key, index)
            for old in [k for k in self._cache if k < index - 4]:
                del self._cache[old]
        return self._cache[index]
