"""Deterministic camera perturbations for robustness scores: the same frames, made harder.

Each perturbation maps an (RGB image, labels) pair to another of the same kind: exposure, sensor
noise, compression, defocus, and other resolutions (the labels follow the image's size, resized
nearest). ``ddrnet-ros evaluate --dataset ... --perturb NAME`` scores a model under one of them,
so a model card can say what real-camera trouble costs.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

Pair = tuple[np.ndarray, np.ndarray]


def _gamma(exponent: float) -> Callable[[np.ndarray, np.ndarray, int], Pair]:
    lut = np.clip(np.rint(255.0 * (np.arange(256) / 255.0) ** exponent), 0, 255).astype(np.uint8)
    return lambda image, labels, _: (lut[image], labels)


def _gain(factor: float) -> Callable[[np.ndarray, np.ndarray, int], Pair]:
    return lambda image, labels, _: (np.clip(image.astype(np.float32) * factor, 0, 255).astype(np.uint8), labels)


def _noise(sigma: float) -> Callable[[np.ndarray, np.ndarray, int], Pair]:
    def apply(image: np.ndarray, labels: np.ndarray, index: int) -> Pair:
        noise = np.random.default_rng(index).standard_normal(image.shape, dtype=np.float32) * sigma
        return np.clip(np.rint(image.astype(np.float32) + noise), 0, 255).astype(np.uint8), labels
    return apply


def _jpeg(quality: int) -> Callable[[np.ndarray, np.ndarray, int], Pair]:
    def apply(image: np.ndarray, labels: np.ndarray, _: int) -> Pair:
        ok, data = cv2.imencode(".jpg", np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
        decoded = cv2.imdecode(data, cv2.IMREAD_COLOR) if ok else None
        return (image if decoded is None else decoded[..., ::-1].copy()), labels
    return apply


def _blur(sigma: float) -> Callable[[np.ndarray, np.ndarray, int], Pair]:
    return lambda image, labels, _: (cv2.GaussianBlur(image, (0, 0), sigmaX=sigma), labels)


def _scale(factor: float) -> Callable[[np.ndarray, np.ndarray, int], Pair]:
    def apply(image: np.ndarray, labels: np.ndarray, _: int) -> Pair:
        height, width = labels.shape
        size = (max(8, round(width * factor)), max(8, round(height * factor)))
        interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
        return (cv2.resize(image, size, interpolation=interpolation),
                cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST))
    return apply


#: name -> (what it does, the function (image, labels, frame index) -> (image, labels))
PERTURBATIONS: dict[str, tuple[str, Callable[[np.ndarray, np.ndarray, int], Pair]]] = {
    "dark": ("under-exposed: gain 0.5", _gain(0.5)),
    "bright": ("over-exposed: gamma 0.6 (highlights clip)", _gamma(0.6)),
    "noise": ("sensor noise: Gaussian sigma 10 grey levels", _noise(10.0)),
    "jpeg": ("JPEG compression at quality 25", _jpeg(25)),
    "blur": ("defocus: Gaussian blur sigma 1.5 px", _blur(1.5)),
    "half-res": ("a camera with half the resolution (0.5x per side)", _scale(0.5)),
    "double-res": ("a camera with twice the resolution (2x per side)", _scale(2.0)),
}


def perturb(name: str, image: np.ndarray, labels: np.ndarray, index: int) -> Pair:
    """Apply the named perturbation to frame ``index`` (noise is seeded by the index: repeatable)."""
    return PERTURBATIONS[name][1](image, labels, index)
