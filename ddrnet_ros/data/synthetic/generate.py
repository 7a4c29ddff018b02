"""The public entry points: one scene per seed, or a drive through one world.

Seeds pick a world through ``np.random.default_rng`` streams keyed by (stream, seed): scenes and
sequences use different stream keys, so no sequence frame repeats a training frame.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from .camera import Camera
from .layout import Layout, make_layout
from .render import SyntheticFrame, render
from .world import World

TRAIN_SEED_RANGE = range(0, 1_000_000)
HELDOUT_SEED_START = 10_000_000

_SCENE_STREAM = 0x5CE
_SEQUENCE_STREAM = 0x5E0
_FRAME_DT = 0.1  # seconds between sequence frames (10 Hz camera)


def _camera(layout: Layout, s: float, height: int, width: int, bump: float = 0.0) -> Camera:
    """The ego camera at ``s`` along the road; ``bump`` tilts the horizon (road unevenness)."""
    return Camera(
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
    layout = make_layout(np.random.default_rng([_SCENE_STREAM, seed]))
    world = World(layout, (_SCENE_STREAM, seed))
    cam = _camera(layout, 0.0, height, width)
    return render(layout, world, cam, 0.0, np.random.default_rng([_SCENE_STREAM, seed, 1]))


def generate_sequence(seed: int, num_frames: int, height: int = 512, width: int = 1024) -> Iterator[SyntheticFrame]:
    """A drive through one world at 10 Hz: objects approach and grow between frames.

    Sequences draw from their own random stream, so no sequence frame equals a training frame.
    """
    _check_args(seed, height, width)
    layout = make_layout(np.random.default_rng([_SEQUENCE_STREAM, seed]))
    world = World(layout, (_SEQUENCE_STREAM, seed))
    bump_phase = float(np.random.default_rng([_SEQUENCE_STREAM, seed, 2]).uniform(0, 2 * np.pi))
    for i in range(num_frames):
        t = i * _FRAME_DT
        bump = 0.003 * math.sin(bump_phase + 2.1 * t)
        cam = _camera(layout, layout.ego_speed * t, height, width, bump)
        # frame noise is per frame, the lighting and world are per sequence
        yield render(layout, world, cam, t, np.random.default_rng([_SEQUENCE_STREAM, seed, 3, i]))
