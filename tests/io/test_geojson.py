"""GeoJSON polygons of instance maps: exact outlines (holes kept), QuPath's layout, rasterised back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medseg.errors import FormatError, LabelError, ShapeError
from medseg.io.geojson import instance_polygons, read_geojson_labels, write_geojson

shapely = pytest.importorskip("shapely")


def _ring_with_hole() -> np.ndarray:
    labels = np.zeros((12, 14), np.int32)
    labels[1:8, 1:8] = 3  # a 7x7 square with a 3x3 hole: area 49 - 9 = 40
    labels[3:6, 3:6] = 0
    labels[9:11, 2:4] = 5  # object 5 in two pieces: 2x2 and 1x3
    labels[9, 8:11] = 5
    labels[2:6, 10:13] = 7  # touches nothing
    return labels


def test_polygons_are_exact_pixel_outlines_with_holes():
    polygons = instance_polygons(_ring_with_hole())
    assert sorted(polygons) == [3, 5, 7]
    ring = polygons[3]
    assert ring.geom_type == "Polygon" and len(ring.interiors) == 1
    assert ring.area == 40 and ring.bounds == (1, 1, 8, 8)
    assert shapely.Polygon(ring.interiors[0]).area == 9
    assert polygons[5].geom_type == "MultiPolygon" and polygons[5].area == 4 + 3
    assert polygons[7].equals(shapely.box(10, 2, 13, 6))  # x = column, y = row


def test_write_then_read_round_trips_and_uses_qupath_layout(tmp_path):
    labels = _ring_with_hole()
    path = write_geojson(
        labels,
        tmp_path / "out" / "case.geojson",
        classes={3: "nucleus", 5: "nucleus", 7: "stroma"},
        measurements={3: {"Area px": 40.0}},
    )
    data = json.loads(path.read_text())
    assert data["type"] == "FeatureCollection" and len(data["features"]) == 3
    first = data["features"][0]
    assert first["properties"]["objectType"] == "detection"
    assert first["properties"]["classification"]["name"] == "nucleus"
    assert len(first["properties"]["classification"]["color"]) == 3
    assert first["properties"]["measurements"] == {"Area px": 40.0}
    assert (
        first["geometry"]["type"] == "Polygon" and len(first["geometry"]["coordinates"]) == 2
    )  # shell + hole
    assert shapely.from_geojson(json.dumps(first["geometry"])).area == 40
    np.testing.assert_array_equal(read_geojson_labels(path, labels.shape), labels)
    as_classes = read_geojson_labels(path, labels.shape, classes={"background": 0, "nucleus": 1, "stroma": 2})
    np.testing.assert_array_equal(as_classes, np.select([labels == 7, labels > 0], [2, 1], 0))


def test_reads_a_hand_made_qupath_export(tmp_path):
    # the layout of QuPath 0.5's "Export objects as GeoJSON" (a bare list of features, as with
    # "Export as FeatureCollection" unticked), one annotation with a hole, one detection, one point
    qupath = [
        {
            "type": "Feature",
            "id": "0b8e2a4c-5e5f-4f6d-9e1c-2f0b3c4d5e6f",
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [[2, 2], [10, 2], [10, 10], [2, 10], [2, 2]],
                    [[4, 4], [4, 8], [8, 8], [8, 4], [4, 4]],
                ],
            },
            "properties": {
                "objectType": "annotation",
                "classification": {"name": "Tumor", "color": [200, 0, 0]},
                "isLocked": False,
            },
        },
        {
            "type": "Feature",
            "id": "1c9f3b5d-6f60-4a7e-8f2d-3a1c4d5e6f70",
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[12.5, 1.2], [15.7, 1.2], [15.7, 4.8], [12.5, 4.8], [12.5, 1.2]]],
            },
            "properties": {
                "objectType": "detection",
                "classification": {"name": "Stroma", "color": [150, 200, 150]},
            },
        },
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [1, 1]},
            "properties": {"objectType": "annotation"},
        },
    ]
    path = tmp_path / "slide.geojson"
    path.write_text(json.dumps(qupath))
    instances = read_geojson_labels(path, (12, 16))
    assert sorted(np.unique(instances).tolist()) == [0, 1, 2]
    assert (instances == 1).sum() == 64 - 16  # 8x8 with a 4x4 hole
    assert instances[6, 6] == 0 and instances[3, 3] == 1
    # pixel centres inside x in [12.5, 15.7], y in [1.2, 4.8]: columns 12..15 (centre 12.5 is on the edge: out), rows 1..4
    assert (instances == 2).sum() == 3 * 4 and instances[1:5, 13:16].min() == 2
    classes = read_geojson_labels(path, (12, 16), classes={"background": 0, "Tumor": 1, "Stroma": 2})
    assert (classes == 2).sum() == 12 and (classes == 1).sum() == 48
    with pytest.raises(LabelError, match="'Stroma', not among the declared classes"):
        read_geojson_labels(path, (12, 16), classes={"background": 0, "Tumor": 1})


def test_bad_geojson_and_3d_maps_are_refused(tmp_path):
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "Polygon"}')
    with pytest.raises(FormatError, match="not a GeoJSON FeatureCollection"):
        read_geojson_labels(bad, (4, 4))
    bad.write_text("{nope")
    with pytest.raises(FormatError, match="cannot read GeoJSON"):
        read_geojson_labels(bad, (4, 4))
    with pytest.raises(ShapeError, match="GeoJSON polygons are 2D"):
        write_geojson(np.ones((2, 3, 3), np.int32), tmp_path / "x.geojson")
    assert not (tmp_path / "x.geojson").exists()
