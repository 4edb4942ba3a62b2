"""TIFF stacks, OME-TIFF and ImageJ TIFF (tifffile).

Axis order
----------
Arrays come back channels first, ``(C, Z, Y, X)`` or ``(C, Y, X)``:

- a multi-page greyscale TIFF (Z pages of Y x X, e.g. the ISBI 2012 EM stacks) is
  ``(1, Z, Y, X)``; a single greyscale page is ``(1, Y, X)``;
- an RGB(A) page (samples ``S``) is ``(3, Y, X)`` (``(4, Y, X)``); a stack of RGB pages
  is ``(3, Z, Y, X)``; where greyscale is required (label and probability maps),
  :func:`medseg.io.read_greyscale` reads one *planar* RGB(A) page, which is what
  ``tifffile.imwrite`` makes of a 3- or 4-slice stack, as ``(1, Z, Y, X)``;
- OME/ImageJ hyperstacks map ``C``/``S`` to the channel axis and the one remaining
  non-singleton axis besides ``Y``/``X`` (``Z``, ``T``, ``I``, ``Q``...) to ``Z``; files
  with two such axes (e.g. ``TZYX`` with T > 1 and Z > 1) raise :class:`FormatError`.

Geometry
--------
Files written by medseg carry the full geometry (spacing, origin, direction, the
stored axis layout) as JSON: in tifffile's shaped ``ImageDescription`` for ``.tif``,
in the OME ``Image/Description`` element for ``.ome.tif``; a round trip is exact.
They also carry standard tags for other tools: ``XResolution``/``YResolution`` =
1/spacing (``ResolutionUnit`` NONE) and, for OME, ``PhysicalSizeX/Y/Z``.

Other files: spacing and its unit come from OME ``PhysicalSize{X,Y,Z}`` (unit default
µm), or from the resolution tags (spacing = 1/resolution) with ImageJ's ``unit`` and
``spacing`` (Z), or ``ResolutionUnit`` CENTIMETER (converted to µm). An INCH
resolution is the DPI of an ordinary image and is ignored (spacing 1, unit ``None``,
kept in ``meta["dpi"]``); see :mod:`medseg.io.units`. Origin is 0, direction identity. Files are written
uncompressed and contiguous so :func:`open_tiff` can memory-map them.

A folder of single-section TIFFs opens as one lazy stack (:func:`open_tiff_folder`,
also :func:`medseg.io.open_array` on the folder).
"""

from __future__ import annotations

import json
import logging
import struct
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from medseg.errors import DataNotFoundError, DataValueError, FormatError
from medseg.io._common import atomic_output, geometry_to_attrs, make_volume
from medseg.io.lazy import LazyArray
from medseg.io.paths import natural_key, require_dir, require_file
from medseg.io.units import convert_spacing
from medseg.io.volume import Volume

__all__ = ["TIFF_SUFFIXES", "is_planar_rgb_page", "open_tiff", "open_tiff_folder", "read_tiff", "write_tiff"]

logger = logging.getLogger(__name__)

TIFF_SUFFIXES = (".tif", ".tiff", ".ome.tif", ".ome.tiff")

_META_KEY = "medseg"
_OME_PREFIX = "medseg-geometry:"
_CHANNEL_AXES = "CS"
# what can go wrong inside tifffile on a corrupt or truncated file
_TIFF_ERRORS = (tifffile.TiffFileError, ValueError, OSError, EOFError, struct.error, IndexError, KeyError)
_RGB_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))


def read_tiff(path: str | Path) -> Volume:
    """Read a TIFF / OME-TIFF / ImageJ TIFF into a :class:`Volume` ``(C, [Z,] Y, X)``.

    Parameters
    ----------
    path : str or Path
        ``.tif``, ``.tiff``, ``.ome.tif`` or ``.ome.tiff`` file.

    Returns
    -------
    Volume
        The first image series, channels first, with the geometry described in the
        module docstring. ``meta`` holds ``source``, ``format``, ``axes`` (the file's
        axes) and ``unit`` when the file names one.

    Raises
    ------
    DataNotFoundError
        The file does not exist.
    FormatError
        The file is not a readable TIFF, is truncated, or has more axes than medseg
        can map to ``(C, Z, Y, X)``.
    """
    path = Path(path)
    require_file(path)
    try:
        with tifffile.TiffFile(path) as tif:
            info = _describe(tif, path)
            data = tif.series[0].asarray().reshape(info["shape"])
    except FormatError:
        raise
    except _TIFF_ERRORS as err:
        raise FormatError(f"cannot read TIFF {path}: {err} (is the file truncated or not a TIFF?)") from err
    source = LazyArray(data, info["plan"], path=str(path), **_geometry_kwargs(info))
    return make_volume(
        path,
        np.ascontiguousarray(source[...]),
        spacing=info["spacing"],
        origin=info["origin"],
        direction=info["direction"],
        meta=info["meta"],
        unit=info["unit"],
    )


def open_tiff(path: str | Path) -> LazyArray:
    """Open a TIFF lazily, ``(C, [Z,] Y, X)``: memory-mapped if contiguous, else via ``aszarr``.

    Only the pages touched by an index are read. Close the result (or use ``with``).
    """
    path = Path(path)
    require_file(path)
    tif = None
    try:
        try:
            source: Any = tifffile.memmap(path, mode="r")
            with tifffile.TiffFile(path) as probe:
                info = _describe(probe, path)
            close = None
        except ValueError as err:  # not memory-mappable (compressed, tiled, scattered)
            logger.debug("%s is not memory-mappable (%s); reading through aszarr", path, err)
            import zarr

            tif = tifffile.TiffFile(path)
            info = _describe(tif, path)
            source = zarr.open(tif.aszarr(), mode="r")
            close = tif.close
    except FormatError:
        if tif is not None:
            tif.close()
        raise
    except _TIFF_ERRORS as err:
        if tif is not None:
            tif.close()
        raise FormatError(f"cannot open TIFF {path}: {err} (is the file truncated or not a TIFF?)") from err
    if tuple(source.shape) != info["shape"] and isinstance(source, np.ndarray):
        source = source.reshape(info["shape"])
    if tuple(source.shape) != info["shape"]:
        if tif is not None:
            tif.close()
        raise FormatError(
            f"cannot open TIFF {path} lazily: stored shape {tuple(source.shape)} does not match "
            f"series shape {info['shape']}; use medseg.io.read instead"
        )
    return LazyArray(source, info["plan"], path=str(path), close=close, **_geometry_kwargs(info))


def write_tiff(volume: Volume, path: str | Path) -> Path:
    """Write ``volume`` as an uncompressed TIFF (OME-TIFF for ``.ome.tif``), atomically.

    Layout: one channel is written as greyscale pages (``Z`` pages of ``Y x X``), 3 or 4
    channels of uint8/uint16 as RGB(A) pages, anything else as ``C*Z`` greyscale pages.
    The full geometry is stored as described in the module docstring.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    array = volume.array
    spatial = "ZYX"[-volume.ndim :]
    channels = volume.num_channels
    if channels == 1:
        data, axes, photometric = array[0], spatial, "minisblack"
    elif channels in (3, 4) and array.dtype in _RGB_DTYPES:
        data, axes, photometric = np.moveaxis(array, 0, -1), spatial + "C", "rgb"
    else:
        data, axes, photometric = array, "C" + spatial, "minisblack"
    if data.dtype == np.bool_:
        raise FormatError(
            f"cannot write boolean data to TIFF {path}: cast to uint8 first (array.astype(np.uint8))"
        )
    record = {
        "version": 1,
        "axes": axes,
        "shape": list(data.shape),
        **geometry_to_attrs(volume),
        "unit": volume.unit,
    }
    kwargs: dict[str, Any] = {
        "photometric": photometric,
        "resolution": (1.0 / volume.spacing[-1], 1.0 / volume.spacing[-2]),
        "resolutionunit": "NONE",
    }
    if _is_ome(path):
        ome_axes = axes.replace("C", "S") if photometric == "rgb" else axes
        metadata: dict[str, Any] = {
            "axes": ome_axes,
            "PhysicalSizeX": volume.spacing[-1],
            "PhysicalSizeY": volume.spacing[-2],
            "Description": _OME_PREFIX + json.dumps(record),
        }
        if volume.unit is not None:
            ome_unit = "µm" if volume.unit == "um" else volume.unit
            metadata.update({f"PhysicalSize{a}Unit": ome_unit for a in "XYZ"[: volume.ndim]})
        if volume.ndim == 3:
            metadata["PhysicalSizeZ"] = volume.spacing[0]
        kwargs.update(ome=True, metadata=metadata)
    else:
        kwargs.update(metadata={_META_KEY: record})
    with atomic_output(path) as tmp:
        try:
            tifffile.imwrite(tmp, data, **kwargs)
        except (ValueError, TypeError, tifffile.OmeXmlError) as err:
            raise DataValueError(
                f"cannot write {data.dtype} data {data.shape} to TIFF {path}: {err}; "
                "use .tif (not OME), .h5 or .zarr, or cast the array"
            ) from err
    logger.debug("wrote %s %s to %s", data.shape, data.dtype, path)
    return path


def is_planar_rgb_page(path: str | Path) -> bool:
    """True for one planar RGB(A) page (no medseg record): ``tifffile.imwrite``'s default for a 3 or 4 slice stack.

    ``tifffile.imwrite(path, array)`` stores a ``(3, Y, X)`` or ``(4, Y, X)`` uint8/uint16
    array as one RGB(A) page with separate sample planes (axes ``SYX``). Cameras and image
    editors write colour as contiguous samples (``YXS``), so such a page is most likely a
    small stack; readers that need greyscale take it as one (:func:`medseg.io.read_greyscale`).
    """
    try:
        with tifffile.TiffFile(path) as tif:
            if len(tif.pages) != 1 or _medseg_record(tif) is not None:
                return False
            page = tif.pages[0]
            return (
                page.photometric == tifffile.PHOTOMETRIC.RGB
                and page.planarconfig == tifffile.PLANARCONFIG.SEPARATE
                and tif.series[0].axes.startswith("S")
            )
    except _TIFF_ERRORS:
        return False


def _is_ome(path: Path) -> bool:
    return path.name.lower().endswith((".ome.tif", ".ome.tiff"))


def _geometry_kwargs(info: dict[str, Any]) -> dict[str, Any]:
    return {k: info[k] for k in ("spacing", "origin", "direction", "meta", "unit")}


def _describe(tif: tifffile.TiffFile, path: Path) -> dict[str, Any]:
    """Series shape, axis plan (output axis -> native axis) and geometry of ``tif``."""
    if not tif.series:
        raise FormatError(f"TIFF {path} holds no image series")
    series = tif.series[0]
    shape = tuple(int(n) for n in series.shape)
    file_axes = series.axes
    meta: dict[str, Any] = {"source": str(path), "format": "tiff", "axes": file_axes}
    record = _medseg_record(tif)
    stored = tuple(int(n) for n in record.get("shape", ())) if record is not None else ()
    if record is not None and len(record["axes"]) == len(stored) and np.prod(stored) == np.prod(shape):
        shape, axes = stored, record["axes"]
        spatial = "ZYX" if "Z" in axes else "YX"
        plan = [axes.index(c) if c in axes else None for c in "C" + spatial]
        nd = len(spatial)
        return {
            "shape": shape,
            "plan": plan,
            "spacing": tuple(record["spacing"]),
            "origin": tuple(record["origin"]),
            "direction": np.asarray(record["direction"], dtype=np.float64).reshape(nd, nd),
            "meta": meta,
            "unit": record.get("unit"),
        }
    plan = _plan_axes(file_axes, shape, path)
    nd = len(plan) - 1
    spacing_xyz, unit, extra = _spacing_xyz(tif)
    meta.update(extra)
    spacing = tuple(reversed(spacing_xyz[:nd]))
    return {
        "shape": shape,
        "plan": plan,
        "spacing": spacing,
        "origin": (0.0,) * nd,
        "direction": np.eye(nd),
        "meta": meta,
        "unit": unit,
    }


def _plan_axes(axes: str, shape: tuple[int, ...], path: Path) -> list[int | None]:
    """Map tifffile series axes to ``(C, [Z,] Y, X)``; singleton axes are dropped."""
    if "Y" not in axes or "X" not in axes:
        raise FormatError(f"TIFF {path} has axes {axes!r} without Y and X; medseg reads image stacks only")
    channel = [i for i, a in enumerate(axes) if a in _CHANNEL_AXES and shape[i] > 1]
    extra = [i for i, a in enumerate(axes) if a not in _CHANNEL_AXES + "YX" and shape[i] > 1]
    if len(channel) > 1 or len(extra) > 1:
        raise FormatError(
            f"TIFF {path} has axes {axes!r} with shape {shape}: medseg maps at most one channel "
            "axis (C or S) and one stack axis (Z/T/I/Q) to (C, Z, Y, X); split the file first "
            "(e.g. one file per time point)"
        )
    return [channel[0] if channel else None, *extra, axes.index("Y"), axes.index("X")]


def _medseg_record(tif: tifffile.TiffFile) -> dict[str, Any] | None:
    """The geometry record medseg wrote into this file, if any."""
    try:
        if tif.is_ome:
            root = ET.fromstring(tif.ome_metadata or "")
            for element in root.iter():
                if element.tag.endswith("Description") and (element.text or "").startswith(_OME_PREFIX):
                    return json.loads(element.text[len(_OME_PREFIX) :])
            return None
        shaped = tif.shaped_metadata
        if shaped and isinstance(shaped[0].get(_META_KEY), dict):
            return shaped[0][_META_KEY]
    except (ET.ParseError, json.JSONDecodeError, TypeError, AttributeError) as err:
        logger.warning("ignoring unreadable medseg metadata in %s: %s", tif.filename, err)
    return None


def _spacing_xyz(tif: tifffile.TiffFile) -> tuple[tuple[float, float, float], str | None, dict[str, Any]]:
    """Voxel size ``(x, y, z)``, its unit and extra metadata, by the policy of :mod:`medseg.io.units`.

    OME ``PhysicalSize*`` (unit default µm) first; then the resolution tags with
    ImageJ's ``unit`` and ``spacing`` (Z); then ``ResolutionUnit`` CENTIMETER (converted
    to µm). INCH resolution is an ordinary image's DPI: ignored (``meta["dpi"]``).
    """
    if tif.is_ome:
        try:
            root = ET.fromstring(tif.ome_metadata or "")
        except ET.ParseError:
            root = None
        pixels = None if root is None else next((e for e in root.iter() if e.tag.endswith("Pixels")), None)
        if pixels is not None and any(pixels.get(f"PhysicalSize{a}") for a in "XYZ"):
            size = tuple(float(pixels.get(f"PhysicalSize{a}", 1.0)) for a in "XYZ")
            values, unit = convert_spacing(size, pixels.get("PhysicalSizeXUnit", "µm"))
            return (values[0], values[1], values[2]), unit, {}
    page = tif.pages.first
    sx = sy = sz = 1.0
    unit: str | None = None
    extra: dict[str, Any] = {}
    if "XResolution" in page.tags and "YResolution" in page.tags:
        rx, ry = page.resolution
        resolution_unit = int(page.resolutionunit)
        if rx > 0 and ry > 0:
            if resolution_unit == 2:  # INCH: display DPI, not a pixel size
                extra["dpi"] = (float(rx), float(ry))
            else:
                sx, sy = 1.0 / rx, 1.0 / ry
                unit = "cm" if resolution_unit == 3 else None
    z_known = False
    if tif.is_imagej:
        ij = tif.imagej_metadata or {}
        z_known = "spacing" in ij
        sz = float(ij.get("spacing", 1.0))
        ij_unit = ij.get("unit")
        if ij_unit and "dpi" not in extra:
            unit = str(ij_unit)
    try:
        values, unit = convert_spacing((sx, sy, sz), unit, target="um" if unit == "cm" else None)
    except DataValueError:
        logger.warning("%s: unknown spacing unit %r; spacing kept without unit", tif.filename, unit)
        values, unit = (sx, sy, sz), None
    # a file without a Z spacing keeps the default Z of 1: it is no length in the file's unit
    # (a CENTIMETER resolution would otherwise turn it into 10000 um)
    return (values[0], values[1], values[2] if z_known else sz), unit, extra


class _SectionFiles:
    """A ``(Z, Y, X)`` array-like over single-section TIFF files; indexing reads only the sections needed."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files
        first = self._read(0)
        self.dtype = first.dtype
        self.shape = (len(files), *first.shape)

    def _read(self, i: int) -> np.ndarray:
        volume = read_tiff(self.files[i])
        if volume.ndim != 2 or volume.num_channels != 1:
            raise FormatError(
                f"section {self.files[i]} has shape {volume.array.shape}, expected one greyscale section "
                "(1, Y, X); a folder stack holds one 2D page per file"
            )
        page = volume.array[0]
        if i and (page.shape != self.shape[1:] or page.dtype != self.dtype):
            raise FormatError(
                f"section {self.files[i]} has shape {page.shape} and dtype {page.dtype}, expected "
                f"{self.shape[1:]} and {self.dtype} like {self.files[0].name}"
            )
        return page

    def __getitem__(self, key: tuple[Any, ...]) -> np.ndarray:
        z, y, x = key
        if isinstance(z, slice):
            indices = list(range(self.shape[0]))[z]
            if not indices:
                return np.zeros((0, *self.shape[1:]), self.dtype)[:, y, x]
            return np.stack([self._read(i)[y, x] for i in indices])
        return self._read(int(z))[y, x]


def open_tiff_folder(folder: str | Path, pattern: str = "*.tif*") -> LazyArray:
    """A folder of single-section TIFFs as one lazy ``(1, Z, Y, X)`` stack, sections in natural order.

    Geometry (spacing, unit) is that of the first section; indexing reads only the
    sections it needs. All sections must share shape and dtype (checked as they are read).

    Raises
    ------
    DataNotFoundError
        No folder, or no file matching ``pattern`` in it.
    FormatError
        A section that is not one greyscale page, or differs from the first.
    """
    folder = require_dir(Path(folder), "TIFF section folder", "check the path")
    files = sorted((p for p in folder.glob(pattern) if p.is_file()), key=natural_key)
    if not files:
        raise DataNotFoundError(f"no files matching {pattern!r} in {folder}")
    source = _SectionFiles(files)
    with tifffile.TiffFile(files[0]) as tif:
        info = _describe(tif, files[0])
    spacing = (1.0, *info["spacing"])
    meta = {"source": str(folder), "format": "tiff-folder", "sections": len(files)}
    return LazyArray(
        source,
        [None, 0, 1, 2],
        spacing=spacing,
        origin=(0.0, *info["origin"]),
        direction=np.eye(3),
        path=str(folder),
        meta=meta,
        unit=info["unit"],
    )
