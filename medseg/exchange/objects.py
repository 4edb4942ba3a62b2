"""What ``medseg predict`` writes for the objects of an instance prediction: a CSV, and GeoJSON on request."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medseg.exchange.measurements import object_table, write_object_csv
from medseg.io import Volume
from medseg.io.geojson import write_geojson

__all__ = ["write_object_outputs"]

logger = logging.getLogger(__name__)


def _object_classes(instances: np.ndarray, labels: np.ndarray, names: Sequence[str] | None) -> dict[int, str]:
    """The majority class of each object (its name, else ``class<k>``)."""
    ids = instances.ravel()
    classes = labels.ravel().astype(np.int64)
    inside = ids > 0
    counts: dict[int, np.ndarray] = {}
    for value, cls in zip(ids[inside].tolist(), classes[inside].tolist(), strict=True):
        counts.setdefault(value, np.zeros(int(classes.max()) + 1, np.int64))[cls] += 1
    out = {}
    for value, tally in counts.items():
        tally[0] = 0 if tally[1:].any() else tally[0]  # background only where nothing else is
        k = int(tally.argmax())
        out[value] = names[k] if names and k < len(names) else f"class{k}"
    return out


def write_object_outputs(
    instances: Volume,
    labels: Volume,
    image: Volume,
    out_dir: str | Path,
    case: str,
    *,
    geojson: bool = False,
    class_names: Sequence[str] | None = None,
) -> int:
    """Write ``<case>_objects.csv`` (and ``geojson/<case>.geojson``); return the number of objects.

    Parameters
    ----------
    instances, labels, image : Volume
        ``(1, *spatial)`` object ids and class ids, ``(C, *spatial)`` intensities, one grid.
    out_dir : path
        The prediction folder.
    case : str
        Case id (file names).
    geojson : bool
        Also write the objects as QuPath detections (2D only).
    class_names : sequence of str, optional
        Class names by class id (each object gets its majority class).
    """
    out = Path(out_dir)
    table = object_table(instances, image)
    write_object_csv(table, out / f"{case}_objects.csv", unit=instances.unit)
    if geojson:
        unit = f"{instances.unit}^2" if instances.unit else "px"
        intensity = "mean_intensity" if "mean_intensity" in table else "mean_intensity_c0"
        measurements = {
            int(i): {f"Area {unit}": float(a), "Mean intensity": float(m)}
            for i, a, m in zip(table["id"], table["area"], table[intensity], strict=True)
        }
        classes = _object_classes(instances.array[0], labels.array[0], class_names)
        write_geojson(
            instances.array[0],
            out / "geojson" / f"{case}.geojson",
            classes=classes,
            measurements=measurements,
        )
    count = len(table["id"])
    logger.info("%s: %d object(s)", case, count)
    return count
