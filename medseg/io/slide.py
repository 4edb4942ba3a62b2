"""Whole-slide images (``.svs``, pyramidal TIFF) through tiffslide: opening and pixel size.

A slide is a pyramid of levels read region by region (``slide.read_region``), not one
array, so it is opened here rather than through :func:`medseg.io.read`; tiling and
tissue detection live in :mod:`medseg.data.wsi`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medseg.errors import FormatError
from medseg.io.paths import require_file

__all__ = ["open_slide", "slide_mpp"]


def open_slide(path: str | Path) -> Any:
    """Open a slide with tiffslide (``tiffslide.TiffSlide``); FormatError on unreadable files."""
    import tiffslide

    path = require_file(Path(path), "slide", "check the path")
    try:
        slide = tiffslide.TiffSlide(path)
        if slide.level_count < 1 or min(slide.dimensions) < 1:
            raise ValueError("no image levels")
    except Exception as err:  # tiffslide/tifffile raise many types on bad input
        raise FormatError(
            f"cannot open slide {path} with tiffslide ({type(err).__name__}: {err}): the file is truncated, "
            "corrupt or not a supported slide format"
        ) from err
    return slide


def slide_mpp(slide: Any) -> float | None:
    """Level-0 microns per pixel (mean of x and y), or ``None`` if the file does not say."""
    props = slide.properties
    values = [props.get("tiffslide.mpp-x"), props.get("tiffslide.mpp-y")]
    values = [float(v) for v in values if v not in (None, "")]
    return float(np.mean(values)) if values else None
