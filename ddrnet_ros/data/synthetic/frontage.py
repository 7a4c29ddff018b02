"""What lines the road behind the sidewalk: building facades, hedges and tree lines, walls, fences.

Each runs along the road from ``s0`` to ``s1`` in the vertical plane at lateral ``x``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .camera import NEAR_M, Camera
from .canvas import Canvas
from .labels import BUILDING, FENCE, VEGETATION, WALL
from .palette import FACADE_COLORS, RGB, jitter, pick, shade
from .shapes import BARRIER_LAYER, FRONTAGE_LAYER, WorldObject, quad_s_plane, quad_x_plane

_BUILDING_DEPTH_M = 12.0
_WALL_COLORS = ((160, 158, 150), (140, 90, 75), (120, 120, 115), (190, 180, 160))
_FENCE_COLORS = ((60, 65, 60), (110, 110, 110), (120, 90, 60), (40, 70, 50), (170, 170, 170))


# ---- buildings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Building:
    x: float
    s0: float
    s1: float
    outward: int  # +1 or -1: the side away from the road (where the end wall's depth goes)
    height: float
    color: RGB
    floor_h: float
    win_w: float
    win_h: float
    ground: float  # ground-floor height (shop front below, window rows above)
    glass: tuple[RGB, RGB, RGB]
    frame_dark: RGB
    shop: bool
    n_floors: int
    n_cols: int

    def draw(self, canvas: Canvas, cam: Camera, s_now: float) -> None:
        x, s0, s1 = self.x, self.s0, self.s1
        a = max(s0, cam.s + NEAR_M)
        if s1 <= a:
            return
        if s0 > cam.s + NEAR_M:  # end wall facing the camera
            far = x + self.outward * _BUILDING_DEPTH_M
            canvas.fill(quad_s_plane(cam, s0, min(x, far), max(x, far), 0.0, self.height),
                        shade(self.color, 0.8), BUILDING)
        canvas.fill(quad_x_plane(cam, x, a, s1, 0.0, self.height), self.color, BUILDING)
        canvas.fill(quad_x_plane(cam, x, a, s1, self.height - 0.5, self.height), self.frame_dark, None)
        if self.n_floors and cam.pixels_per_metre(s1) * self.win_w > 0.8:
            self._windows(canvas, cam)
        if self.shop:
            canvas.fill(quad_x_plane(cam, x, max(s0 + 0.5, a), s1 - 0.5, 0.3, self.ground - 0.8),
                        shade(self.glass[0], 0.8), None)

    def _windows(self, canvas: Canvas, cam: Camera) -> None:
        """The window grid, vectorised: (floors x columns) quads in the facade plane, three glass tints."""
        s0, s1 = self.s0, self.s1
        fy = self.ground + np.arange(self.n_floors) * self.floor_h + (self.floor_h - self.win_h) / 2
        fs = s0 + 0.3 + (np.arange(self.n_cols) + 0.5) * (s1 - s0 - 0.6) / self.n_cols - self.win_w / 2
        fs = fs[(fs > cam.s + NEAR_M)]
        if not len(fs):
            return
        yy, ss = np.meshgrid(fy, fs, indexing="ij")
        yy, ss = yy.ravel(), ss.ravel()
        pts = cam.project(np.full((len(yy), 4), self.x), np.stack([yy, yy, yy + self.win_h, yy + self.win_h], 1),
                          np.stack([ss, ss + self.win_w, ss + self.win_w, ss], 1)).reshape(-1, 4, 2)
        idx = (np.arange(len(pts)) * 7 + 3) % 3
        for k in range(3):
            canvas.fill_many(pts[idx == k], self.glass[k], None)


def building(rng: np.random.Generator, x: float, s0: float, s1: float, outward: int) -> WorldObject:
    """A facade from ``s0`` to ``s1`` with a random height, colour, window grid and maybe a shop front."""
    height = float(rng.choice([rng.uniform(6, 12), rng.uniform(12, 24)]))
    color = pick(rng, FACADE_COLORS, 15)
    floor_h = float(rng.uniform(2.9, 3.5))
    col_w = float(rng.uniform(2.0, 3.4))
    win_w, win_h = col_w * rng.uniform(0.35, 0.6), floor_h * rng.uniform(0.4, 0.6)
    ground = float(rng.uniform(3.2, 4.5))
    glass = (jitter(rng, (55, 65, 80), 18), jitter(rng, (55, 65, 80), 18), jitter(rng, (55, 65, 80), 18))
    frame_dark = shade(color, rng.uniform(0.6, 0.8))
    shop = bool(rng.random() < 0.5)
    b = Building(x=x, s0=s0, s1=s1, outward=outward, height=height, color=color, floor_h=floor_h, win_w=win_w,
                 win_h=win_h, ground=ground, glass=glass, frame_dark=frame_dark, shop=shop,
                 n_floors=max(int((height - ground - 0.8) / floor_h), 0), n_cols=max(int((s1 - s0 - 0.6) / col_w), 1))
    return WorldObject(layer=FRONTAGE_LAYER, x=float(x), s=float(s0), speed=0.0, draw=b.draw, length=float(s1 - s0))


# ---- vegetation rows ------------------------------------------------------------------------


@dataclass(frozen=True)
class Hedge:
    x: float
    ss: np.ndarray  # samples along the road
    hh: np.ndarray  # top height at each sample
    color: RGB

    def draw(self, canvas: Canvas, cam: Camera, s_now: float) -> None:
        keep = self.ss > cam.s + NEAR_M
        if keep.sum() < 2:
            return
        s_vis, h_vis = self.ss[keep], self.hh[keep]
        top = cam.project(np.full(len(s_vis), self.x), h_vis, s_vis)
        bottom = cam.project(np.full(len(s_vis), self.x), np.zeros(len(s_vis)), s_vis)
        canvas.fill(np.concatenate([top, bottom[::-1]]), self.color, VEGETATION)


def hedge(rng: np.random.Generator, x: float, s0: float, s1: float, color: RGB, tall: bool) -> WorldObject:
    """A row of vegetation along the road (hedge or tree line) with a ragged top."""
    n = max(int((s1 - s0) / 1.2), 2)
    ss = np.linspace(s0, s1, n)
    base_h = rng.uniform(4.0, 11.0) if tall else rng.uniform(0.8, 2.0)
    hh = base_h + np.cumsum(rng.normal(0, 0.5 if tall else 0.1, n))
    hh = np.clip(hh + (np.sin(ss * rng.uniform(0.3, 0.8)) * (1.2 if tall else 0.1)), 0.5, 16.0)
    h = Hedge(x=x, ss=ss, hh=hh, color=jitter(rng, color, 10))
    return WorldObject(layer=FRONTAGE_LAYER, x=float(x), s=float(s0), speed=0.0, draw=h.draw, length=float(s1 - s0))


# ---- barriers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wall:
    x: float
    s0: float
    s1: float
    height: float
    color: RGB
    joints: float  # masonry course height (image-only lines)

    def draw(self, canvas: Canvas, cam: Camera, s_now: float) -> None:
        x, s0, s1, height, color = self.x, self.s0, self.s1, self.height, self.color
        a = max(s0, cam.s + NEAR_M)
        if s1 <= a:
            return
        if s0 > cam.s + NEAR_M:
            canvas.fill(quad_s_plane(cam, s0, x - 0.15, x + 0.15, 0.0, height), shade(color, 0.85), WALL)
        canvas.fill(quad_x_plane(cam, x, a, s1, 0.0, height), color, WALL)
        canvas.fill(quad_x_plane(cam, x, a, s1, height - 0.1, height), shade(color, 1.15), None)
        ys = np.arange(self.joints, height - 0.1, self.joints)
        if len(ys) and cam.pixels_per_metre(a) * self.joints > 3:
            lines = cam.project(np.full((len(ys), 2), x), np.stack([ys, ys], 1), np.tile([a, s1], (len(ys), 1)))
            canvas.lines(lines.reshape(-1, 2, 2), shade(color, 0.75))


def wall(rng: np.random.Generator, x: float, s0: float, s1: float) -> WorldObject:
    height = float(rng.uniform(0.8, 2.6))
    color = pick(rng, _WALL_COLORS, 15)
    w = Wall(x=x, s0=s0, s1=s1, height=height, color=color, joints=float(rng.uniform(0.25, 0.6)))
    return WorldObject(layer=BARRIER_LAYER, x=float(x), s=float(s0), speed=0.0, draw=w.draw, length=float(s1 - s0))


@dataclass(frozen=True)
class Fence:
    x: float
    s0: float
    s1: float
    height: float
    color: RGB
    mesh: bool  # see-through mesh (labelled fence, image blended) or pickets
    post_gap: float
    picket_gap: float

    def draw(self, canvas: Canvas, cam: Camera, s_now: float) -> None:
        x, s1, height, color = self.x, self.s1, self.height, self.color
        a = max(self.s0, cam.s + NEAR_M)
        if s1 <= a:
            return
        if self.mesh:
            canvas.blend(quad_x_plane(cam, x, a, s1, 0.05, height), color, 0.45, FENCE)
        else:
            self._pickets(canvas, cam, a)
        for ry in (height - 0.08, height * 0.4):
            canvas.fill(quad_x_plane(cam, x, a, s1, ry, ry + 0.07), shade(color, 1.1), FENCE)
        self._posts(canvas, cam, a)

    def _pickets(self, canvas: Canvas, cam: Camera, a: float) -> None:
        picks = np.arange(self.s0, self.s1, self.picket_gap)
        picks = picks[picks > a]
        if len(picks):
            pts = cam.project(np.full((len(picks), 4), self.x),
                              np.tile([0.05, 0.05, self.height, self.height], (len(picks), 1)),
                              np.stack([picks, picks + 0.05, picks + 0.05, picks], 1)).reshape(-1, 4, 2)
            canvas.fill_many(pts, self.color, FENCE)

    def _posts(self, canvas: Canvas, cam: Camera, a: float) -> None:
        posts = np.arange(self.s0, self.s1 + 0.01, self.post_gap)
        posts = posts[posts > a]
        if len(posts):
            top = self.height + 0.05
            pts = cam.project(np.full((len(posts), 4), self.x), np.tile([0.0, 0.0, top, top], (len(posts), 1)),
                              np.stack([posts, posts + 0.1, posts + 0.1, posts], 1)).reshape(-1, 4, 2)
            canvas.fill_many(pts, shade(self.color, 0.8), FENCE)


def fence(rng: np.random.Generator, x: float, s0: float, s1: float) -> WorldObject:
    height = float(rng.uniform(0.9, 2.0))
    color = pick(rng, _FENCE_COLORS, 12)
    f = Fence(x=x, s0=s0, s1=s1, height=height, color=color, mesh=bool(rng.random() < 0.5),
              post_gap=float(rng.uniform(2.0, 3.0)), picket_gap=float(rng.uniform(0.12, 0.3)))
    return WorldObject(layer=BARRIER_LAYER, x=float(x), s=float(s0), speed=0.0, draw=f.draw, length=float(s1 - s0))
