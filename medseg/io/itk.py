"""MetaImage and NRRD files ``.mha``, ``.mhd``, ``.nrrd``, ``.nhdr`` (SimpleITK).

Axis order
----------
``SimpleITK.GetArrayFromImage`` gives ``(z, y, x)`` for scalar images and
``(z, y, x, c)`` for vector images; medseg returns ``(C, Z, Y, X)`` (``C = 1`` for
scalar images), and 2D images as ``(C, Y, X)``. Volumes with several channels are
written as vector images.

Geometry
--------
ITK's spacing/origin are ``(x, y, z)`` and its direction is row-major with column
``a`` the world direction of index axis ``a``, in LPS. medseg keeps LPS and reverses
the order: ``spacing = GetSpacing()[::-1]``, ``origin = GetOrigin()[::-1]``,
``direction = D[::-1, ::-1]``. Non-identity directions round-trip exactly: medseg
also stores its geometry as JSON in the header field ``medseg_geometry`` (NRRD keeps
only ``direction * spacing``, which loses the last bit), used when it agrees with the
standard fields.

The unit of the spacing (:mod:`medseg.io.units`) is stored in the header field
``medseg_unit``; files without it read with unit ``None``.

``.mhd`` writes a header plus a ``.zraw`` data file; the data file is moved into place
first and the header last. Boolean arrays are written as uint8; float16 and complex data are refused.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medseg.errors import DataValueError, FormatError
from medseg.io._common import atomic_output, geometry_to_attrs, make_volume
from medseg.io.paths import require_file
from medseg.io.volume import Volume

if TYPE_CHECKING:
    import SimpleITK as sitk

__all__ = ["ITK_SUFFIXES", "read_itk", "write_itk"]

logger = logging.getLogger(__name__)

ITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr")
_META_KEY = "medseg_geometry"
_UNIT_KEY = "medseg_unit"


def read_itk(path: str | Path) -> Volume:
    """Read a MetaImage/NRRD file into a :class:`Volume` ``(C, [Z,] Y, X)``.

    Raises
    ------
    DataNotFoundError
        The file does not exist.
    FormatError
        SimpleITK cannot read it (corrupt, truncated, missing data file), or it is not 2D/3D.
    """
    path = Path(path)
    require_file(path)
    import SimpleITK as sitk  # imported on first use: the library adds about 90 MiB to every process

    try:
        image = sitk.ReadImage(str(path))
        array = sitk.GetArrayFromImage(image)
    except RuntimeError as err:
        raise FormatError(f"cannot read {path} with SimpleITK: {_first_line(err)}") from err
    ndim = image.GetDimension()
    if ndim not in (2, 3):
        raise FormatError(f"{path} is a {ndim}D image; medseg reads 2D and 3D images")
    if image.GetNumberOfComponentsPerPixel() > 1:
        array = np.moveaxis(array, -1, 0)
    else:
        array = array[None]
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(ndim, ndim)[::-1, ::-1]
    spacing, origin = image.GetSpacing()[::-1], image.GetOrigin()[::-1]
    exact = _exact_geometry(image, spacing, origin, direction)
    if exact is not None:
        spacing, origin, direction = exact
    meta = {"source": str(path), "format": "itk", "pixel_type": image.GetPixelIDTypeAsString()}
    unit = image.GetMetaData(_UNIT_KEY) if image.HasMetaDataKey(_UNIT_KEY) else None
    return make_volume(
        path,
        np.ascontiguousarray(array),
        spacing=spacing,
        origin=origin,
        direction=direction,
        meta=meta,
        unit=unit or None,
    )


def write_itk(volume: Volume, path: str | Path) -> Path:
    """Write ``volume`` as MetaImage/NRRD (compressed), atomically.

    Raises
    ------
    DataValueError
        float16 data (cast to float32 first).
    """
    path = Path(path)
    array = volume.array
    if array.dtype == np.float16:
        raise DataValueError(
            f"cannot write float16 to {path}: ITK has no float16 pixel type; cast to float32"
        )
    if array.dtype.kind == "c":
        raise DataValueError(
            f"cannot write complex data ({array.dtype}) to {path}: MetaImage/NRRD would store it as "
            "two real channels; write .nii.gz, .tif, .h5 or .zarr, or split real and imaginary parts"
        )
    if array.dtype == np.bool_:
        logger.info("ITK has no boolean pixel type: writing %s as uint8", path)
        array = array.astype(np.uint8)
    import SimpleITK as sitk  # imported on first use (see read_itk)

    if volume.num_channels == 1:
        image = sitk.GetImageFromArray(np.ascontiguousarray(array[0]))
    else:
        image = sitk.GetImageFromArray(np.ascontiguousarray(np.moveaxis(array, 0, -1)), isVector=True)
    image.SetSpacing(tuple(float(s) for s in volume.spacing[::-1]))
    image.SetOrigin(tuple(float(o) for o in volume.origin[::-1]))
    image.SetDirection(tuple(float(v) for v in np.asarray(volume.direction)[::-1, ::-1].ravel()))
    image.SetMetaData(_META_KEY, json.dumps(geometry_to_attrs(volume)))
    if volume.unit is not None:
        image.SetMetaData(_UNIT_KEY, volume.unit)
    with atomic_output(path) as tmp:
        try:
            sitk.WriteImage(image, str(tmp), useCompression=True)
        except RuntimeError as err:
            raise FormatError(f"SimpleITK cannot write {path}: {_first_line(err)}") from err
    logger.debug("wrote %s %s to %s", array.shape, array.dtype, path)
    return path


def _exact_geometry(
    image: sitk.Image, spacing: tuple[float, ...], origin: tuple[float, ...], direction: np.ndarray
) -> tuple[tuple[float, ...], tuple[float, ...], np.ndarray] | None:
    """The exact geometry medseg stored in the header, if it agrees with what ITK parsed.

    NRRD stores ``direction * spacing`` and ITK divides it back, which can move the
    last bit; the JSON copy restores the exact values. It is ignored when the file's
    geometry was edited since (it no longer matches).
    """
    if not image.HasMetaDataKey(_META_KEY):
        return None
    try:
        record = json.loads(image.GetMetaData(_META_KEY))
        exact = (
            tuple(float(v) for v in record["spacing"]),
            tuple(float(v) for v in record["origin"]),
            np.asarray(record["direction"], dtype=np.float64),
        )
    except (ValueError, KeyError, TypeError):
        return None
    ok = (
        exact[2].shape == direction.shape
        and np.allclose(exact[0], spacing, rtol=1e-9, atol=1e-12)
        and np.allclose(exact[1], origin, rtol=1e-9, atol=1e-9)
        and np.allclose(exact[2], direction, rtol=0, atol=1e-9)
    )
    return exact if ok else None


def _first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    useful = [line for line in lines if "ERROR" in line or "Exception" in line or "Unable" in line]
    return (useful or lines or [type(err).__name__])[-1]
