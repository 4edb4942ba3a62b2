"""Choose a reader/writer by file suffix: :func:`read`, :func:`write`, :func:`open_array`.

Suffixes (case-insensitive; double suffixes such as ``.nii.gz`` and ``.ome.tif`` are
matched first):

- NIfTI ``.nii``, ``.nii.gz`` (:mod:`medseg.io.nifti`)
- MetaImage / NRRD ``.mha``, ``.mhd``, ``.nrrd``, ``.nhdr`` (:mod:`medseg.io.itk`)
- TIFF ``.tif``, ``.tiff``, ``.ome.tif``, ``.ome.tiff`` (:mod:`medseg.io.tiff`)
- PNG/BMP/JPEG ``.png``, ``.bmp``, ``.jpg``, ``.jpeg`` (:mod:`medseg.io.natural`)
- HDF5 ``.h5``, ``.hdf5``, ``.hdf`` with ``file.h5:/group/dataset`` (:mod:`medseg.io.hdf5`)
- Zarr ``.zarr`` with ``store.zarr:/group/array`` (:mod:`medseg.io.zarr_io`)
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medseg.errors import DataValueError, FormatError, ShapeError
from medseg.io import hdf5, itk, natural, nifti, tiff, zarr_io
from medseg.io._limits import check_fits_in_memory, check_header_size
from medseg.io.lazy import LazyArray, register_opener, wrap_in_memory
from medseg.io.paths import require_file
from medseg.io.volume import Volume

__all__ = ["SUPPORTED_SUFFIXES", "open_array", "read", "read_greyscale", "split_key", "suffix_of", "write"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike


@dataclass(frozen=True)
class _Format:
    name: str
    suffixes: tuple[str, ...]
    read: Callable[..., Volume]
    write: Callable[..., Path]
    open: Callable[..., LazyArray] | None = None
    keyed: bool = False  # a container addressed as path:key


_FORMATS = (
    _Format("nifti", nifti.NIFTI_SUFFIXES, nifti.read_nifti, nifti.write_nifti, nifti.open_nifti),
    _Format("itk", itk.ITK_SUFFIXES, itk.read_itk, itk.write_itk),
    _Format("tiff", tiff.TIFF_SUFFIXES, tiff.read_tiff, tiff.write_tiff, tiff.open_tiff),
    _Format("natural", natural.NATURAL_SUFFIXES, natural.read_natural, natural.write_natural),
    _Format("hdf5", hdf5.HDF5_SUFFIXES, hdf5.read_hdf5, hdf5.write_hdf5, hdf5.open_hdf5, keyed=True),
    _Format(
        "zarr", zarr_io.ZARR_SUFFIXES, zarr_io.read_zarr, zarr_io.write_zarr, zarr_io.open_zarr, keyed=True
    ),
)
_BY_SUFFIX = {suffix: fmt for fmt in _FORMATS for suffix in fmt.suffixes}
SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(sorted(_BY_SUFFIX))
_KEYED_SUFFIXES = tuple(s for fmt in _FORMATS if fmt.keyed for s in fmt.suffixes)
# "file.h5:/a/b", "file.h5:a/b", "store.zarr:/a" (the colon after a container suffix)
_KEY_RE = re.compile(
    r"^(?P<path>.*?(?:" + "|".join(re.escape(s) for s in _KEYED_SUFFIXES) + r")):(?P<key>.*)$", re.I
)
# "store.zarr/a/b": a path inside a Zarr directory store
_ZARR_INNER_RE = re.compile(r"^(?P<path>.*?\.zarr)[/\\](?P<key>.+)$", re.I)


def split_key(path: PathLike) -> tuple[Path, str | None]:
    """Split ``"file.h5:/group/dataset"`` into ``(Path("file.h5"), "/group/dataset")``.

    Also splits ``"store.zarr:/array"`` and ``"store.zarr/array"``. Paths without a key
    (and keys that are empty) give ``(path, None)``.

    Examples
    --------
    >>> split_key("cremi/sample_A.h5:/volumes/raw")
    (PosixPath('cremi/sample_A.h5'), '/volumes/raw')
    """
    text = os.fspath(path)
    match = _KEY_RE.match(text)
    if match is None and not Path(text).name.lower().endswith(tuple(_BY_SUFFIX)):
        match = _ZARR_INNER_RE.match(text)  # not "runs.zarr/case.nii.gz": that names a file
    if match is None:
        return Path(text), None
    key = match["key"].replace("\\", "/").strip()
    return Path(match["path"]), ("/" + key.strip("/")) if key.strip("/") else None


def suffix_of(path: PathLike) -> str:
    """The format suffix of ``path`` (lower case, double suffixes such as ``.nii.gz`` kept).

    Raises
    ------
    FormatError
        No supported suffix; the message lists the supported ones.
    """
    name = Path(os.fspath(path)).name.lower()
    for suffix in sorted(_BY_SUFFIX, key=len, reverse=True):
        if name.endswith(suffix) and len(name) > len(suffix):
            return suffix
    raise FormatError(
        f"unsupported file type {Path(os.fspath(path)).name!r} ({path}): medseg reads and writes "
        f"{', '.join(SUPPORTED_SUFFIXES)}; rename or convert the file"
    )


def _format_of(path: PathLike) -> tuple[_Format, Path, str | None]:
    file_path, key = split_key(path)
    return _BY_SUFFIX[suffix_of(file_path)], file_path, key


def read(path: PathLike) -> Volume:
    """Read an image/volume file into a :class:`Volume` ``(C, [Z,] Y, X)`` with its geometry.

    Parameters
    ----------
    path : str or PathLike
        File (or ``container:key``) with a supported suffix (see :data:`SUPPORTED_SUFFIXES`).

    Returns
    -------
    Volume
        Channels-first array; spacing, origin and direction in array axis order, their
        ``unit`` (:mod:`medseg.io.units`); ``meta["source"]`` and ``meta["format"]`` say
        where it came from. Non-finite values (NaN outside a resampled field of view)
        are kept as stored, as nibabel and SimpleITK do; normalisation decides what to
        do with them (``data.nonfinite``).

    Raises
    ------
    FormatError
        Unsupported suffix, or a corrupt/truncated file (the original error is chained).
    DataNotFoundError
        The file, or the HDF5/Zarr key, does not exist.
    """
    fmt, file_path, key = _format_of(path)
    require_file(file_path)
    if fmt.open is None:
        check_header_size(file_path, path)
    else:  # the lazy opener reads the header only: check the size before allocating
        with fmt.open(file_path, key) if fmt.keyed else fmt.open(file_path) as lazy:
            check_fits_in_memory(lazy.shape, lazy.dtype, path)
    volume = fmt.read(file_path, key) if fmt.keyed else fmt.read(file_path)
    logger.debug("read %s: %s %s spacing %s", path, volume.array.shape, volume.array.dtype, volume.spacing)
    return volume


def read_greyscale(path: PathLike) -> Volume:
    """Read a file that must hold one channel (a label, instance or probability map).

    Like :func:`read`, with one rule for the ambiguous TIFF: a single planar RGB(A) page
    (what ``tifffile.imwrite`` writes for a ``(3, Y, X)`` or ``(4, Y, X)`` array) is a
    stack of 3 or 4 sections, ``(1, Z, Y, X)`` with Z spacing 1, not a colour image.
    Other files come back as :func:`read` gives them; the caller refuses several channels.
    """
    volume = read(path)
    if volume.num_channels == 1:
        return volume
    file_path = split_key(path)[0]
    if volume.ndim == 2 and suffix_of(file_path) in tiff.TIFF_SUFFIXES and tiff.is_planar_rgb_page(file_path):
        return Volume(
            volume.array[None],
            spacing=(1.0, *volume.spacing),
            origin=(0.0, *volume.origin),
            direction=np.pad(volume.direction, ((1, 0), (1, 0))) + np.diag([1.0, 0.0, 0.0]),
            meta={**volume.meta, "read_as": "planar RGB page read as a Z stack"},
            unit=volume.unit,
        )
    return volume


def write(volume: Volume, path: PathLike) -> Path:
    """Write ``volume`` to ``path`` (format by suffix), atomically; parent folders are created.

    The data goes to a temporary file in the destination folder that is moved into
    place with ``os.replace`` only once complete: on failure nothing is left behind.

    Parameters
    ----------
    volume : Volume
        Data ``(C, [Z,] Y, X)`` and geometry.
    path : str or PathLike
        Destination, e.g. ``"pred/case_001.nii.gz"``, ``"out.h5:/volumes/pred"``.

    Returns
    -------
    Path
        The written file (for ``container:key``, the container).

    Raises
    ------
    FormatError
        Unsupported suffix.
    ShapeError
        An empty array, or the format cannot hold this many dimensions/channels (the
        message names a format that can).
    DataValueError
        A non-numeric dtype, or the format cannot hold this dtype.
    """
    if not isinstance(volume, Volume):
        raise TypeError(
            f"write() takes a medseg.io.Volume, got {type(volume).__name__}; "
            "wrap arrays as Volume(array[None], spacing=...) (channels first)"
        )
    fmt, file_path, key = _format_of(path)
    _check_writable(volume, path)
    return fmt.write(volume, file_path, key) if fmt.keyed else fmt.write(volume, file_path)


def _check_writable(volume: Volume, path: PathLike) -> None:
    """Refuse data no format can store so that it reads back: empty arrays, non-numeric dtypes."""
    if volume.array.size == 0:
        raise ShapeError(
            f"cannot write an empty array of shape {volume.array.shape} to {path}: every axis must "
            "have at least one element"
        )
    kind = volume.array.dtype.kind
    if kind not in "biufc":
        raise DataValueError(
            f"cannot write dtype {volume.array.dtype} to {path}: medseg writes numeric arrays only "
            "(bool, integer, float, complex); convert the array first"
        )


def open_array(path: PathLike) -> LazyArray:
    """Open an array for block-wise reading, ``(C, [Z,] Y, X)``, without loading it.

    HDF5, Zarr, TIFF (memory-mapped when contiguous, else read tile by tile), a folder
    of single-section TIFFs (a ``(1, Z, Y, X)`` stack in natural file order) and NIfTI
    are read lazily; other formats are read into memory and wrapped. Use as a context
    manager (or call ``close()``) to release HDF5/TIFF file handles.

    Examples
    --------
    >>> with open_array("cremi/sample_A.h5:/volumes/raw") as raw:  # doctest: +SKIP
    ...     slab = raw[0, 0:8]          # (8, Y, X), only these slices are read
    """
    if _is_section_folder(Path(os.fspath(path))):
        return tiff.open_tiff_folder(path)
    fmt, file_path, key = _format_of(path)
    require_file(file_path)
    if fmt.open is not None:
        return fmt.open(file_path, key) if fmt.keyed else fmt.open(file_path)
    volume = fmt.read(file_path)
    return wrap_in_memory(
        volume.array,
        spacing=volume.spacing,
        origin=volume.origin,
        direction=volume.direction,
        path=os.fspath(path),
        meta=volume.meta,
        unit=volume.unit,
    )


def _is_section_folder(path: Path) -> bool:
    """A plain folder (not a Zarr store): opened as a stack of single-section TIFFs."""
    zarr_markers = (".zarray", ".zgroup", "zarr.json")
    return (
        path.is_dir()
        and not path.name.lower().endswith(".zarr")
        and not any((path / m).exists() for m in zarr_markers)
    )


register_opener(open_array)  # unpickled LazyArrays (data-loader workers) re-open their path here
