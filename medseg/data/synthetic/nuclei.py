"""Synthetic fluorescence nuclei with instance masks, many of them touching, in a lab folder.

Bright, textured nuclei of varying brightness on a dark, uneven background, blurred
by the optics, with Poisson-like noise. Many nuclei are placed against an earlier one,
so their masks touch along a line where the image shows at most a faint dip: the
case where a foreground mask and connected components merge objects and an instance
target (boundary or distance) is needed. Ground truth: uint16 instance ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from medseg.data.synthetic._shapes import smooth_noise
from medseg.errors import ConfigError

__all__ = ["SyntheticNuclei", "make_nuclei_image", "write_nuclei_folder"]


@dataclass(frozen=True)
class SyntheticNuclei:
    """``image`` ``(Y, X)`` uint16 and ``instances`` ``(Y, X)`` uint16 (0 = background)."""

    image: np.ndarray
    instances: np.ndarray


def make_nuclei_image(
    shape: tuple[int, int] = (128, 128),
    *,
    n_nuclei: int = 20,
    radius: float = 8.0,
    touching: float = 0.35,
    seed: int = 0,
) -> SyntheticNuclei:
    """Generate one fluorescence-like image of nuclei and its instance mask.

    Parameters
    ----------
    shape : (int, int)
        ``(Y, X)``.
    n_nuclei : int
        Nuclei attempted (ids 1..n in placement order; a nucleus with no pixel of its own is dropped).
    radius : float
        Mean nucleus radius in pixels.
    touching : float
        Fraction of nuclei placed against an earlier one (their masks share a border).
    seed : int
        Same seed, same image.
    """
    if min(shape) < 4 * radius or n_nuclei < 1 or not 0 <= touching <= 1:
        raise ConfigError(
            f"need shape >= 4*radius, n_nuclei >= 1 and touching in [0, 1], got {shape}, {n_nuclei}, {touching}"
        )
    rng = np.random.default_rng(seed)
    h, w = shape
    centres: list[np.ndarray] = []
    radii: list[np.ndarray] = []
    for _ in range(n_nuclei):
        r = rng.uniform(0.75, 1.25, size=2) * radius
        if centres and rng.random() < touching:
            anchor = centres[rng.integers(len(centres))]
            angle = rng.uniform(0, 2 * np.pi)
            centre = anchor + 1.7 * radius * np.array([np.sin(angle), np.cos(angle)])
        else:
            centre = rng.uniform([radius, radius], [h - radius, w - radius])
        centres.append(np.clip(centre, radius, [h - radius, w - radius]))
        radii.append(r)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    # each pixel belongs to the nucleus whose (elliptic) normalised distance is smallest, if < 1
    distance = np.stack(
        [np.hypot((yy - c[0]) / r[0], (xx - c[1]) / r[1]) for c, r in zip(centres, radii, strict=True)]
    )
    nearest = distance.argmin(axis=0)
    instances = np.where(distance.min(axis=0) < 1.0, nearest + 1, 0).astype(np.uint16)
    ids = np.unique(instances[instances > 0])
    instances = np.searchsorted(np.concatenate([[0], ids]), instances).astype(np.uint16)  # ids 1..n

    brightness = rng.uniform(0.6, 1.0, size=len(ids) + 1)
    brightness[0] = 0.0
    texture = 1.0 + 0.15 * smooth_noise(shape, 1.5, rng)
    signal = brightness[instances] * texture
    seams = ndimage.morphological_gradient(instances, size=3) > 0
    signal[seams & (instances > 0)] *= 0.85  # a faint dip where nuclei touch
    signal = ndimage.gaussian_filter(signal, 1.0)  # the optics blur the edges
    background = 0.08 + 0.04 * smooth_noise(shape, 16.0, rng)
    photons = rng.poisson(np.clip(signal + background, 0, None) * 400.0)
    image = np.clip(photons * 40 + 200, 0, 65535).astype(np.uint16)
    return SyntheticNuclei(image, instances)


def write_nuclei_folder(
    root: str | Path,
    *,
    n_images: int = 4,
    shape: tuple[int, int] = (128, 128),
    n_nuclei: int = 20,
    radius: float = 8.0,
    seed: int = 0,
) -> Path:
    """Write ``root/images/nuclei_NN.tif`` and ``root/labels/nuclei_NN.tif`` (a lab folder).

    Returns ``root``. Image ``k`` uses seed ``seed + k``.
    """
    import tifffile

    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    for k in range(n_images):
        data = make_nuclei_image(shape, n_nuclei=n_nuclei, radius=radius, seed=seed + k)
        tifffile.imwrite(root / "images" / f"nuclei_{k:02d}.tif", data.image)
        tifffile.imwrite(root / "labels" / f"nuclei_{k:02d}.tif", data.instances)
    return root
