"""ISBI 2015 dental bitewings: 8-bit PNG class maps in :data:`medseg.labels.DENTAL_CLASSES` order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medseg.errors import FormatError
from medseg.eval.formats._io import atomic_write, read_volume, stored_array
from medseg.eval.formats.base import CASE, ClassMapFormat, check_integer, safe_case, single_channel
from medseg.io import Volume
from medseg.labels import DENTAL_CLASSES

__all__ = ["FORMAT", "DentalFormat"]


class DentalFormat(ClassMapFormat):
    name = "dental"
    description = f"dental bitewing: 8-bit PNG class maps ({', '.join(DENTAL_CLASSES)})"
    pred_pattern = rf"{CASE}\.png"
    gt_pattern = rf"{CASE}\.png"

    def write(self, array: np.ndarray, out_dir: Path, case_id: str | int, **geometry: Any) -> Path:
        from PIL import Image

        arr = check_integer(
            array,
            f"dental image {case_id!r}",
            max_value=len(DENTAL_CLASSES) - 1,
            what=f"class maps (order {', '.join(DENTAL_CLASSES)})",
            fix="map predictions to medseg.eval.formats.DENTAL_CLASSES indices",
        )
        if arr.ndim != 2:
            raise FormatError(f"dental class map {case_id!r} must be 2D (Y, X), got shape {arr.shape}")
        img = Image.fromarray(arr.astype(np.uint8))  # uint8 -> mode L
        path = Path(out_dir) / f"{safe_case(case_id)}.png"
        return atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))

    def read(self, path: Path) -> Volume:
        volume = read_volume(path)
        arr = stored_array(volume)
        if arr.ndim != 2 or arr.max(initial=0) >= len(DENTAL_CLASSES):
            raise FormatError(
                f"{path}: expected an 8-bit class map with values < {len(DENTAL_CLASSES)} "
                f"({', '.join(DENTAL_CLASSES)})"
            )
        return single_channel(volume, arr.astype(np.uint8))


FORMAT = DentalFormat()
