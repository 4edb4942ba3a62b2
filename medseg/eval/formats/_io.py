"""Atomic file writing and small readers shared by the challenge formats (private)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from medseg.errors import DataNotFoundError, FormatError

__all__ = ["atomic_write", "read_tiff", "read_image"]


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file next to ``path`` then ``os.replace`` it.

    No half-written file is left at ``path`` if ``write`` raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".incomplete" + "".join(path.suffixes), dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def _exists(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"no such file: {path}; check the path or the case name")
    return path


def read_tiff(path: Path) -> np.ndarray:
    import tifffile

    path = _exists(path)
    try:
        return np.asarray(tifffile.imread(path))
    except Exception as err:  # tifffile raises several types for corrupt files
        raise FormatError(f"{path} is not a readable TIFF ({err}); re-export it") from err


def read_image(path: Path) -> np.ndarray:
    from PIL import Image

    path = _exists(path)
    try:
        with Image.open(path) as im:
            return np.asarray(im)
    except Exception as err:
        raise FormatError(f"{path} is not a readable image ({err}); re-export it") from err
