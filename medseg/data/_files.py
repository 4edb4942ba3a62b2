"""Small file helpers shared by the dataset loaders (private)."""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from medseg.errors import DataNotFoundError, FormatError, ShapeError

__all__ = [
    "natural_key",
    "require_file",
    "require_dir",
    "read_image_2d",
    "read_tiff_pages",
    "check_same_grid",
]


def natural_key(path: Path | str) -> list:
    """Sort key so that ``2.bmp`` comes before ``10.bmp``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", Path(path).name)]


def require_file(path: Path, what: str, fix: str) -> Path:
    if not path.is_file():
        raise DataNotFoundError(f"{what} not found: expected {path}; {fix}")
    return path


def require_dir(path: Path, what: str, fix: str) -> Path:
    if not path.is_dir():
        raise DataNotFoundError(f"{what} not found: expected folder {path}; {fix}")
    return path


def read_image_2d(path: Path, *, keep_palette: bool = False) -> np.ndarray:
    """Read a 2D image (BMP/PNG/JPEG via Pillow, TIFF via tifffile) as ``(Y, X)`` or ``(Y, X, S)``.

    Palette images become RGB unless ``keep_palette`` (label maps: keep the indices).

    Raises
    ------
    FormatError
        The file is unreadable or truncated; the message names it.
    """
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        return read_tiff_pages(path)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            if img.mode == "P" and not keep_palette:
                img = img.convert("RGB")
            return np.asarray(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        if isinstance(err, FileNotFoundError):
            raise DataNotFoundError(f"image {path} does not exist") from err
        raise FormatError(
            f"cannot read image {path} ({err}): the file is corrupt or truncated; replace it"
        ) from err


def read_tiff_pages(path: Path) -> np.ndarray:
    """Read all pages of a TIFF into memory (``(Y, X)``, ``(Y, X, S)`` or ``(Z, Y, X[, S])``).

    Raises
    ------
    FormatError
        Truncated or corrupt TIFF (names the file).
    """
    import tifffile

    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"TIFF {path} does not exist")
    try:
        with tifffile.TiffFile(path) as tif:
            return tif.asarray()
    except (tifffile.TiffFileError, ValueError, OSError, EOFError, struct.error, IndexError, KeyError) as err:
        raise FormatError(
            f"cannot read TIFF {path} ({type(err).__name__}: {err}): the file is truncated or corrupt; "
            "download or copy it again"
        ) from err


def check_same_grid(image_shape: Iterable[int], label_shape: Iterable[int], image: Path, label: Path) -> None:
    """Raise ShapeError when an image and its label map have different spatial shapes."""
    image_shape, label_shape = tuple(image_shape), tuple(label_shape)
    if image_shape != label_shape:
        raise ShapeError(
            f"label {label} has spatial shape {label_shape} but image {image} has {image_shape}: "
            "they must be on the same grid; check that the files belong together"
        )
