"""Synthetic serial-section EM stacks shaped like ISBI 2012.

Cells are a 3D Voronoi tessellation of random seeds, stretched along Z so that a
cell continues over several sections (ssTEM sections are ~10x thicker than the
pixel size). Membranes are the 2-4 px wide bands where two cells meet; the image
gets dark membranes, textured cytoplasm with dark organelles, blur and noise.

Labels follow ISBI 2012's polarity: **255 = inside a cell, 0 = membrane**
(:data:`medseg.data.em.ISBI_ON_DISK`); :func:`medseg.data.em.isbi_labels_to_classes`
turns them into medseg's class ids (0 cell, 1 membrane).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from medseg.data.em import ISBI2012_MIRROR_FILE, ISBI2012_MIRROR_KEYS, ISBI2012_SPACING_NM, ISBI_ON_DISK
from medseg.errors import ConfigError
from medseg.io import Volume, write

__all__ = ["SyntheticEM", "make_em_stack", "write_isbi2012", "write_isbi2012_mirror"]


@dataclass(frozen=True)
class SyntheticEM:
    """A synthetic EM stack and its ground truth.

    Attributes
    ----------
    image : np.ndarray
        ``(Z, Y, X)`` uint8 raw.
    labels : np.ndarray
        ``(Z, Y, X)`` uint8, ISBI polarity (255 cell, 0 membrane).
    cell_ids : np.ndarray
        ``(Z, Y, X)`` uint32 id of the cell each voxel belongs to (membrane included).
    """

    image: np.ndarray
    labels: np.ndarray
    cell_ids: np.ndarray


def make_em_stack(
    shape: tuple[int, int, int] = (30, 512, 512),
    *,
    cell_diameter: float = 40.0,
    membrane_width: tuple[float, float] = (2.0, 4.0),
    section_thickness: float = 4.0,
    noise: float = 0.06,
    seed: int = 0,
) -> SyntheticEM:
    """Generate an ISBI-2012-like stack.

    Parameters
    ----------
    shape : tuple of int
        ``(Z, Y, X)`` size of the stack.
    cell_diameter : float
        Mean cell diameter in pixels (in-plane).
    membrane_width : (float, float)
        Range of membrane widths in pixels; each cell boundary gets its own width.
    section_thickness : float
        Section thickness in pixel widths; a cell of diameter ``d`` continues over
        about ``d / section_thickness`` sections.
    noise : float
        Standard deviation of additive Gaussian noise on the [0, 1] image.
    seed : int
        Seed of the generator; the same seed gives the same stack.

    Returns
    -------
    SyntheticEM
    """
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(f"shape must be (Z, Y, X) with positive sizes, got {shape}")
    lo, hi = membrane_width
    if not 2 <= lo <= hi:
        raise ConfigError(
            f"membrane_width must be (min, max) in pixels with 2 <= min <= max, got {membrane_width}"
        )
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    # Seeds live in physical space (one section = section_thickness pixels); the margin avoids edge cells.
    margin = cell_diameter
    extent = np.array([nz * section_thickness + 2 * margin, ny + 2 * margin, nx + 2 * margin])
    # A Voronoi cell's sections are smaller than the cell: this spacing gives mean sections of ~cell_diameter.
    seed_spacing = 1.3 * cell_diameter
    n_seeds = max(4, int(np.prod(extent) / (0.52 * seed_spacing**3)))
    seeds = rng.uniform(0, 1, size=(n_seeds, 3)) * extent - margin
    tree = cKDTree(seeds)

    zz, yy, xx = np.meshgrid(np.arange(nz) * section_thickness, np.arange(ny), np.arange(nx), indexing="ij")
    points = np.stack([zz.ravel(), yy.ravel(), xx.ravel()], axis=1)
    _, idx = tree.query(points, k=1, workers=-1)
    cell_ids = idx.reshape(shape).astype(np.uint32) + 1
    membrane = _membranes(cell_ids, membrane_width, rng)

    image = _render(cell_ids, membrane, rng=rng, noise=noise)
    labels = np.where(membrane, ISBI_ON_DISK["membrane"], ISBI_ON_DISK["cell"]).astype(np.uint8)
    return SyntheticEM(image=image, labels=labels, cell_ids=cell_ids)


def _membranes(cell_ids: np.ndarray, width: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Per section, the band where cells meet: 2 px at the interface, widened per cell up to ``width``."""
    interface = np.zeros(cell_ids.shape, dtype=bool)
    for axis in (1, 2):
        differs = np.diff(cell_ids, axis=axis) != 0
        lead = [slice(None)] * 3
        lead[axis] = slice(None, -1)
        trail = [slice(None)] * 3
        trail[axis] = slice(1, None)
        interface[tuple(lead)] |= differs
        interface[tuple(trail)] |= differs
    distance = np.stack([ndimage.distance_transform_edt(~section) for section in interface])
    extra = rng.uniform(width[0] - 2, width[1] - 2, size=int(cell_ids.max()) + 1) / 2
    return distance < extra[cell_ids] + 0.5


def _render(
    cell_ids: np.ndarray, membrane: np.ndarray, *, rng: np.random.Generator, noise: float
) -> np.ndarray:
    shape = cell_ids.shape
    brightness = rng.uniform(0.55, 0.85, size=int(cell_ids.max()) + 1)
    image = brightness[cell_ids]
    # Cytoplasm texture: smoothed noise, then dark organelles (thresholded blobs).
    texture = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=(0.5, 2.0, 2.0))
    image = image + 0.08 * texture / (texture.std() + 1e-8)
    blobs = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=(1.0, 4.0, 4.0))
    organelles = blobs > np.quantile(blobs, 0.96)
    image = np.where(organelles & ~membrane, image - 0.25, image)
    image = np.where(membrane, rng.uniform(0.12, 0.22), image)
    image = ndimage.gaussian_filter(image, sigma=(0.0, 1.0, 1.0))
    image = image + rng.normal(0.0, noise, size=shape)
    return (np.clip(image, 0.0, 1.0) * 255).round().astype(np.uint8)


def write_isbi2012(
    root: str | Path,
    *,
    shape: tuple[int, int, int] = (30, 512, 512),
    seed: int = 0,
    write_test_labels: bool = True,
) -> dict[str, Path]:
    """Write a synthetic dataset in ISBI 2012's layout.

    Files: ``train-volume.tif``, ``train-labels.tif``, ``test-volume.tif`` (multi-page
    uint8 TIFFs, one page per section) and, because synthetic data has ground
    truth, ``test-labels.tif`` (not part of the real release).

    Parameters
    ----------
    root : path
        Folder to write into (created if missing).
    shape : tuple of int
        ``(Z, Y, X)`` of each of the train and test stacks.
    seed : int
        The train stack uses ``seed``, the test stack ``seed + 1``.
    write_test_labels : bool
        Also write ``test-labels.tif``.

    Returns
    -------
    dict
        Role (``train_volume``, ``train_labels``, ``test_volume``, ``test_labels``) to path.
    """
    root = Path(root)
    spacing = ISBI2012_SPACING_NM
    paths: dict[str, Path] = {}
    for part, part_seed in (("train", seed), ("test", seed + 1)):
        stack = make_em_stack(shape, seed=part_seed)
        paths[f"{part}_volume"] = write(
            Volume(stack.image[None], spacing=spacing), root / f"{part}-volume.tif"
        )
        if part == "train" or write_test_labels:
            paths[f"{part}_labels"] = write(
                Volume(stack.labels[None], spacing=spacing), root / f"{part}-labels.tif"
            )
    return paths


def write_isbi2012_mirror(
    root: str | Path, *, shape: tuple[int, int, int] = (30, 512, 512), seed: int = 0
) -> Path:
    """Write a synthetic training stack in the layout of the public ISBI 2012 mirror, ``<root>/isbi.h5``.

    Datasets: ``raw`` (uint8), ``labels/membranes`` (uint8, ISBI polarity: 255 cell,
    0 membrane) and ``labels/gt_segmentation`` (uint32 cell ids; membrane voxels keep
    the id of their cell). No test stack, as in the mirror.

    Returns
    -------
    Path
        The written ``isbi.h5``.
    """
    path = Path(root) / ISBI2012_MIRROR_FILE
    stack = make_em_stack(shape, seed=seed)
    raw_key, label_key = ISBI2012_MIRROR_KEYS
    write(Volume(stack.image[None], spacing=ISBI2012_SPACING_NM, unit="nm"), f"{path}:/{raw_key}")
    write(Volume(stack.labels[None], spacing=ISBI2012_SPACING_NM, unit="nm"), f"{path}:/{label_key}")
    segmentation = stack.cell_ids.astype(np.uint32)[None]
    write(Volume(segmentation, spacing=ISBI2012_SPACING_NM, unit="nm"), f"{path}:/labels/gt_segmentation")
    return path
