"""Physical units of spacing: one policy for every format.

A :class:`~medseg.io.Volume` (and a :class:`~medseg.io.LazyArray`) carries ``unit``:
``"nm"``, ``"um"``, ``"mm"`` or ``None``. ``None`` means the file does not say, and the
spacing is then a ratio of pixel sizes (usually 1).

What each format contributes
----------------------------
- NIfTI: the spatial unit of ``xyzt_units`` (``mm``, ``micron``; ``meter`` becomes mm);
  ``unknown`` gives ``None``. Writing stores the volume's unit (``nm`` is written as
  ``micron`` with the spacing divided by 1000; ``None`` as ``unknown``).
- TIFF: OME ``PhysicalSize*Unit`` (default µm, as the OME schema says), ImageJ's
  ``unit`` with the resolution tags, or ``ResolutionUnit`` CENTIMETER (converted to µm).
  ``ResolutionUnit`` INCH is the DPI of an ordinary image and is ignored (spacing 1,
  kept in ``meta["dpi"]``), as are PNG/JPEG/BMP DPI.
- HDF5/Zarr: the ``unit`` attribute medseg writes; ``element_size_um`` implies µm.
- MetaImage/NRRD and PNG/JPEG: the unit medseg stored with the geometry, else ``None``.

Units other than nm/µm/mm are converted: smaller ones to nm, larger ones to mm (or to
the ``target`` a format asks for).
"""

from __future__ import annotations

from collections.abc import Sequence

from medseg.errors import DataValueError

__all__ = ["UNITS", "convert_spacing", "normalize_unit"]

#: The units a Volume may carry.
UNITS: tuple[str, ...] = ("nm", "um", "mm")

# length of one unit in nanometres
_NM = {"pm": 1e-3, "angstrom": 0.1, "nm": 1.0, "um": 1e3, "mm": 1e6, "cm": 1e7, "m": 1e9, "inch": 2.54e7}
_ALIASES = {
    "pm": "pm",
    "picometer": "pm",
    "å": "angstrom",
    "a": "angstrom",
    "angstrom": "angstrom",
    "nm": "nm",
    "nanometer": "nm",
    "nanometre": "nm",
    "um": "um",
    "µm": "um",
    "μm": "um",
    "\\u00b5m": "um",
    "micron": "um",
    "microns": "um",
    "micrometer": "um",
    "micrometre": "um",
    "mm": "mm",
    "millimeter": "mm",
    "millimetre": "mm",
    "cm": "cm",
    "centimeter": "cm",
    "centimetre": "cm",
    "m": "m",
    "meter": "m",
    "metre": "m",
    "inch": "inch",
    "in": "inch",
}
_NO_UNIT = ("", "px", "pixel", "pixels", "unknown", "none")


def _key(unit: str) -> str | None:
    text = unit.strip().lower()
    if text in _NO_UNIT:
        return None
    if text not in _ALIASES:
        raise DataValueError(
            f"unknown length unit {unit!r}: use one of {', '.join(UNITS)} (or None for pixels)"
        )
    return _ALIASES[text]


def normalize_unit(unit: str | None) -> str | None:
    """The canonical spelling (``"nm"``, ``"um"``, ``"mm"``) of ``unit``; ``None`` for no unit.

    Raises
    ------
    DataValueError
        A unit that is not a length, or a length other than nm/µm/mm (convert the
        spacing with :func:`convert_spacing` first).

    Examples
    --------
    >>> normalize_unit("micron")
    'um'
    """
    if unit is None:
        return None
    key = _key(str(unit))
    if key is not None and key not in UNITS:
        raise DataValueError(
            f"unit {unit!r} is not one of {', '.join(UNITS)}: convert the spacing with "
            "medseg.io.units.convert_spacing"
        )
    return key


def convert_spacing(
    values: Sequence[float], unit: str | None, *, target: str | None = None
) -> tuple[tuple[float, ...], str | None]:
    """Express ``values`` given in ``unit`` in one of :data:`UNITS`.

    nm, µm and mm are kept (unless ``target`` names another); smaller units become nm,
    larger ones mm, or ``target`` when given. ``None`` (no unit) is returned unchanged.

    Examples
    --------
    >>> convert_spacing((0.5,), "cm", target="um")
    ((5000.0,), 'um')
    >>> convert_spacing((2.0,), "Å")
    ((0.2,), 'nm')
    """
    key = _key(unit) if unit is not None else None
    if key is None:
        return tuple(float(v) for v in values), None
    if target is not None:
        goal = normalize_unit(target)
    elif key in UNITS:
        goal = key
    else:
        goal = "nm" if _NM[key] < _NM["nm"] else "mm"
    factor = _NM[key] / _NM[goal]
    return tuple(float(v) * factor for v in values), goal
