"""MoNuSeg: 16-bit PNG nucleus instance maps ``NAME.png`` (references also a lab's ``NAME.tif``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medseg.errors import FormatError
from medseg.eval.formats._io import atomic_write, read_volume, stored_array
from medseg.eval.formats.base import CASE, InstanceMapFormat, check_integer, safe_case, single_channel
from medseg.io import Volume

__all__ = ["FORMAT", "MonusegFormat"]


class MonusegFormat(InstanceMapFormat):
    name = "monuseg"
    description = (
        "MoNuSeg: 16-bit PNG nucleus instance maps NAME.png (references: NAME.png or a lab's NAME.tif)"
    )
    pred_pattern = rf"{CASE}\.png"
    gt_pattern = rf"{CASE}\.(?:png|tiff?)"

    def write(self, array: np.ndarray, out_dir: Path, case_id: str | int, **geometry: Any) -> Path:
        from PIL import Image

        arr = check_integer(
            array,
            f"MoNuSeg image {case_id!r}",
            max_value=65535,
            what="nucleus instance maps",
            fix="relabel nuclei sequentially (16-bit PNG holds at most 65535)",
        )
        if arr.ndim != 2:
            raise FormatError(f"MoNuSeg map {case_id!r} must be 2D (Y, X), got shape {arr.shape}")
        img = Image.fromarray(np.ascontiguousarray(arr.astype(np.uint16)))  # uint16 -> mode I;16
        path = Path(out_dir) / f"{safe_case(case_id)}.png"
        return atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))

    def read(self, path: Path) -> Volume:
        volume = read_volume(path)
        arr = stored_array(volume)
        if arr.ndim != 2:
            raise FormatError(
                f"{path}: expected a single-channel 16-bit PNG instance map, got shape {arr.shape}"
            )
        return single_channel(volume, arr.astype(np.int32))


FORMAT = MonusegFormat()
