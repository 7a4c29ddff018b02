"""The pinhole camera: road-frame points to pixels, in normalised units.

The focal length is a fraction of the image width (and the vertical one is defined for a 2:1
image), so a seed gives the same scene at any resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NOMINAL_ASPECT = 2.0  # width / height the vertical focal length is defined for
NEAR_M = 1.5  # nothing closer than this to the camera plane is drawn
FAR_M = 320.0


@dataclass
class Camera:
    s: float  # position along the road (m)
    x: float  # lateral position in the road frame (m)
    height: float
    horizon: float  # row of the horizon, fraction of the image height
    focal: float  # focal length, fraction of the image width
    curvature: float
    width: int
    height_px: int

    def project(self, x, y, s) -> np.ndarray:
        """Road-frame points (lateral x, height y, distance s) -> (N, 2) float pixel coordinates."""
        z = np.asarray(s, np.float64) - self.s
        np.maximum(z, 0.05, out=z)
        u = (np.asarray(x, np.float64) - self.x + self.curvature * z * z) / z
        u *= self.focal * self.width
        u += 0.5 * self.width
        v = (self.height - np.asarray(y, np.float64)) / z
        v *= self.focal * NOMINAL_ASPECT * self.height_px
        v += self.horizon * self.height_px
        out = np.empty(np.broadcast_shapes(u.shape, v.shape) + (2,))
        out[..., 0] = u
        out[..., 1] = v
        return out.reshape(-1, 2)

    def project_few(self, xs, ys, ss) -> np.ndarray:
        """:meth:`project` for a handful of points, in plain floats (same arithmetic, less overhead)."""
        sx, sc, sh = self.x, self.curvature, self.height
        ku, ou = self.focal * self.width, 0.5 * self.width
        kv, ov = self.focal * NOMINAL_ASPECT * self.height_px, self.horizon * self.height_px
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
