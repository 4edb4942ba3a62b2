"""``medseg predict`` on an instance model: object CSV, count, ``--geojson``; ``medseg train`` on QuPath GeoJSON."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tifffile
import yaml

from medseg.cli.main import main
from medseg.data.synthetic.nuclei import write_nuclei_folder
from medseg.data.volumes import iter_folder_samples
from medseg.errors import LabelError
from medseg.io import read
from medseg.io.geojson import read_geojson_labels, write_geojson

shapely = pytest.importorskip("shapely")


def test_instance_prediction_writes_objects_csv_geojson_and_count(runs, tmp_path, capsys):
    lab = next(runs["instances"].parent.glob("lab/images/*.tif"))
    out = tmp_path / "pred"
    argv = ["predict", "-m", str(runs["instances"]), "-i", str(lab), "-o", str(out), "--geojson"]
    assert main([*argv, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader((out / f"{lab.stem}_objects.csv").open()))
    assert f"{len(rows)} object(s) in 1 case(s)" in printed
    features = json.loads((out / "geojson" / f"{lab.stem}.geojson").read_text())["features"]
    assert len(features) == len(rows)
    # a one-iteration model may find nothing: the header is written all the same (counts in the next test)
    header = (out / f"{lab.stem}_objects.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["id", "centroid_y_um", "centroid_x_um"]
    assert {"area_um2", "voxels", "mean_intensity", "bbox_min_y", "bbox_max_x"} <= set(header)


def test_class_model_objects_are_connected_components(runs, tmp_path, capsys):
    image = runs["unet2d"].parent / "em" / "train-volume.tif"
    section = tmp_path / "section.tif"
    tifffile.imwrite(section, tifffile.imread(image)[0])
    out = tmp_path / "pred"
    assert main(["predict", "-m", str(runs["unet2d"]), "-i", str(section), "-o", str(out), "--geojson"]) == 0
    labels = read(out / "section.tif").array[0]
    from medseg.infer.postprocess import label_instances

    expected = int(label_instances(labels).max())
    rows = list(csv.DictReader((out / "section_objects.csv").open()))
    assert expected > 0 and len(rows) == expected
    assert f"{expected} object(s)" in capsys.readouterr().out
    features = json.loads((out / "geojson" / "section.geojson").read_text())["features"]
    areas = {int(r["id"]): float(r["area_px"]) for r in rows}  # no unit in a plain TIFF: pixels
    for feature in features:
        polygon = shapely.from_geojson(json.dumps(feature["geometry"]))
        assert polygon.area == areas[feature["properties"]["object_id"]]
        assert feature["properties"]["classification"]["name"] == "membrane"
    rasterised = read_geojson_labels(out / "geojson" / "section.geojson", labels.shape)
    np.testing.assert_array_equal(rasterised > 0, labels > 0)


def test_train_reads_qupath_geojson_labels(tmp_path):
    lab = write_nuclei_folder(tmp_path / "lab", n_images=2, shape=(48, 48), n_nuclei=4, radius=5, seed=1)
    masks = {}
    for path in sorted((lab / "labels").glob("*.tif")):
        masks[path.stem] = tifffile.imread(path)
        write_geojson(
            masks[path.stem], path.with_suffix(".geojson"), classes=dict.fromkeys(range(1, 99), "nucleus")
        )
        path.unlink()
    samples = list(iter_folder_samples(lab))
    for sample in samples:
        np.testing.assert_array_equal(sample.label.array[0], masks[sample.case_id])
    config = {
        "name": "from-qupath",
        "data": {
            "dataset": "lab_folder",
            "root": str(lab),
            "label_kind": "instances",
            "instance_target": "distance",
            "classes": ["background", "nucleus"],
            "patch_shape": [32, 32],
            "batch_size": 2,
            "validation_slices": 1,
        },
        "model": {"name": "unet", "params": {"in_channels": 1, "out_channels": 3, "features": 4, "depth": 2}},
        "train": {"iterations": 1, "validate_every": 1},
        "infer": {"roi_size": [32, 32], "mirror_axes": []},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    assert (tmp_path / "run" / "checkpoints" / "best.pt").is_file()


def test_qupath_geojson_classes_become_class_labels(tmp_path, capsys):
    from medseg.config import DataConfig
    from medseg.pipeline.datasets import load_training_samples

    lab = write_nuclei_folder(tmp_path / "lab", n_images=2, shape=(48, 48), n_nuclei=4, radius=5, seed=2)
    expected = {}
    for path in sorted((lab / "labels").glob("*.tif")):
        mask = tifffile.imread(path)
        names = {int(v): ("Tumor" if v % 2 else "Stroma") for v in np.unique(mask) if v}
        write_geojson(mask, path.with_suffix(".geojson"), classes=names, object_type="annotation")
        path.unlink()
        expected[path.stem] = np.select([mask % 2 == 1, mask > 0], [1, 2], 0)
    data = DataConfig(
        dataset="lab_folder",
        root=str(lab),
        classes=("background", "Tumor", "Stroma"),
        label_kind="classes",
        patch_shape=(32, 32),
        validation_slices=1,
    )
    training, validation = load_training_samples(data)
    for sample in training + validation:
        np.testing.assert_array_equal(sample.label.array[0], expected[sample.case_id])
    with pytest.raises(LabelError, match="'Stroma', not among the declared classes"):
        load_training_samples(data.model_copy(update={"classes": ("background", "Tumor")}))
