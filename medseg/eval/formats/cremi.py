"""CREMI neuron ids: HDF5 ``NAME.hdf`` with ``volumes/labels/neuron_ids`` (uint64, resolution in nm)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medseg.errors import FormatError
from medseg.eval.formats.base import (
    CASE,
    InstanceMapFormat,
    ScoreOptions,
    check_integer,
    read_single_channel,
    safe_case,
)
from medseg.eval.geometry import scoring_spacing
from medseg.io import Volume, write
from medseg.labels import CREMI_NEURON_IDS_KEY

__all__ = ["FORMAT", "CremiFormat"]


class CremiFormat(InstanceMapFormat):
    name = "cremi"
    description = f"CREMI: HDF5 NAME.hdf / NAME.h5 with {CREMI_NEURON_IDS_KEY} (uint64, resolution in nm)"
    keeps_geometry = True
    uses_border_threshold = True
    needs_instance_model = True
    pred_pattern = rf"{CASE}\.(?:hdf|h5|hdf5)"
    gt_pattern = pred_pattern

    def write(self, array: np.ndarray, out_dir: Path, case_id: str | int, **geometry: Any) -> Path:
        """``NAME.hdf`` with ``volumes/labels/neuron_ids`` (uint64) and ``resolution`` (nm), as CREMI's files.

        ``geometry``: ``spacing`` (nm), ``origin``, ``direction``.
        """
        arr = check_integer(
            array,
            f"neuron ids {case_id!r}",
            max_value=np.iinfo(np.uint64).max,
            what="CREMI neuron ids",
            fix="pass one id per neuron (uint64)",
        )
        if arr.ndim != 3:
            raise FormatError(f"CREMI neuron ids {case_id!r} must be (Z, Y, X), got shape {arr.shape}")
        path = Path(out_dir) / f"{safe_case(case_id)}.hdf"
        if path.exists():  # a fresh file: writing a key into an existing one would keep its other datasets
            path.unlink()
        volume = Volume(
            arr.astype(np.uint64)[None],
            spacing=geometry.get("spacing"),
            origin=geometry.get("origin"),
            direction=geometry.get("direction"),
        )
        write(volume, f"{path}:{CREMI_NEURON_IDS_KEY}")
        return path

    def write_reference(self, array: np.ndarray, out_dir: Path, case_id: str | int, **geometry: Any) -> Path:
        """Neuron ids as stored (uint64), with the volume's resolution."""
        return self.write(np.asarray(array), out_dir, case_id, **geometry)

    def read(self, path: Path) -> Volume:
        """The neuron ids of a CREMI file (a submission, or a sample file that also holds raw and clefts)."""
        return read_single_channel(Path(f"{path}:{CREMI_NEURON_IDS_KEY}"), "CREMI neuron-id volume")

    def score(self, pred: Volume, ref: Volume, options: ScoreOptions) -> dict[str, dict[str, float]]:
        """CREMI's VOI split/merge, adapted Rand error and CREMI score (``cremi_python``'s ``NeuronIds``)."""
        from medseg.eval.em import cremi_neuron_scores

        threshold = options.border_threshold
        source = ref.meta.get("source", "reference")
        resolution = scoring_spacing(ref, options.spacing, source) if threshold else None
        c = cremi_neuron_scores(
            ref.array[0], pred.array[0], resolution=resolution, border_threshold=threshold
        )
        return {
            "all": {
                "voi_split": c.voi_split,
                "voi_merge": c.voi_merge,
                "adapted_rand_error": c.adapted_rand_error,
                "cremi_score": c.cremi_score,
            }
        }


FORMAT = CremiFormat()
