"""Atomic writing and reading shared by the challenge formats (private); both go through :mod:`medseg.io`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from medseg.io import Volume, atomic_output, read, read_greyscale

__all__ = ["atomic_write", "read_volume", "stored_array"]


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary path and move it to ``path`` only if it succeeds.

    No half-written file is left at ``path`` if ``write`` raises.
    """
    path = Path(path)
    with atomic_output(path) as tmp:
        write(tmp)
    return path


def read_volume(path: Path, *, greyscale: bool = False) -> Volume:
    """A challenge file as a :class:`~medseg.io.Volume` with the file's geometry.

    Missing or corrupt files raise :mod:`medseg.errors` exceptions naming the file (from :func:`medseg.io.read`).
    ``greyscale``: the format holds one channel (labels, ids, probabilities); read with
    :func:`medseg.io.read_greyscale` (a planar RGB(A) TIFF page is a 3- or 4-section stack).
    """
    return read_greyscale(path) if greyscale else read(path)


def stored_array(volume: Volume) -> np.ndarray:
    """The array as the file stores it: ``(Z, Y, X)``/``(Y, X)``, channels last for RGB."""
    array = volume.array
    return array[0] if array.shape[0] == 1 else np.moveaxis(array, 0, -1)
