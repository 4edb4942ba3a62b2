"""NIfTI-1/2 files ``.nii`` / ``.nii.gz`` (nibabel).

Axis order
----------
nibabel gives data in file order ``(i, j, k[, c])`` with ``i`` fastest-varying on disk;
medseg reverses it to channels-first ``(C, Z, Y, X)`` = ``(c, k, j, i)``. A 3D file
gets ``C = 1``; a 4D file's 4th axis (time, modality) becomes ``C``; a 5D vector file
``(i, j, k, 1, c)`` also gives ``(c, k, j, i)``. A 2D file ``(i, j)`` gives
``(1, j, i)``. Writing a 2D volume with one channel writes a 2D file; with several
channels it writes ``(i, j, 1, c)`` and says so in the header's ``descrip``, so medseg
reads it back as 2D ``(C, Y, X)`` (other such files read as 3D ``(C, 1, Y, X)``).

Geometry
--------
The NIfTI affine maps ``(i, j, k)`` to RAS+ world coordinates. medseg's geometry is
ITK/DICOM LPS, in reversed (array) order: with ``F = diag(-1, -1, 1)``,
``M = F @ affine[:3, :3]`` and ``t = F @ affine[:3, 3]``, the ITK spacing is the
column norms of ``M``, the ITK direction ``M / spacing`` and the ITK origin ``t``; all
three are reversed into array order. The unit is the header's ``xyzt_units`` (see
:mod:`medseg.io.units`); writing stores the volume's unit (nm as micron). Oblique and sheared affines round-trip. NIfTI
stores the sform as float32: write -> read matches to float32 precision, and read ->
write -> read is bit-identical. The sform code is written as 1 (scanner), and the
qform too when the direction is orthonormal.

Boolean arrays are written as uint8 (NIfTI has no boolean type); float16 is refused.
"""

from __future__ import annotations

import logging
import struct
import zlib
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError

from medseg.errors import DataValueError, FormatError
from medseg.io._common import atomic_output, make_volume
from medseg.io.lazy import LazyArray
from medseg.io.paths import require_file
from medseg.io.units import convert_spacing
from medseg.io.volume import Volume

__all__ = ["NIFTI_SUFFIXES", "open_nifti", "read_nifti", "write_nifti"]

logger = logging.getLogger(__name__)

NIFTI_SUFFIXES = (".nii", ".nii.gz")
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])
_CHANNELS_2D = b"medseg: 2D image, channels on axis 4"
_NIFTI_ERRORS = (ImageFileError, OSError, EOFError, ValueError, zlib.error, struct.error)


def read_nifti(path: str | Path) -> Volume:
    """Read a NIfTI file into a :class:`Volume` ``(C, [Z,] Y, X)`` with LPS geometry.

    Raises
    ------
    DataNotFoundError
        The file does not exist.
    FormatError
        Not a NIfTI file, truncated, or more than 4 non-singleton dimensions.
    """
    lazy = open_nifti(path)
    try:
        array = np.ascontiguousarray(lazy[...])
    except FormatError:  # already names the file (a truncated or damaged file)
        raise
    except _NIFTI_ERRORS as err:
        raise FormatError(f"cannot read NIfTI data of {path}: {err} (is the file truncated?)") from err
    return make_volume(
        path,
        array,
        spacing=lazy.spacing,
        origin=lazy.origin,
        direction=lazy.direction,
        meta=lazy.meta,
        unit=lazy.unit,
    )


def open_nifti(path: str | Path) -> LazyArray:
    """Open a NIfTI file lazily through nibabel's array proxy (``(C, [Z,] Y, X)``)."""
    path = Path(path)
    require_file(path)
    try:
        image = nib.load(path)
        proxy = image.dataobj
        shape = tuple(int(n) for n in proxy.shape)
        affine = np.asarray(image.affine, dtype=np.float64)
    except _NIFTI_ERRORS as err:
        raise FormatError(f"cannot read NIfTI file {path}: {err} (is it truncated or not NIfTI?)") from err
    if len(shape) == 2:
        plan: list[int | None] = [None, 1, 0]
    elif len(shape) == 3:
        plan = [None, 2, 1, 0]
    elif len(shape) == 4 and shape[2] == 1 and _descrip(image) == _CHANNELS_2D:
        plan = [3, 1, 0]  # a 2D multi-channel volume medseg wrote as (i, j, 1, c)
    elif len(shape) == 4:
        plan = [3, 2, 1, 0]
    elif len(shape) == 5 and shape[3] == 1:
        plan = [4, 2, 1, 0]
    else:
        raise FormatError(
            f"NIfTI file {path} has shape {shape}; medseg reads (i, j[, k[, c]]) images "
            "(or (i, j, k, 1, c) vectors); split the other dimensions into separate files"
        )
    ndim = len(plan) - 1
    spacing, origin, direction = ras_affine_to_geometry(affine, ndim)
    file_unit = image.header.get_xyzt_units()[0]
    spacing, unit = convert_spacing(spacing, file_unit)
    origin, _ = convert_spacing(origin, file_unit)
    meta = {
        "source": str(path),
        "format": "nifti",
        "affine": affine,
        "orientation": "".join(nib.aff2axcodes(affine)),
    }
    try:
        return LazyArray(
            _CheckedProxy(proxy, path, _truncation(path, image, shape)),
            plan,
            spacing=spacing,
            origin=origin,
            direction=direction,
            path=str(path),
            meta=meta,
            unit=unit,
        )
    except ValueError as err:
        raise FormatError(f"NIfTI file {path} has an unsupported shape {shape}: {err}") from err


def write_nifti(volume: Volume, path: str | Path) -> Path:
    """Write ``volume`` as NIfTI-1 (gzip-compressed for ``.nii.gz``), atomically.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    array = volume.array
    if array.dtype == np.bool_:
        logger.info("NIfTI has no boolean type: writing %s as uint8", path)
        array = array.astype(np.uint8)
    reverse = tuple(range(volume.ndim, 0, -1))  # (C, Z, Y, X) -> (X, Y, Z)
    if volume.num_channels == 1:
        data = array[0].transpose(tuple(a - 1 for a in reverse))
    else:
        data = array.transpose((*reverse, 0))
        if volume.ndim == 2:
            data = data[:, :, None, :]
    if array.dtype == np.float16 or (array.dtype.kind == "c" and array.dtype.itemsize > 16):
        raise DataValueError(
            f"cannot write dtype {array.dtype} to NIfTI file {path}: NIfTI has no such type; "
            "cast to float32 (or complex64/128)"
        )
    spacing, origin, unit = volume.spacing, volume.origin, volume.unit
    if unit == "nm":  # NIfTI knows meter, mm and micron
        spacing, _ = convert_spacing(spacing, "nm", target="um")
        origin, unit = convert_spacing(origin, "nm", target="um")
    affine = geometry_to_ras_affine(spacing, origin, volume.direction)
    image = nib.Nifti1Image(np.asarray(data), affine, dtype=data.dtype)
    image.set_sform(affine, code=1)
    direction = np.asarray(volume.direction)
    if np.allclose(direction.T @ direction, np.eye(volume.ndim), atol=1e-6):
        image.set_qform(affine, code=1)
    else:
        image.set_qform(None, code=0)
    image.header.set_xyzt_units({"mm": "mm", "um": "micron", None: "unknown"}[unit])
    if volume.ndim == 2 and volume.num_channels > 1:
        image.header["descrip"] = _CHANNELS_2D
    with atomic_output(path) as tmp:
        nib.save(image, tmp)
    logger.debug("wrote %s %s to %s", data.shape, data.dtype, path)
    return path


def ras_affine_to_geometry(
    affine: np.ndarray, ndim: int
) -> tuple[tuple[float, ...], tuple[float, ...], np.ndarray]:
    """Convert a NIfTI RAS affine to medseg ``(spacing, origin, direction)`` in array order.

    Parameters
    ----------
    affine : np.ndarray
        ``(4, 4)`` voxel ``(i, j, k)`` -> RAS+ world matrix.
    ndim : int
        Number of spatial axes of the image (2 keeps the ``(i, j)`` block).
    """
    matrix = _RAS_TO_LPS @ affine[:3, :3]
    translation = _RAS_TO_LPS @ affine[:3, 3]
    matrix, translation = matrix[:ndim, :ndim], translation[:ndim]
    spacing_itk = np.linalg.norm(matrix, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        direction_itk = matrix / spacing_itk
    spacing = tuple(float(s) for s in spacing_itk[::-1])
    origin = tuple(float(o) for o in translation[::-1])
    return spacing, origin, direction_itk[::-1, ::-1].copy()


def geometry_to_ras_affine(
    spacing: tuple[float, ...], origin: tuple[float, ...], direction: np.ndarray
) -> np.ndarray:
    """Inverse of :func:`ras_affine_to_geometry`: a ``(4, 4)`` RAS affine (2D geometry padded to 3D)."""
    ndim = len(spacing)
    matrix = np.eye(3)
    matrix[:ndim, :ndim] = np.asarray(direction)[::-1, ::-1] * np.asarray(spacing[::-1])
    translation = np.zeros(3)
    translation[:ndim] = origin[::-1]
    affine = np.eye(4)
    affine[:3, :3] = _RAS_TO_LPS @ matrix
    affine[:3, 3] = _RAS_TO_LPS @ translation
    return affine


def _truncation(path: Path, image: nib.Nifti1Image, shape: tuple[int, ...]) -> str | None:
    """Why an uncompressed file is shorter than its header's data, or ``None`` (``.nii.gz``: unknown)."""
    if path.name.lower().endswith(".gz"):
        return None
    data_bytes = int(np.prod(shape, dtype=np.int64)) * image.get_data_dtype().itemsize
    needed = int(image.header.get_data_offset()) + data_bytes
    have = path.stat().st_size
    if have >= needed:
        return None
    return (
        f"NIfTI file {path} is truncated: its header declares a {' x '.join(map(str, shape))} "
        f"{image.get_data_dtype()} array ending at byte {needed}, but the file has {have} bytes; "
        "copy or export the file again"
    )


class _CheckedProxy:
    """nibabel's array proxy whose read errors name the file (a truncated ``.nii``, a damaged ``.nii.gz``).

    Opening stays cheap and lazy (a header is checked against memory limits before any
    read); the first read of a truncated file raises :class:`FormatError` with the sizes.
    """

    def __init__(self, proxy: Any, path: Path, truncated: str | None) -> None:
        self._proxy = proxy
        self._path = path
        self._truncated = truncated
        self.shape = proxy.shape
        self.dtype = proxy.dtype

    def __getitem__(self, key: Any) -> np.ndarray:
        if self._truncated is not None:
            raise FormatError(self._truncated)
        try:
            return self._proxy[key]
        except _NIFTI_ERRORS as err:
            raise FormatError(
                f"cannot read NIfTI data of {self._path}: {err} (is the file truncated? copy or export it again)"
            ) from err


def _descrip(image: nib.Nifti1Image) -> bytes:
    """The header's ``descrip`` text (NIfTI-1 and -2), ``b""`` when absent."""
    try:
        return bytes(np.asarray(image.header["descrip"]).item()).rstrip(b"\x00")
    except (KeyError, ValueError, TypeError):
        return b""
