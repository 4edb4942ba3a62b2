"""2D "natural" image files: PNG, BMP, JPEG (Pillow).

Axis order
----------
Always 2D, channels first: a greyscale (or palette, or 1-bit) image is ``(1, Y, X)``,
RGB is ``(3, Y, X)``, RGBA ``(4, Y, X)``, grey+alpha ``(2, Y, X)``. Palette images
keep their indices (label PNGs); the palette is kept in ``meta["palette"]``.

Data types: 1-bit -> ``bool``, 8-bit -> ``uint8``, 16-bit greyscale PNG -> ``uint16``
(MoNuSeg/cell-tracking instance labels). What can be written:

======  ==================  ==========================================
format  channels            dtypes
======  ==================  ==========================================
PNG     1, 2, 3, 4          uint8; bool and uint16 with 1 channel
BMP     1, 3                uint8
JPEG    1, 3                uint8 (lossy: pixel values change)
======  ==================  ==========================================

Geometry
--------
PNG (``tEXt`` chunk ``medseg``) and JPEG (``COM`` comment) written by medseg carry the
full 2D geometry as JSON, so a round trip is exact. BMP has nowhere to put it: writing
a BMP with non-default geometry logs a warning and the geometry is lost. For files
not written by medseg spacing is 1, origin 0 and direction identity: the DPI such
files carry is display metadata, not a physical pixel size (it is kept in
``meta["dpi"]``), and the unit is ``None``.

A file whose content is a TIFF (e.g. a stack saved as ``.png``) is read as TIFF, every
page; other multi-frame files (animated PNG, GIF) raise :class:`FormatError`.
"""

from __future__ import annotations

import json
import logging
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from medseg.errors import DataValueError, FormatError, ShapeError
from medseg.io._common import atomic_output, geometry_to_attrs, make_volume
from medseg.io.paths import require_file
from medseg.io.tiff import read_tiff
from medseg.io.volume import Volume

__all__ = ["NATURAL_SUFFIXES", "read_natural", "write_natural"]

logger = logging.getLogger(__name__)

NATURAL_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg")

_META_KEY = "medseg"
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF
_PIL_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error)
_FORMATS = {".png": "PNG", ".bmp": "BMP", ".jpg": "JPEG", ".jpeg": "JPEG"}
_CHANNELS = {"PNG": (1, 2, 3, 4), "BMP": (1, 3), "JPEG": (1, 3)}
_MODES = {2: "LA", 3: "RGB", 4: "RGBA"}
_VOLUME_FORMATS = ".tif, .nii.gz, .mha, .nrrd, .h5 or .zarr"


def read_natural(path: str | Path) -> Volume:
    """Read a PNG/BMP/JPEG image as a 2D :class:`Volume` ``(C, Y, X)``.

    Raises
    ------
    DataNotFoundError
        The file does not exist.
    FormatError
        The file is not a readable image or is truncated.
    """
    path = Path(path)
    require_file(path)
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic in _TIFF_MAGIC:
        logger.warning("%s holds a TIFF despite its suffix; reading every page as TIFF", path)
        return read_tiff(path)
    try:
        with Image.open(path) as image:
            frames = int(getattr(image, "n_frames", 1))
            if frames > 1:
                raise FormatError(
                    f"image {path} holds {frames} frames ({image.format}); medseg reads single images "
                    "from .png/.bmp/.jpg: save the frames as a .tif stack"
                )
            image.load()
            array, meta = _to_array(image, path)
            record = _medseg_record(image)
    except _PIL_ERRORS as err:
        raise FormatError(
            f"cannot read image {path}: {err} (is the file truncated or not an image?)"
        ) from err
    geometry: dict[str, Any] = {}
    if record is not None:
        geometry = {k: record[k] for k in ("spacing", "origin", "direction", "unit") if k in record}
    return make_volume(path, array, meta=meta, **geometry)


def write_natural(volume: Volume, path: str | Path) -> Path:
    """Write a 2D ``volume`` as PNG, BMP or JPEG (chosen by suffix), atomically.

    Raises
    ------
    ShapeError
        The volume is 3D or has a channel count the format cannot hold.
    DataValueError
        The dtype cannot be stored in the format (see the module docstring).
    """
    path = Path(path)
    fmt = _FORMATS[path.suffix.lower()]
    array = volume.array
    if volume.ndim != 2:
        raise ShapeError(
            f"cannot write a 3D volume {volume.array.shape} to {fmt} file {path}: {fmt} holds 2D images "
            f"only; use {_VOLUME_FORMATS} for volumes"
        )
    channels = volume.num_channels
    if channels not in _CHANNELS[fmt]:
        raise ShapeError(
            f"cannot write {channels} channels to {fmt} file {path}: {fmt} holds "
            f"{', '.join(map(str, _CHANNELS[fmt]))} channel(s); use .tif, .h5 or .zarr for {channels} channels"
        )
    dtype = array.dtype
    allowed = (dtype == np.uint8) or (fmt == "PNG" and channels == 1 and dtype in (np.bool_, np.uint16))
    if not allowed:
        hint = "uint8 (or uint16/bool for single-channel PNG)" if fmt == "PNG" else "uint8"
        raise DataValueError(
            f"cannot write dtype {dtype} with {channels} channel(s) to {fmt} file {path}: {fmt} stores "
            f"{hint}; cast the array (e.g. array.astype(np.uint8) if values fit) or use .tif"
        )
    data = array[0] if channels == 1 else np.moveaxis(array, 0, -1)
    image = Image.fromarray(np.ascontiguousarray(data), mode=None if channels == 1 else _MODES[channels])
    record = json.dumps({"version": 1, **geometry_to_attrs(volume), "unit": volume.unit})
    kwargs: dict[str, Any] = {"format": fmt}
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text(_META_KEY, record)
        kwargs["pnginfo"] = info
    elif fmt == "JPEG":
        kwargs.update(quality=95, comment=(_META_KEY + record).encode())
    else:
        default = volume.spacing == (1.0, 1.0) and volume.origin == (0.0, 0.0)
        if not (default and np.array_equal(volume.direction, np.eye(2))):
            logger.warning(
                "BMP cannot store geometry: spacing %s, origin %s and direction of %s are lost; "
                "write PNG or TIFF to keep them",
                volume.spacing,
                volume.origin,
                path,
            )
    with atomic_output(path) as tmp:
        image.save(tmp, **kwargs)
    logger.debug("wrote %s %s to %s", array.shape, dtype, path)
    return path


def _to_array(image: Image.Image, path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    mode = image.mode
    meta: dict[str, Any] = {"source": str(path), "format": (image.format or "").lower(), "mode": mode}
    if "dpi" in image.info:
        meta["dpi"] = tuple(float(d) for d in image.info["dpi"])
    if mode == "P":
        palette = image.getpalette()
        if palette is not None:
            meta["palette"] = palette
    elif mode in ("CMYK", "YCbCr", "PA", "RGBX", "RGBa", "La", "HSV", "LAB"):
        image = image.convert("RGBA" if "A" in mode or "a" in mode else "RGB")
    array = np.asarray(image)
    if mode == "I" and array.dtype == np.int32 and image.format == "PNG":
        array = array.astype(np.uint16)  # old Pillow opens 16-bit PNG as 32-bit "I"
    if array.ndim == 2:
        array = array[None]
    elif array.ndim == 3:
        array = np.moveaxis(array, -1, 0)
    else:
        raise FormatError(f"image {path} decoded to an array of shape {array.shape}; expected 2D")
    return np.ascontiguousarray(array), meta


def _medseg_record(image: Image.Image) -> dict[str, Any] | None:
    text = image.info.get(_META_KEY)
    if text is None:
        comment = image.info.get("comment", b"")
        if isinstance(comment, bytes) and comment.startswith(_META_KEY.encode()):
            text = comment[len(_META_KEY) :].decode()
    if not text:
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        logger.warning("ignoring unreadable medseg metadata in %s: %s", image.filename, err)
        return None
    return record if isinstance(record, dict) else None
