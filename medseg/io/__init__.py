"""Reading and writing images with their geometry (spacing, origin, direction, axis order).

Every array medseg reads is channels first: ``(C, Z, Y, X)`` for volumes, ``(C, Y, X)``
for 2D images, with geometry in that same (array) axis order and LPS world
coordinates, and the ``unit`` of the spacing (one policy for every format:
:mod:`medseg.io.units`); see :class:`Volume`. :func:`read` and :func:`write` choose the format by
suffix (``.nii.gz``, ``.mha``, ``.nrrd``, ``.tif``, ``.ome.tif``, ``.png``, ``.bmp``,
``.jpg``, ``.h5``, ``.zarr``...); HDF5 and Zarr take ``file.h5:/group/dataset``.
:func:`open_array` gives block-wise access to stacks larger than memory (also a
folder of single-section TIFFs); files are read as stored, NaN included;
:mod:`medseg.io.paths` holds the path checks the dataset loaders share;
:func:`atomic_output` lets other packages write any file with the same no-half-written-output guarantee.

Example
-------
>>> from medseg.io import read, write, open_array
>>> vol = read("train-volume.tif")                  # doctest: +SKIP
>>> write(vol, "out/train.h5:/volumes/raw")          # doctest: +SKIP
>>> with open_array("out/train.h5:/volumes/raw") as raw:   # doctest: +SKIP
...     slab = raw[0, 0:4]
"""

from __future__ import annotations

from medseg.io._common import atomic_output, recording_writer
from medseg.io.dispatch import (
    SUPPORTED_SUFFIXES,
    open_array,
    read,
    read_greyscale,
    split_key,
    suffix_of,
    write,
)
from medseg.io.lazy import LazyArray
from medseg.io.volume import Volume

__all__ = [
    "SUPPORTED_SUFFIXES",
    "LazyArray",
    "Volume",
    "atomic_output",
    "open_array",
    "read",
    "read_greyscale",
    "recording_writer",
    "split_key",
    "suffix_of",
    "write",
]
