"""Whole-slide images (``.svs``, pyramidal TIFF): tissue detection and tiling.

Slides are opened by :func:`medseg.io.slide.open_slide` (tiffslide), re-exported here.

Tiles are requested at a target resolution (microns per pixel) or pyramid level.
The pyramid level closest to (and not coarser than) the target is read and resized;
each :class:`TileCoord` keeps both the level-0 region it covers and its position in
the output grid, so predictions can be stitched back with :func:`stitch_tiles`.

Coordinates are ``(x, y)`` = (column, row) in level-0 pixels, as in OpenSlide.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from skimage.filters import threshold_otsu
from skimage.transform import resize

from medseg.errors import ConfigError, DataValueError, ShapeError
from medseg.io.slide import open_slide, slide_mpp

__all__ = [
    "TileCoord",
    "open_slide",
    "slide_mpp",
    "detect_tissue",
    "tile_coordinates",
    "read_tile",
    "iter_tiles",
    "stitch_tiles",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TileCoord:
    """Where a tile comes from and where it goes.

    Attributes
    ----------
    x, y : int
        Top-left corner in level-0 pixels.
    level : int
        Pyramid level read.
    read_size : (int, int)
        ``(width, height)`` read at ``level``.
    size : (int, int)
        ``(width, height)`` of the returned tile (target resolution).
    out_x, out_y : int
        Top-left corner in the output grid at the target resolution (for stitching).
    """

    x: int
    y: int
    level: int
    read_size: tuple[int, int]
    size: tuple[int, int]
    out_x: int
    out_y: int


def detect_tissue(
    slide: Any, *, level: int | None = None, min_fraction: float = 0.0
) -> tuple[np.ndarray, float]:
    """Tissue mask by Otsu thresholding of a low-resolution level.

    Tissue is darker than the bright glass background in brightfield H&E: pixels of
    grey value below the Otsu threshold count as tissue.

    Parameters
    ----------
    level : int, optional
        Level to threshold; default the coarsest.
    min_fraction : float
        Warn if less than this fraction of the slide is tissue.

    Returns
    -------
    mask : np.ndarray
        Boolean ``(H, W)`` mask at ``level``.
    downsample : float
        Level-0 pixels per mask pixel.
    """
    level = slide.level_count - 1 if level is None else int(level)
    if not 0 <= level < slide.level_count:
        raise ConfigError(f"level must be in [0, {slide.level_count - 1}], got {level}")
    width, height = slide.level_dimensions[level]
    rgb = np.asarray(slide.read_region((0, 0), level, (width, height), as_array=True))[..., :3]
    grey = rgb.astype(np.float32).mean(axis=-1)
    if float(grey.max()) == float(grey.min()):
        mask = np.zeros(grey.shape, dtype=bool)
    else:
        mask = grey < threshold_otsu(grey)
    if mask.mean() < min_fraction:
        logger.warning("only %.1f%% of the slide is tissue at level %d", 100 * mask.mean(), level)
    return mask, float(slide.level_downsamples[level])


def _pick_level(slide: Any, mpp: float | None, level: int | None) -> tuple[int, float]:
    """Level to read and the scale target/level (output pixels per level pixel, <= 1)."""
    if (mpp is None) == (level is None):
        raise ConfigError("give exactly one of mpp (microns per pixel) or level")
    if level is not None:
        if not 0 <= level < slide.level_count:
            raise ConfigError(f"level must be in [0, {slide.level_count - 1}], got {level}")
        return int(level), 1.0
    base = slide_mpp(slide)
    if base is None:
        raise DataValueError(
            "the slide has no microns-per-pixel metadata (tiffslide.mpp-x): tile by level instead of mpp"
        )
    if mpp < base * 0.99:
        raise ConfigError(
            f"mpp={mpp} is finer than the slide's level-0 resolution {base:.4f}: use mpp >= {base:.4f}"
        )
    target_downsample = mpp / base
    candidates = [i for i, d in enumerate(slide.level_downsamples) if d <= target_downsample * 1.01]
    chosen = max(candidates, key=lambda i: slide.level_downsamples[i])
    return chosen, float(slide.level_downsamples[chosen]) / target_downsample


def tile_coordinates(
    slide: Any,
    tile_size: int,
    *,
    mpp: float | None = None,
    level: int | None = None,
    overlap: int = 0,
    tissue_mask: tuple[np.ndarray, float] | None = None,
    min_tissue: float = 0.5,
) -> list[TileCoord]:
    """Grid of tiles of ``tile_size`` x ``tile_size`` at a target mpp or level.

    Parameters
    ----------
    tile_size : int
        Output tile edge in pixels at the target resolution.
    mpp, level :
        Target resolution: microns per pixel, or a pyramid level (exactly one).
    overlap : int
        Overlap between neighbouring tiles, in output pixels.
    tissue_mask : (mask, downsample), optional
        From :func:`detect_tissue`; tiles with less than ``min_tissue`` tissue are dropped.
    min_tissue : float
        Minimum tissue fraction of a kept tile.

    Returns
    -------
    list of TileCoord
        Row-major order. Edge tiles may extend past the slide (read as background).
    """
    if tile_size < 1 or not 0 <= overlap < tile_size:
        raise ConfigError(f"need tile_size >= 1 and 0 <= overlap < tile_size, got {tile_size}, {overlap}")
    lvl, scale = _pick_level(slide, mpp, level)
    lvl_down = float(slide.level_downsamples[lvl])
    level0_per_out = lvl_down / scale
    width0, height0 = slide.dimensions
    out_w, out_h = int(np.ceil(width0 / level0_per_out)), int(np.ceil(height0 / level0_per_out))
    read = max(1, round(tile_size / scale))
    step = tile_size - overlap
    coords = []
    for oy in range(0, max(out_h - overlap, 1), step):
        for ox in range(0, max(out_w - overlap, 1), step):
            x0, y0 = round(ox * level0_per_out), round(oy * level0_per_out)
            if tissue_mask is not None:
                mask, down = tissue_mask
                extent = tile_size * level0_per_out / down
                r0, c0 = int(y0 / down), int(x0 / down)
                window = mask[r0 : r0 + max(1, int(np.ceil(extent))), c0 : c0 + max(1, int(np.ceil(extent)))]
                if window.size == 0 or window.mean() < min_tissue:
                    continue
            coords.append(TileCoord(x0, y0, lvl, (read, read), (tile_size, tile_size), ox, oy))
    return coords


def read_tile(slide: Any, coord: TileCoord) -> np.ndarray:
    """Read one tile as ``(tile, tile, 3)`` uint8 RGB (resized from its level if needed)."""
    region = np.asarray(slide.read_region((coord.x, coord.y), coord.level, coord.read_size, as_array=True))[
        ..., :3
    ]
    if region.shape[1::-1] != coord.size:
        region = resize(
            region, (coord.size[1], coord.size[0]), order=1, preserve_range=True, anti_aliasing=True
        )
        region = np.clip(np.rint(region), 0, 255).astype(np.uint8)
    return region


def iter_tiles(
    path: str | Path,
    tile_size: int,
    *,
    mpp: float | None = None,
    level: int | None = None,
    overlap: int = 0,
    tissue_only: bool = True,
    min_tissue: float = 0.5,
) -> Iterator[tuple[TileCoord, np.ndarray]]:
    """Open a slide and yield ``(coord, tile)`` pairs (tissue tiles only by default)."""
    slide = open_slide(path)
    try:
        mask = detect_tissue(slide) if tissue_only else None
        for coord in tile_coordinates(
            slide, tile_size, mpp=mpp, level=level, overlap=overlap, tissue_mask=mask, min_tissue=min_tissue
        ):
            yield coord, read_tile(slide, coord)
    finally:
        slide.close()


def stitch_tiles(
    tiles: list[np.ndarray], coords: list[TileCoord], output_shape: tuple[int, int]
) -> np.ndarray:
    """Place tiles (``(h, w[, C])``) back into an output array at the target resolution.

    Overlapping pixels are averaged. ``output_shape`` is ``(H, W)``; tiles past the
    edge are cropped. Pixels no tile covers are 0.
    """
    if len(tiles) != len(coords):
        raise ShapeError(f"got {len(tiles)} tiles but {len(coords)} coordinates")
    if not tiles:
        raise ShapeError("no tiles to stitch")
    extra = tiles[0].shape[2:]
    total = np.zeros((*output_shape, *extra), dtype=np.float64)
    count = np.zeros(output_shape, dtype=np.float64)
    for tile, c in zip(tiles, coords, strict=True):
        h = min(tile.shape[0], output_shape[0] - c.out_y)
        w = min(tile.shape[1], output_shape[1] - c.out_x)
        if h <= 0 or w <= 0:
            continue
        total[c.out_y : c.out_y + h, c.out_x : c.out_x + w] += tile[:h, :w]
        count[c.out_y : c.out_y + h, c.out_x : c.out_x + w] += 1
    shaped = count.reshape(*output_shape, *([1] * len(extra)))
    return (total / np.maximum(shaped, 1)).astype(tiles[0].dtype)
