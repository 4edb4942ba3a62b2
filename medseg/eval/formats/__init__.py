"""Challenge file formats and the registry used by ``medseg predict/evaluate --format``.

``write_submission(format_name, array, out_dir, case_id, **geometry)`` validates
and atomically writes one case; ``read_submission(format_name, path)`` reads it back.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np

from medseg.errors import ConfigError
from medseg.eval.formats.challenges import DENTAL_CLASSES, FORMATS, SubmissionFormat
from medseg.io import Volume

__all__ = [
    "DENTAL_CLASSES",
    "FORMATS",
    "SubmissionFormat",
    "get_format",
    "write_submission",
    "read_submission",
]


def get_format(name: str) -> SubmissionFormat:
    """Look up a format by name; an unknown name lists the choices."""
    try:
        return FORMATS[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), FORMATS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown format {name!r}{hint}; choose from {', '.join(FORMATS)}") from None


def write_submission(
    format_name: str, array: np.ndarray, out_dir: str | Path, case_id: str | int, **geometry
) -> Path:
    """Validate and atomically write one case in a challenge format; returns the file path.

    Parameters
    ----------
    format_name : str
        One of :data:`FORMATS` (``isbi2012``, ``ctc``, ``glas``, ``monuseg``, ``dental``, ``labelmap``).
    array : np.ndarray
        ``isbi2012``: float membrane-probability map in [0, 1] (1 = non-membrane),
        ``(Z, Y, X)`` or ``(Y, X)``; ``ctc``/``glas``/``monuseg``: instance ids;
        ``dental``/``labelmap``: class ids.
    out_dir : path
        Target folder (for CTC the ``XX_RES`` folder).
    case_id : str or int
        Case name (CTC: frame number).
    **geometry
        ``spacing`` (``labelmap`` NIfTI), ``suffix`` (``labelmap``: ``.nii.gz``/``.tif``).

    Raises
    ------
    FormatError
        Wrong dtype, bit depth, value range or name; the message gives the fix.
    """
    return get_format(format_name).write(array, Path(out_dir), case_id, **geometry)


def read_submission(format_name: str, path: str | Path) -> Volume:
    """Read one file of a challenge format (checks the format's dtype rules).

    Returns a one-channel :class:`~medseg.io.Volume` ``(1, *spatial)`` with the geometry
    the file carries; ``volume.array[0]`` is the map itself.
    """
    return get_format(format_name).read(Path(path))
