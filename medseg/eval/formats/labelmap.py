"""Generic class label maps, 2D or 3D, with their geometry: NIfTI, TIFF, and block-wise Zarr predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medseg.eval.formats.base import (
    CASE,
    ClassMapFormat,
    check_integer,
    read_single_channel,
    safe_case,
    write_map,
)
from medseg.io import Volume

__all__ = ["FORMAT", "LabelmapFormat"]


class LabelmapFormat(ClassMapFormat):
    name = "labelmap"
    description = (
        "generic class label maps: NAME.nii.gz / NAME.nii / NAME.tif; block-wise predictions NAME.zarr / "
        "NAME.ome.zarr"
    )
    keeps_geometry = True
    scored_as_challenge = False  # medseg run's evaluate stage scores label maps already
    pred_pattern = rf"{CASE}\.(?:nii\.gz|nii|tiff?|ome\.zarr|zarr)"
    gt_pattern = pred_pattern

    def write(
        self,
        array: np.ndarray,
        out_dir: Path,
        case_id: str | int,
        *,
        suffix: str = ".nii.gz",
        **geometry: Any,
    ) -> Path:
        arr = check_integer(
            array, f"label map {case_id!r}", max_value=2**31 - 1, what="label maps", fix="pass class ids"
        )
        path = Path(out_dir) / f"{safe_case(case_id)}{suffix}"
        return write_map(
            arr, path, suffixes=(".nii.gz", ".nii", ".tif", ".tiff"), what="label map", **geometry
        )

    def read(self, path: Path) -> Volume:
        return read_single_channel(path, "label map")


FORMAT = LabelmapFormat()
