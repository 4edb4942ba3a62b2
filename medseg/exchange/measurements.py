"""Per-object measurements of an instance prediction, as labs ask for them (one CSV row per object).

Computed by :func:`skimage.measure.regionprops_table` on the voxel grid, then put into
physical units with the image's geometry: a centroid ``(z, y, x)`` becomes
``origin + direction @ (index * spacing)`` (the world position medseg's readers and
writers use), an area/volume is the voxel count times the voxel size.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from medseg.errors import ShapeError
from medseg.io import Volume, atomic_output

__all__ = ["object_table", "write_object_csv"]

logger = logging.getLogger(__name__)


def _axes(dims: int) -> tuple[str, ...]:
    return ("z", "y", "x")[-dims:]


def object_table(instances: Volume, image: Volume | None = None) -> dict[str, np.ndarray]:
    """One entry per object of ``instances``: id, centroid, size, mean intensity, bounding box.

    Parameters
    ----------
    instances : Volume
        ``(1, *spatial)`` object ids (0 = background), with the image's geometry.
    image : Volume, optional
        ``(C, *spatial)`` intensities on the same grid; gives ``mean_intensity`` (one
        column per channel, ``mean_intensity_c<k>`` when there are several).

    Returns
    -------
    dict of str to np.ndarray
        Columns ``id``; ``centroid_<axis>`` (physical, world coordinates) and
        ``centroid_<axis>_px`` (voxel index); ``area`` (2D) or ``volume`` (3D) in
        ``unit^2``/``unit^3`` (voxels when the unit is unknown) and ``voxels``;
        ``mean_intensity``; ``bbox_min_<axis>``/``bbox_max_<axis>`` (voxel index,
        max exclusive).

    Raises
    ------
    ShapeError
        More than one label channel, or an image on another grid.
    """
    from skimage.measure import regionprops_table

    if instances.num_channels != 1:
        raise ShapeError(f"instances must have one channel, got {instances.num_channels}")
    labels = np.asarray(instances.array[0])
    dims = labels.ndim
    intensity = None
    if image is not None:
        if image.spatial_shape != instances.spatial_shape:
            raise ShapeError(
                f"image {image.spatial_shape} and instances {instances.spatial_shape} are on different grids"
            )
        intensity = np.moveaxis(np.asarray(image.array, dtype=np.float64), 0, -1)
        if intensity.shape[-1] == 1:  # one channel: skimage's single-image form
            intensity = intensity[..., 0]
    properties = ["label", "centroid", "area", "bbox"] + (["intensity_mean"] if intensity is not None else [])
    table = regionprops_table(
        labels.astype(np.int64, copy=False), intensity_image=intensity, properties=properties
    )
    axes = _axes(dims)
    spacing = np.asarray(instances.spacing, dtype=np.float64)
    index = (
        np.stack([table[f"centroid-{a}"] for a in range(dims)], axis=1)
        if len(table["label"])
        else np.zeros((0, dims))
    )
    world = np.asarray(instances.origin) + (index * spacing) @ np.asarray(instances.direction).T
    out: dict[str, np.ndarray] = {"id": table["label"].astype(np.int64)}
    for a, name in enumerate(axes):
        out[f"centroid_{name}"] = world[:, a]
    for a, name in enumerate(axes):
        out[f"centroid_{name}_px"] = index[:, a]
    voxels = table["area"].astype(np.int64)
    out["area" if dims == 2 else "volume"] = voxels * float(np.prod(spacing))
    out["voxels"] = voxels
    if image is not None:
        channels = image.num_channels
        for c in range(channels):
            key = f"intensity_mean-{c}" if channels > 1 else "intensity_mean"
            out["mean_intensity" if channels == 1 else f"mean_intensity_c{c}"] = table[key]
    for a, name in enumerate(axes):
        out[f"bbox_min_{name}"] = table[f"bbox-{a}"].astype(np.int64)
    for a, name in enumerate(axes):
        out[f"bbox_max_{name}"] = table[f"bbox-{a + dims}"].astype(np.int64)
    return out


def write_object_csv(table: dict[str, np.ndarray], path: str | Path, *, unit: str | None = None) -> Path:
    """Write :func:`object_table`'s columns as a CSV (atomically); ``unit`` goes into the size column's name.

    The area/volume column is named ``area_um2`` / ``volume_nm3`` ... after the unit, or
    ``area_px`` / ``volume_px`` when the image has none; centroids get ``_<unit>``.
    """
    path = Path(path)
    renamed = {}
    for key in table:
        if key in ("area", "volume"):
            power = "2" if key == "area" else "3"
            renamed[key] = f"{key}_{unit}{power}" if unit else f"{key}_px"
        elif key.startswith("centroid_") and not key.endswith("_px"):
            renamed[key] = f"{key}_{unit}" if unit else f"{key}_px_world"
        else:
            renamed[key] = key
    rows = zip(*(table[k].tolist() for k in table), strict=True)
    with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([renamed[k] for k in table])
        for row in rows:
            writer.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in row])
    return path
