"""Image-only finish: class-dependent texture, lighting, vignetting, blur and sensor noise.

Applied after all geometry, to the image alone, so the labels stay exact while flat colours
become something a network cannot segment by colour lookup.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from .canvas import Canvas
from .labels import (
    BICYCLE,
    BUILDING,
    BUS,
    CAR,
    FENCE,
    IGNORE_LABEL,
    LIGHT,
    MOTORCYCLE,
    PERSON,
    POLE,
    RIDER,
    ROAD,
    SIDEWALK,
    SIGN,
    SKY,
    TERRAIN,
    TRAIN,
    TRUCK,
    VEGETATION,
    WALL,
)
from .layout import Lighting

# Texture amplitudes per class, in grey levels: fine grain, mid-size blotches, coarse shading.
# Vegetation and terrain get strong blotchy, green-tinted texture, sky and vehicles little.
TEXTURE_AMPLITUDES = {
    ROAD: (7, 5, 8), SIDEWALK: (6, 4, 6), BUILDING: (3, 4, 10), WALL: (5, 5, 8), FENCE: (4, 2, 4),
    POLE: (2, 1, 4), LIGHT: (2, 1, 2), SIGN: (2, 1, 2), VEGETATION: (9, 22, 12), TERRAIN: (12, 10, 12),
    SKY: (1, 0, 3), PERSON: (3, 3, 4), RIDER: (3, 3, 4), CAR: (2, 2, 6), TRUCK: (2, 2, 6), BUS: (2, 2, 6),
    TRAIN: (2, 2, 6), MOTORCYCLE: (2, 2, 4), BICYCLE: (2, 2, 4), IGNORE_LABEL: (1, 1, 4),
}
# per-class RGB tint of the texture (grey unless listed)
TEXTURE_TINTS = {VEGETATION: (0.7, 1.0, 0.45), TERRAIN: (0.95, 1.0, 0.6)}


def _texture_lut() -> np.ndarray:
    lut = np.zeros((3, 1, 256), np.float32)
    for label, amplitudes in TEXTURE_AMPLITUDES.items():
        lut[:, 0, label] = amplitudes
    return lut


def _tint_lut() -> np.ndarray:
    lut = np.ones((1, 256, 3), np.float32)
    for label, tint in TEXTURE_TINTS.items():
        lut[0, label] = tint
    return lut


_TEXTURE_LUT = _texture_lut()
_TINT_LUT = _tint_lut()


def finish(canvas: Canvas, lighting: Lighting, rng: np.random.Generator) -> np.ndarray:
    """Texture by class family, lighting, blur and sensor noise, on the image only."""
    image = _textured(canvas, lighting, rng)
    out = _lit(image, canvas, lighting)
    sigma = lighting.blur * canvas.width / 1024.0
    if sigma > 0.3:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    return _noisy(out, lighting, rng)


def _textured(canvas: Canvas, lighting: Lighting, rng: np.random.Generator) -> np.ndarray:
    """The image in float32 plus three scales of noise, each scaled per class by the label map."""
    h, w = canvas.height, canvas.width
    labels = canvas.labels
    luts = _TEXTURE_LUT * np.float32(lighting.texture)
    fine = rng.standard_normal((h, w), dtype=np.float32)
    mid_noise = rng.standard_normal((max(h // 4, 2), max(w // 4, 2)), dtype=np.float32)
    mid = cv2.resize(mid_noise, (w, h), interpolation=cv2.INTER_LINEAR)
    coarse_noise = rng.standard_normal((max(h // 24, 2), max(w // 24, 2)), dtype=np.float32)
    coarse = cv2.resize(coarse_noise, (w, h), interpolation=cv2.INTER_CUBIC)
    tex = cv2.LUT(labels, luts[0]) * fine
    tex += cv2.LUT(labels, luts[1]) * mid
    tex += cv2.LUT(labels, luts[2]) * coarse
    tint = cv2.LUT(cv2.merge([labels, labels, labels]), _TINT_LUT)
    image = canvas.image.astype(np.float32)
    image += tex[..., None] * tint
    return image


def _lit(image: np.ndarray, canvas: Canvas, light: Lighting) -> np.ndarray:
    """Brightness, colour cast, contrast around the mean and vignetting in one multiply-add; then gamma."""
    h, w = canvas.height, canvas.width
    gain = np.float32(light.gain) * np.asarray(light.cast, np.float32) * np.float32(light.contrast)
    mean = float(canvas.image.mean()) * light.gain
    offset = np.float32(mean * (1.0 - light.contrast))
    if light.vignette > 0:
        image *= (1.0 - np.float32(light.vignette * 0.5) * _radius_squared(h, w))[..., None] * gain
    else:
        image *= gain
    image += offset
    np.clip(image, 0, 255, out=image)
    return cv2.LUT(image.astype(np.uint8), _gamma_lut(light.gamma))


def _noisy(out: np.ndarray, light: Lighting, rng: np.random.Generator) -> np.ndarray:
    """Uniform integer sensor noise, the same on all three channels."""
    h, w = out.shape[:2]
    amplitude = max(int(round(light.noise * 1.7)), 1)
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
