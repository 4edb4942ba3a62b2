"""Whole-slide tiling on a small pyramidal TIFF (tifffile SubIFDs + resolution tags) and stain normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from skimage.color import rgb2lab
from skimage.transform import downscale_local_mean

from medseg.data.stain import MacenkoNormalizer, ReinhardNormalizer, build_stain_normalizer
from medseg.data.synthetic.histo import make_histo_tile
from medseg.data.wsi import (
    detect_tissue,
    iter_tiles,
    open_slide,
    read_tile,
    slide_mpp,
    stitch_tiles,
    tile_coordinates,
)
from medseg.errors import ConfigError, DataValueError, FormatError

MPP = 0.5


@pytest.fixture
def slide_path(tmp_path):
    """A 3-level pyramidal RGB TIFF, 256 x 384 at level 0, tissue in the middle, 0.5 um/px."""
    image = np.full((256, 384, 3), 242, np.uint8)
    tissue = make_histo_tile((128, 192), n_nuclei=40, n_glands=1, seed=2).image
    image[64:192, 96:288] = tissue
    path = tmp_path / "slide.tif"
    with tifffile.TiffWriter(path) as tw:
        kwargs = {"tile": (64, 64), "photometric": "rgb", "resolutionunit": "CENTIMETER", "metadata": None}
        tw.write(image, subifds=2, resolution=(1e4 / MPP, 1e4 / MPP), **kwargs)
        for f in (2, 4):
            level = downscale_local_mean(image, (f, f, 1)).round().astype(np.uint8)
            tw.write(level, subfiletype=1, resolution=(1e4 / MPP / f, 1e4 / MPP / f), **kwargs)
    return path, image


def test_mpp_and_tissue(slide_path):
    path, _ = slide_path
    slide = open_slide(path)
    assert slide.level_count == 3 and slide_mpp(slide) == pytest.approx(MPP)
    mask, down = detect_tissue(slide)
    assert down == 4.0 and mask.shape == (64, 96)
    assert mask[20:44, 28:68].mean() > 0.8 and mask[:12].mean() < 0.05
    slide.close()


def test_tiles_at_level_stitch_back_exactly(slide_path):
    path, image = slide_path
    slide = open_slide(path)
    coords = tile_coordinates(slide, 64, level=0, overlap=16)
    tiles = [read_tile(slide, c) for c in coords]
    assert all(t.shape == (64, 64, 3) for t in tiles)
    stitched = stitch_tiles(tiles, coords, (256, 384))
    assert np.array_equal(stitched, image)
    slide.close()


def test_tiles_at_mpp_use_pyramid_and_keep_coordinates(slide_path):
    path, image = slide_path
    slide = open_slide(path)
    coords = tile_coordinates(slide, 32, mpp=1.0)  # 2x downsample -> level 1, no resizing
    assert {c.level for c in coords} == {1} and coords[1].x == 64 and coords[1].out_x == 32
    tiles = [read_tile(slide, c) for c in coords]
    stitched = stitch_tiles(tiles, coords, (128, 192))
    expected = downscale_local_mean(image, (2, 2, 1)).round().astype(np.uint8)
    assert np.array_equal(stitched, expected)
    coarse = tile_coordinates(slide, 16, mpp=1.5)  # between levels 1 and 2: read level 1, resize
    assert coarse[0].level == 1 and coarse[0].read_size == (24, 24)
    assert read_tile(slide, coarse[0]).shape == (16, 16, 3)
    with pytest.raises(ConfigError, match="finer than the slide's level-0"):
        tile_coordinates(slide, 16, mpp=0.1)
    with pytest.raises(ConfigError, match="exactly one of mpp"):
        tile_coordinates(slide, 16)
    slide.close()


def test_iter_tiles_keeps_tissue_only(slide_path):
    path, _ = slide_path
    tiles = list(iter_tiles(path, 64, level=0))
    assert tiles and all(c.x + 32 >= 64 and c.x < 288 for c, _ in tiles)
    assert len(tiles) < len(list(iter_tiles(path, 64, level=0, tissue_only=False)))


def test_slide_errors(tmp_path):
    bad = tmp_path / "bad.svs"
    bad.write_bytes(b"II*\x00garbage")
    with pytest.raises(FormatError, match=r"bad\.svs"):
        open_slide(bad)
    path = tmp_path / "nompp.tif"
    tifffile.imwrite(path, np.zeros((32, 32, 3), np.uint8), photometric="rgb", metadata=None)
    slide = open_slide(path)
    with pytest.raises(DataValueError, match="no microns-per-pixel"):
        tile_coordinates(slide, 16, mpp=1.0)
    slide.close()


def _lab_stats(image):
    lab = rgb2lab(image).reshape(-1, 3)
    return lab.mean(0), lab.std(0)


def test_reinhard_matches_reference_statistics():
    reference = make_histo_tile((64, 64), seed=1).image
    source = np.clip(
        make_histo_tile((64, 64), seed=2).image.astype(int) + np.array([30, -20, 10]), 0, 255
    ).astype(np.uint8)
    out = ReinhardNormalizer().fit(reference).transform(source)
    (m_ref, s_ref), (m_out, s_out) = _lab_stats(reference), _lab_stats(out)
    assert np.allclose(m_out, m_ref, atol=2.0) and np.allclose(s_out, s_ref, rtol=0.15, atol=1.0)


def test_macenko_moves_colours_towards_reference():
    reference = make_histo_tile((96, 96), seed=1).image
    tinted = np.clip(reference.astype(float) * [0.8, 1.0, 0.9], 0, 255).astype(np.uint8)
    norm = build_stain_normalizer("macenko", reference)
    out = norm.transform(tinted)
    assert out.shape == reference.shape and out.dtype == np.uint8
    err_before = np.abs(tinted.astype(float) - reference).mean()
    err_after = np.abs(out.astype(float) - reference).mean()
    assert err_after < err_before
    with pytest.raises(DataValueError, match="stained pixels"):
        MacenkoNormalizer().fit(np.full((16, 16, 3), 250, np.uint8))
    with pytest.raises(ConfigError, match="did you|one of"):
        build_stain_normalizer("vahadane", reference)
