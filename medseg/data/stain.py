"""Stain normalisation of H&E images: Reinhard (Lab statistics) and Macenko (stain vectors).

Fit a normaliser on a reference tile, then apply it to other tiles::

    norm = MacenkoNormalizer().fit(reference_rgb)
    normalised = norm.transform(tile_rgb)

Images are ``(Y, X, 3)`` uint8 RGB.

References
----------
Reinhard et al., "Color transfer between images", IEEE CG&A 21(5), 2001.
Macenko et al., "A method for normalizing histology slides for quantitative
analysis", ISBI 2009.
"""

from __future__ import annotations

import numpy as np
from skimage.color import lab2rgb, rgb2lab

from medseg.errors import ConfigError, DataValueError, ShapeError

__all__ = ["ReinhardNormalizer", "MacenkoNormalizer", "build_stain_normalizer"]


def _check_rgb(image: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ShapeError(f"{name} must be an RGB image of shape (Y, X, 3), got {image.shape}")
    if image.dtype != np.uint8:
        raise DataValueError(f"{name} must be uint8 RGB, got dtype {image.dtype}")
    return image


class ReinhardNormalizer:
    """Match per-channel mean and standard deviation in CIE Lab to a reference."""

    def __init__(self) -> None:
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    @staticmethod
    def _stats(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lab = rgb2lab(image).reshape(-1, 3)
        return lab.mean(axis=0), lab.std(axis=0) + 1e-6

    def fit(self, reference: np.ndarray) -> ReinhardNormalizer:
        self.mean, self.std = self._stats(_check_rgb(reference, "reference"))
        return self

    def transform(self, image: np.ndarray) -> np.ndarray:
        if self.mean is None:
            raise ConfigError("ReinhardNormalizer.transform called before fit(reference)")
        image = _check_rgb(image, "image")
        mean, std = self._stats(image)
        lab = (rgb2lab(image) - mean) / std * self.std + self.mean
        return np.clip(np.rint(lab2rgb(lab) * 255), 0, 255).astype(np.uint8)


class MacenkoNormalizer:
    """Macenko stain separation: optical density, SVD plane, robust extreme angles.

    Parameters
    ----------
    alpha : float
        Percentile (and ``100 - alpha``) of the angles defining the stain vectors.
    beta : float
        Optical density below which a pixel is background and ignored.
    io : float
        Transmitted light intensity (background brightness).
    """

    def __init__(self, *, alpha: float = 1.0, beta: float = 0.15, io: float = 240.0) -> None:
        self.alpha, self.beta, self.io = alpha, beta, io
        self.stain_matrix: np.ndarray | None = None
        self.max_concentrations: np.ndarray | None = None

    def _od(self, image: np.ndarray) -> np.ndarray:
        return -np.log((image.reshape(-1, 3).astype(np.float64) + 1.0) / self.io)

    def _stains(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        od = self._od(image)
        tissue = od[(od > self.beta).all(axis=1)]
        if len(tissue) < 10:
            raise DataValueError(
                f"only {len(tissue)} stained pixels (optical density > {self.beta}): the image is blank or not H&E"
            )
        _, eigvecs = np.linalg.eigh(np.cov(tissue.T))
        plane = eigvecs[:, 1:3]
        proj = tissue @ plane
        angles = np.arctan2(proj[:, 1], proj[:, 0])
        lo, hi = np.percentile(angles, [self.alpha, 100 - self.alpha])
        v1 = plane @ np.array([np.cos(lo), np.sin(lo)])
        v2 = plane @ np.array([np.cos(hi), np.sin(hi)])
        # haematoxylin first: the vector with the larger red optical density
        stains = np.array([v1, v2] if v1[0] > v2[0] else [v2, v1]).T
        stains = stains * np.sign(stains.sum(axis=0, keepdims=True) + 1e-12)
        concentrations = np.linalg.lstsq(stains, od.T, rcond=None)[0]
        max_c = np.percentile(concentrations, 99, axis=1)
        return stains / np.linalg.norm(stains, axis=0, keepdims=True), np.maximum(max_c, 1e-6)

    def fit(self, reference: np.ndarray) -> MacenkoNormalizer:
        self.stain_matrix, self.max_concentrations = self._stains(_check_rgb(reference, "reference"))
        return self

    def transform(self, image: np.ndarray) -> np.ndarray:
        if self.stain_matrix is None or self.max_concentrations is None:
            raise ConfigError("MacenkoNormalizer.transform called before fit(reference)")
        image = _check_rgb(image, "image")
        stains, max_c = self._stains(image)
        concentrations = np.linalg.lstsq(stains, self._od(image).T, rcond=None)[0]
        concentrations *= (self.max_concentrations / max_c)[:, None]
        out = self.io * np.exp(-(self.stain_matrix @ concentrations))
        return np.clip(np.rint(out.T.reshape(image.shape)), 0, 255).astype(np.uint8)


def build_stain_normalizer(method: str, reference: np.ndarray) -> ReinhardNormalizer | MacenkoNormalizer:
    """A fitted normaliser: ``method`` is ``"reinhard"`` or ``"macenko"``."""
    options = {"reinhard": ReinhardNormalizer, "macenko": MacenkoNormalizer}
    if method not in options:
        raise ConfigError(f"stain normalisation method must be one of {sorted(options)}, got {method!r}")
    return options[method]().fit(reference)
