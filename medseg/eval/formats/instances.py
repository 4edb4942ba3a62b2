"""Generic instance label maps, 2D or 3D, with their geometry: TIFF, NIfTI, Zarr."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medseg.errors import FormatError
from medseg.eval.formats.base import (
    CASE,
    InstanceMapFormat,
    check_integer,
    read_single_channel,
    safe_case,
    write_map,
)
from medseg.io import Volume

__all__ = ["FORMAT", "InstancesFormat"]


class InstancesFormat(InstanceMapFormat):
    name = "instances"
    description = (
        "generic instance label maps, 2D or 3D: NAME.tif / NAME.nii.gz / NAME.nii / NAME.zarr / NAME.ome.zarr"
    )
    keeps_geometry = True
    pred_pattern = rf"{CASE}\.(?:nii\.gz|nii|tiff?|ome\.zarr|zarr)"
    gt_pattern = pred_pattern

    def write(
        self, array: np.ndarray, out_dir: Path, case_id: str | int, *, suffix: str = ".tif", **geometry: Any
    ) -> Path:
        arr = check_integer(
            array,
            f"instance map {case_id!r}",
            max_value=2**32 - 1,
            what="instance maps",
            fix="pass one id > 0 per object, 0 for background",
        )
        path = Path(out_dir) / f"{safe_case(case_id)}{suffix}"
        suffixes = (".tif", ".tiff", ".nii.gz", ".nii", ".zarr")
        return write_map(arr, path, suffixes=suffixes, what="instance map", **geometry)

    def read(self, path: Path) -> Volume:
        volume = read_single_channel(path, "instance map")
        if not (np.issubdtype(volume.array.dtype, np.integer) or volume.array.dtype == bool):
            raise FormatError(f"{path}: instance maps hold integer ids, got dtype {volume.array.dtype}")
        return volume


FORMAT = InstancesFormat()
