"""Instance label maps as GeoJSON polygons, in the feature layout QuPath imports and exports.

Writing turns each object of a 2D instance map into the exact outline of its pixels
(a ``Polygon``, or a ``MultiPolygon`` for an object in several pieces; holes kept), in
pixel coordinates with ``x`` to the right and ``y`` down, pixel ``(row, col)`` covering
``[col, col+1] x [row, row+1]`` (QuPath's convention). Each feature carries
``"objectType"`` (``"detection"`` by default, as QuPath names cell/nucleus objects),
``"classification": {"name", "color"}``, the object id and ``"measurements"``.

Reading rasterises polygons back onto a pixel grid: a pixel belongs to a polygon when
its centre lies inside it, so a written map reads back identically. QuPath exports a
``FeatureCollection``, a single ``Feature`` or a bare list of features; all three are read.
Geometries other than (Multi)Polygon (points, lines) carry no area and are skipped.
"""

from __future__ import annotations

import itertools
import json
import logging
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from medseg.errors import FormatError, LabelError, ShapeError
from medseg.io._common import atomic_output

__all__ = [
    "GEOJSON_SUFFIXES",
    "classes_from_objects",
    "instance_polygons",
    "read_geojson_labels",
    "read_geojson_objects",
    "write_geojson",
]

logger = logging.getLogger(__name__)

GEOJSON_SUFFIXES: tuple[str, ...] = (".geojson",)
#: Colours QuPath shows for classes without one of their own (RGB).
_PALETTE = [(255, 0, 0), (0, 160, 0), (0, 0, 255), (200, 150, 0), (160, 0, 160), (0, 150, 150)]
#: Namespace of the deterministic feature ids (uuid5 of the file name and the object id).
_NAMESPACE = uuid.UUID("6f1f5a52-2c3e-4d1e-9b3a-6d1d8a3c2b10")


def instance_polygons(instances: np.ndarray) -> dict[int, Any]:
    """The exact pixel outline of every object of a ``(Y, X)`` instance map, as shapely geometries.

    Each object is the union of its pixel runs (one rectangle per run of a row), so
    holes and separate pieces come out as shapely builds them (``Polygon`` with interiors,
    ``MultiPolygon``).
    """
    import shapely

    if instances.ndim != 2:
        raise ShapeError(
            f"GeoJSON polygons are 2D; got an instance map of shape {instances.shape} (predict 2D images, "
            "or write 3D objects as labels/OME-Zarr)"
        )
    labels = np.asarray(instances)
    padded = np.pad(labels, ((0, 0), (1, 1)))
    changes = np.nonzero(padded[:, 1:] != padded[:, :-1])  # run boundaries between columns
    rows, cols = changes
    boxes: dict[int, list[Any]] = {}
    for r in np.unique(rows):
        edges = cols[rows == r]
        row = labels[r]
        for start, stop in itertools.pairwise(edges):
            value = int(row[start])
            if value:
                boxes.setdefault(value, []).append(shapely.box(start, r, stop, r + 1))
    # simplify(0) drops the vertices between collinear pixel edges; the outline stays exact
    return {value: shapely.union_all(parts).simplify(0).normalize() for value, parts in sorted(boxes.items())}


def _colour(index: int) -> list[int]:
    return list(_PALETTE[index % len(_PALETTE)])


def write_geojson(
    instances: np.ndarray,
    path: str | Path,
    *,
    classes: Mapping[int, str] | None = None,
    measurements: Mapping[int, Mapping[str, float]] | None = None,
    object_type: str = "detection",
) -> Path:
    """Write a ``(Y, X)`` instance map as a GeoJSON ``FeatureCollection`` (atomically).

    Parameters
    ----------
    instances : np.ndarray
        Object ids, 0 = background.
    path : path
        ``.geojson`` file.
    classes : mapping of int to str, optional
        Class name of each object id (QuPath's ``classification``); unnamed objects get none.
    measurements : mapping of int to mapping, optional
        Per-object numbers (``{"Area µm^2": ..., "Mean intensity": ...}``), QuPath's ``measurements``.
    object_type : {"detection", "annotation"}
        QuPath object type of every feature.

    Returns
    -------
    Path
        ``path``.
    """
    import shapely

    if object_type not in ("detection", "annotation"):
        raise FormatError(f"object_type must be 'detection' or 'annotation', got {object_type!r}")
    path = Path(path)
    names = sorted(set((classes or {}).values()))
    features = []
    for value, geometry in instance_polygons(instances).items():
        properties: dict[str, Any] = {"objectType": object_type, "object_id": value, "isLocked": False}
        name = (classes or {}).get(value)
        if name is not None:
            properties["classification"] = {"name": name, "color": _colour(names.index(name))}
        if measurements and value in measurements:
            properties["measurements"] = {k: float(v) for k, v in measurements[value].items()}
        features.append(
            {
                "type": "Feature",
                "id": str(uuid.uuid5(_NAMESPACE, f"{path.name}:{value}")),
                "geometry": json.loads(shapely.to_geojson(geometry)),
                "properties": properties,
            }
        )
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


def _features(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FormatError(f"cannot read GeoJSON {path}: {err}; export it again from QuPath") from err
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        return list(data.get("features") or [])
    if isinstance(data, dict) and data.get("type") == "Feature":
        return [data]
    raise FormatError(
        f"{path} is not a GeoJSON FeatureCollection, Feature or list of features; export the objects from "
        "QuPath with File > Export objects as GeoJSON"
    )


def _class_name(feature: Mapping[str, Any]) -> str | None:
    properties = feature.get("properties") or {}
    classification = properties.get("classification")
    if isinstance(classification, Mapping):
        return classification.get("name")
    if isinstance(classification, str):
        return classification
    return properties.get("class")


def read_geojson_objects(
    path: str | Path, shape: tuple[int, int]
) -> tuple[np.ndarray, dict[int, str | None]]:
    """Instance labels of a GeoJSON file's polygons and the class name of each object.

    Returns ``(instances, names)``: ``(Y, X)`` int32 ids as :func:`read_geojson_labels`
    gives them without ``classes``, and ``{id: classification name or None}``.
    """
    import shapely

    path = Path(path)
    labels = np.zeros(tuple(int(s) for s in shape), dtype=np.int32)
    names: dict[int, str | None] = {}
    next_id = 1
    skipped = 0
    for index, feature in enumerate(_features(path)):
        geometry_json = feature.get("geometry") if isinstance(feature, Mapping) else None
        if not geometry_json or geometry_json.get("type") not in ("Polygon", "MultiPolygon"):
            skipped += 1
            continue
        try:
            geometry = shapely.from_geojson(json.dumps(geometry_json))
        except shapely.errors.GEOSException as err:
            raise FormatError(f"feature {index} of {path} has an unreadable geometry: {err}") from err
        value = int((feature.get("properties") or {}).get("object_id") or next_id)
        next_id = max(next_id, value) + 1
        names[value] = _class_name(feature)
        x0, y0, x1, y1 = geometry.bounds
        r0, r1 = max(int(np.floor(y0)), 0), min(int(np.ceil(y1)), labels.shape[0])
        c0, c1 = max(int(np.floor(x0)), 0), min(int(np.ceil(x1)), labels.shape[1])
        if r0 >= r1 or c0 >= c1:
            continue
        yy, xx = np.mgrid[r0:r1, c0:c1]
        inside = shapely.contains_xy(geometry, xx + 0.5, yy + 0.5)
        labels[r0:r1, c0:c1][inside] = value
    if skipped:
        logger.info("%s: %d feature(s) without polygon geometry skipped", path, skipped)
    return labels, names


def classes_from_objects(
    instances: np.ndarray, names: Mapping[int, str | None], classes: Mapping[str, int], *, source: str
) -> np.ndarray:
    """Class ids of an instance map whose objects have class names (:func:`read_geojson_objects`).

    Raises
    ------
    LabelError
        An object whose class is not declared (names the file, the class and the declared ones).
    """
    lookup = np.zeros(int(max([0, *names, int(instances.max(initial=0))])) + 1, dtype=np.int32)
    for value, name in names.items():
        if name is None or name not in classes:
            raise LabelError(
                f"object {value} of {source} has class {name!r}, not among the declared classes "
                f"{sorted(classes)}: declare it in data.classes or reclassify it in QuPath"
            )
        lookup[value] = int(classes[name])
    return lookup[instances]


def read_geojson_labels(
    path: str | Path, shape: tuple[int, int], *, classes: Mapping[str, int] | None = None
) -> np.ndarray:
    """Rasterise a GeoJSON file's polygons onto a ``shape`` (Y, X) pixel grid.

    Parameters
    ----------
    path : path
        GeoJSON written by QuPath (or :func:`write_geojson`), pixel coordinates.
    shape : tuple of int
        ``(Y, X)`` of the image the annotations belong to.
    classes : mapping of str to int, optional
        Without it, each polygon feature becomes one object (ids ``1, 2, ...`` in file order,
        or the feature's ``object_id``): instance labels. With it, each polygon is painted
        with the class id of its ``classification`` name: class labels.

    Returns
    -------
    np.ndarray
        ``(Y, X)`` int32 labels; later features are painted over earlier ones.

    Raises
    ------
    FormatError
        Not GeoJSON, or a feature whose geometry shapely cannot read.
    LabelError
        With ``classes``: a feature whose class is not declared (names it and the declared ones).
    """
    instances, names = read_geojson_objects(path, shape)
    if classes is None:
        return instances
    return classes_from_objects(instances, names, classes, source=str(path))
