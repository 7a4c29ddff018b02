"""What lies beyond the modelled world: the sky with clouds, and a distant skyline at the horizon."""

from __future__ import annotations

import cv2
import numpy as np

from .camera import Camera
from .canvas import Canvas
from .labels import BUILDING, VEGETATION
from .layout import Layout
from .palette import jitter, rgb, shade


def sky(canvas: Canvas, layout: Layout, cam: Camera, rng: np.random.Generator) -> None:
    """Vertical gradient with soft clouds, only down to just below the horizon (ground covers the rest)."""
    h, w = canvas.height, canvas.width
    rows = min(h, max(int((cam.horizon + 0.03) * h), 1))
    v = np.linspace(0.0, (rows - 1) / max(h - 1, 1), rows, dtype=np.float32)[:, None]
    t = np.clip(v / max(cam.horizon, 1e-3), 0, 1) ** 1.5
    top = np.asarray(layout.sky_top, np.float32)
    grad = top * (1 - t) + np.asarray(layout.sky_horizon, np.float32) * t  # (rows, 3)
    if layout.cloudiness > 0.05:
        mask = _cloud_mask(h, w, rows, layout.cloudiness, cam.horizon, rng)
        cloud = np.asarray(rgb(np.array(layout.sky_horizon) * 0.3 + 185), np.float32)
        canvas.image[:rows] = (grad[:, None, :] + mask * (cloud - grad)[:, None, :]).astype(np.uint8)
    else:
        canvas.image[:rows] = grad.astype(np.uint8)[:, None, :]


def _cloud_mask(h: int, w: int, rows: int, cloudiness: float, horizon: float, rng: np.random.Generator) -> np.ndarray:
    """Cloud cover in [0, 0.85] for the top ``rows`` rows, (rows, w, 1): blurred ellipses drawn at 1/8 size."""
    sh, sw = max(h // 8, 4), max(w // 8, 4)
    mask: np.ndarray = np.zeros((sh, sw), np.float32)
    for _ in range(int(6 + 30 * cloudiness)):
        cx, cy = rng.uniform(-0.1, 1.1) * sw, rng.uniform(-0.1, horizon) * sh
        ax = rng.uniform(0.03, 0.15) * sw
        axes = (int(ax) + 1, int(ax * rng.uniform(0.2, 0.45)) + 1)
        density = float(rng.uniform(0.3, 1.0))
        cv2.ellipse(mask, (int(cx), int(cy)), axes, 0, 0, 360, density, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(sw / 80, 0.8))
    return cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)[:rows, :, None] * np.float32(0.85)


def skyline(canvas: Canvas, layout: Layout, cam: Camera, rng: np.random.Generator) -> None:
    """Distant buildings and tree lines just above the horizon."""
    base = (cam.horizon + 0.012) * canvas.height
    u = -0.02
    while u < 1.02:
        width = rng.uniform(0.02, 0.09)
        height = rng.uniform(0.005, 0.07) * canvas.height
        x0, x1 = u * canvas.width, (u + width) * canvas.width
        if rng.random() < 0.55:
            col = jitter(rng, np.array(layout.sky_horizon) * 0.55 + 40, 12)
            canvas.fill(np.array([[x0, base], [x1, base], [x1, base - height], [x0, base - height]]), col, BUILDING)
        else:
            n = 8
            xs = np.linspace(x0, x1, n)
            ys = base - height * rng.uniform(0.4, 1.0, n)
            pts = np.concatenate([np.stack([xs, ys], 1), [[x1, base], [x0, base]]])
            canvas.fill(pts, jitter(rng, shade(layout.vegetation_color, 0.85), 8), VEGETATION)
        u += width * rng.uniform(0.7, 1.1)
