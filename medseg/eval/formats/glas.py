"""GlaS (MICCAI 2015 gland segmentation): 8-bit BMP instance maps.

References are the challenge's ``NAME_anno.bmp``; predictions may be named like the
annotations or like the images (``testA_1.bmp``). Each case is scored with the GlaS
criteria (object F1, object Dice, object Hausdorff); the challenge pools objects over a
test part and ranks Test A and Test B separately, so cases named ``testA_*`` and
``testB_*`` are pooled per part (keys ``testA.f1``, ``testB.f1``, ...).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from medseg.errors import FormatError
from medseg.eval.formats._io import atomic_write, read_volume, stored_array
from medseg.eval.formats.base import (
    CASE,
    CaseFiles,
    InstanceMapFormat,
    ScoreOptions,
    check_integer,
    safe_case,
    single_channel,
)
from medseg.io import Volume

__all__ = ["FORMAT", "GlasFormat", "glas_part"]

logger = logging.getLogger(__name__)

_PART = re.compile(r"(test[AB])_")


def glas_part(case: str) -> str | None:
    """``"testA"`` / ``"testB"`` for a case of a GlaS test part, else ``None``."""
    m = _PART.match(case)
    return m.group(1) if m else None


class GlasFormat(InstanceMapFormat):
    name = "glas"
    description = "GlaS: 8-bit BMP instance maps NAME_anno.bmp (predictions also NAME.bmp)"
    pred_pattern = rf"{CASE}(?:_anno)?\.bmp"
    gt_pattern = rf"{CASE}_anno\.bmp"

    def write(self, array: np.ndarray, out_dir: Path, case_id: str | int, **geometry: Any) -> Path:
        from PIL import Image

        arr = check_integer(
            array,
            f"GlaS image {case_id!r}",
            max_value=2**31 - 1,
            what="instance maps",
            fix="pass gland ids >= 0",
        )
        if arr.ndim != 2:
            raise FormatError(
                f"GlaS annotation {case_id!r} must be a 2D (Y, X) instance map, got shape {arr.shape}"
            )
        if arr.max(initial=0) > 255:
            ids = np.unique(arr[arr > 0])
            if ids.size > 255:
                raise FormatError(
                    f"GlaS image {case_id!r} has {ids.size} objects; an 8-bit BMP holds at most 255"
                )
            arr = np.searchsorted(np.concatenate([[0], ids]), arr).astype(np.uint8)
        img = Image.fromarray(arr.astype(np.uint8))  # uint8 -> mode L
        path = Path(out_dir) / f"{safe_case(case_id)}_anno.bmp"
        return atomic_write(path, lambda tmp: img.save(tmp, format="BMP"))

    def read(self, path: Path) -> Volume:
        """An 8-bit instance map, or a 24-bit colour-coded one (each colour one gland)."""
        volume = read_volume(path)
        arr = stored_array(volume)
        if arr.ndim == 3:
            rgb = arr[..., :3].astype(np.int64)
            if np.all(rgb[..., :1] == rgb):
                arr = rgb[..., 0]
            else:  # 24-bit colour-coded ids: one id per colour, black = background
                arr = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
        return single_channel(volume, arr.astype(np.int32))

    def score(self, pred: Volume, ref: Volume, options: ScoreOptions) -> dict[str, dict[str, float]]:
        """The GlaS criteria of one image: object F1, object Dice and object Hausdorff (pixels)."""
        from medseg.eval.glas import glas_scores

        return {"all": glas_scores((ref.array[0], pred.array[0]))}

    def pool(self, cases: CaseFiles, per_case: dict[str, dict[str, dict[str, float]]]) -> dict[str, float]:
        """Objects pooled per test part, as the challenge ranks Test A and Test B separately."""
        from medseg.eval.glas import glas_scores

        parts: dict[str | None, list[tuple[np.ndarray, np.ndarray]]] = {}
        for case, (pred_path, gt_path) in cases.items():
            pred, ref = self.read_pair(pred_path, gt_path)
            parts.setdefault(glas_part(case), []).append((ref.array[0], pred.array[0]))
        if len(parts) == 1:
            return glas_scores(next(iter(parts.values())))
        logger.info(
            "GlaS: %s scored separately (the challenge ranks each test part on its own); "
            "pooled keys are prefixed with the part",
            " and ".join(sorted(p or "other" for p in parts)),
        )
        return {
            f"{part or 'other'}.{metric}": value
            for part, pairs in sorted(parts.items(), key=lambda kv: kv[0] or "~")
            for metric, value in glas_scores(pairs).items()
        }


FORMAT = GlasFormat()
