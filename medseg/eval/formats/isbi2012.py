"""ISBI 2012 EM segmentation: float32 multipage TIFF membrane probabilities (0 = membrane, 1 = non-membrane).

Scored as the challenge's Fiji scripts: foreground-restricted V_rand and V_info after
border thinning, pixel error, and the minimum splits-and-mergers warping error. These
metrics are topological, so a prediction must have its reference's shape but not its
geometry (labels saved with a resolution are scored against a submission without one).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medseg.errors import ConfigError, FormatError
from medseg.eval.formats._io import atomic_write, read_volume, stored_array
from medseg.eval.formats.base import CASE, ChallengeFormat, ScoreOptions, safe_case, single_channel
from medseg.eval.options import FormatKind
from medseg.io import Volume

__all__ = ["FORMAT", "Isbi2012Format"]


class Isbi2012Format(ChallengeFormat):
    name = "isbi2012"
    kind = FormatKind.PROBABILITY
    description = "ISBI 2012 EM: float32 multipage TIFF, 0 = membrane, 1 = non-membrane"
    needs_probabilities = True
    geometry_must_match = False
    pred_pattern = rf"{CASE}\.tiff?"
    gt_pattern = rf"{CASE}\.tiff?"

    def write(self, array: np.ndarray, out_dir: Path, case_id: str | int, **geometry: Any) -> Path:
        import tifffile

        arr = np.asarray(array)
        if arr.ndim not in (2, 3) or not np.issubdtype(arr.dtype, np.floating):
            raise FormatError(
                f"ISBI 2012 submission for {case_id!r} must be a float (Z, Y, X) membrane probability map, "
                f"got dtype {arr.dtype} shape {arr.shape}; pass probabilities, not labels"
            )
        if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
            raise FormatError(
                f"ISBI 2012 submission for {case_id!r} must hold values in [0, 1] "
                "(0 = membrane, 1 = non-membrane); apply a sigmoid/softmax and invert a membrane head (1 - p)"
            )
        data = np.ascontiguousarray(arr.astype(np.float32))
        path = Path(out_dir) / f"{safe_case(case_id)}.tif"
        return atomic_write(path, lambda tmp: tifffile.imwrite(tmp, data, photometric="minisblack"))

    def write_reference(self, array: np.ndarray, out_dir: Path, case_id: str | int, **geometry: Any) -> Path:
        """medseg's class ids (0 = cell, 1 = membrane) in the challenge's polarity (cell 1.0, membrane 0.0)."""
        return self.write((np.asarray(array) == 0).astype(np.float32), out_dir, case_id)

    def read(self, path: Path) -> Volume:
        volume = read_volume(path, greyscale=True)
        return single_channel(volume, stored_array(volume))

    def prediction_array(
        self,
        labels: np.ndarray,
        *,
        probabilities: np.ndarray | None = None,
        instances: np.ndarray | None = None,
        classes: Sequence[str] | None = None,
    ) -> np.ndarray:
        """The non-membrane probability ``1 - p(membrane)``."""
        if probabilities is None:
            raise ConfigError("format isbi2012 needs class probabilities; predict with probabilities=True")
        names = list(classes or [])
        if "membrane" not in names:
            raise ConfigError(f"format isbi2012 needs a 'membrane' class; this model's classes are {names}")
        return 1.0 - np.asarray(probabilities)[names.index("membrane")]

    def score(self, pred: Volume, ref: Volume, options: ScoreOptions) -> dict[str, dict[str, float]]:
        from medseg.eval.isbi2012 import isbi2012_scores, pixel_error
        from medseg.eval.warping import fiji_8bit_reference, splits_and_mergers_warping_error

        gt, proposal = ref.array[0], pred.array[0]
        s = isbi2012_scores(gt, proposal)
        return {
            "all": {
                "v_rand": s.v_rand,
                "v_info": s.v_info,
                "pixel_error": pixel_error(gt, proposal),
                "warping_error": splits_and_mergers_warping_error(fiji_8bit_reference(gt), proposal),
            }
        }


FORMAT = Isbi2012Format()
