"""Challenge file formats: one module per challenge, each a :class:`ChallengeFormat` found by name.

``get_format(name)`` returns the format object (``kind``, ``needs_probabilities``,
``geometry_must_match``, ``read``, ``write``, ``write_reference``, ``match``, ``score``,
``pool``); ``write_submission(format_name, array, out_dir, case_id, **geometry)``
validates and atomically writes one case; ``read_submission(format_name, path)`` reads it
back. A new format is one module defining a :class:`ChallengeFormat` subclass, added
with :func:`register_format`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medseg.eval.formats import cremi, ctc, dental, glas, instances, isbi2012, labelmap, monuseg
from medseg.eval.formats.base import ChallengeFormat, HeldOutLayout, ScoreOptions
from medseg.eval.formats.registry import FORMATS, format_names, get_format, register_format, unregister_format
from medseg.eval.options import FormatKind
from medseg.io import Volume
from medseg.labels import DENTAL_CLASSES

__all__ = [
    "DENTAL_CLASSES",
    "FORMATS",
    "ChallengeFormat",
    "FormatKind",
    "HeldOutLayout",
    "ScoreOptions",
    "format_names",
    "get_format",
    "read_submission",
    "register_format",
    "unregister_format",
    "write_submission",
]

for _module in (isbi2012, ctc, glas, monuseg, dental, cremi, instances, labelmap):
    register_format(_module.FORMAT, replace=True)


def write_submission(
    format_name: str | ChallengeFormat, array: np.ndarray, out_dir: str | Path, case_id: str | int, **geometry
) -> Path:
    """Validate and atomically write one case in a challenge format; returns the file path.

    Parameters
    ----------
    format_name : str or ChallengeFormat
        A registered format (``isbi2012``, ``ctc``, ``glas``, ``monuseg``, ``dental``,
        ``cremi``, ``instances``, ``labelmap``).
    array : np.ndarray
        ``isbi2012``: float membrane-probability map in [0, 1] (1 = non-membrane),
        ``(Z, Y, X)`` or ``(Y, X)``; instance formats: instance ids; class formats: class ids.
    out_dir : path
        Target folder (for CTC the ``XX_RES`` folder).
    case_id : str or int
        Case name (CTC: frame number).
    **geometry
        ``spacing``, ``origin``, ``direction`` (formats that keep geometry), ``suffix``
        (``labelmap``/``instances``: ``.nii.gz``/``.tif``...).

    Raises
    ------
    FormatError
        Wrong dtype, bit depth, value range or name; the message gives the fix.
    """
    return get_format(format_name).write(array, Path(out_dir), case_id, **geometry)


def read_submission(format_name: str | ChallengeFormat, path: str | Path) -> Volume:
    """Read one file of a challenge format (checks the format's dtype rules).

    Returns a one-channel :class:`~medseg.io.Volume` ``(1, *spatial)`` with the geometry
    the file carries; ``volume.array[0]`` is the map itself.
    """
    return get_format(format_name).read(Path(path))
