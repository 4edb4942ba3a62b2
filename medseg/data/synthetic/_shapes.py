"""Shape helpers for the synthetic generators (private)."""

from __future__ import annotations

import numpy as np
from skimage.draw import polygon as draw_polygon

__all__ = ["blob_polygon", "fill_polygon", "smooth_noise"]


def blob_polygon(
    center: tuple[float, float],
    radii: tuple[float, float],
    angle: float,
    rng: np.random.Generator,
    *,
    n_vertices: int = 20,
    jitter: float = 0.12,
) -> np.ndarray:
    """A rounded, slightly irregular closed polygon as ``(N, 2)`` ``(x, y)`` vertices."""
    t = np.linspace(0, 2 * np.pi, n_vertices, endpoint=False)
    # low-frequency radial wobble so shapes look organic, not like perfect ellipses
    wobble = 1 + jitter * (
        rng.normal(size=3) @ np.stack([np.cos(k * t + rng.uniform(0, 6.3)) for k in (2, 3, 4)])
    )
    ry, rx = radii
    x, y = rx * wobble * np.cos(t), ry * wobble * np.sin(t)
    c, s = np.cos(angle), np.sin(angle)
    cy, cx = center
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], axis=1)


def fill_polygon(shape: tuple[int, int], xy: np.ndarray) -> np.ndarray:
    """Boolean mask of a polygon given as ``(x, y)`` vertices (skimage.draw.polygon, clipped)."""
    mask = np.zeros(shape, dtype=bool)
    rr, cc = draw_polygon(xy[:, 1], xy[:, 0], shape=shape)
    mask[rr, cc] = True
    return mask


def smooth_noise(shape: tuple[int, ...], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-std Gaussian-smoothed noise."""
    from scipy import ndimage

    noise = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return noise / (noise.std() + 1e-8)
