"""The napari plugin without napari: npe2 manifest validation, the reader's layers, the widget's prediction."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import tifffile

import medseg.napari
from medseg.cli.main import main
from medseg.io import Volume, read, write
from medseg.io.zarr_output import BlockOutput
from medseg.napari.reader import get_reader, read_layers
from medseg.napari.widget import predict_array

npe2 = pytest.importorskip("npe2", reason="npe2 is in the test extra")
MANIFEST = Path(medseg.napari.__file__).with_name("napari.yaml")


def test_manifest_is_valid_and_its_commands_import():
    manifest = npe2.PluginManifest.from_file(MANIFEST)
    assert manifest.name == "medseg"
    commands = {c.id: c.python_name for c in manifest.contributions.commands}
    assert set(commands) == {"medseg.get_reader", "medseg.predict_image_layer"}
    for python_name in commands.values():
        module, name = python_name.split(":")
        assert callable(getattr(importlib.import_module(module), name))
    assert manifest.contributions.widgets[0].autogenerate
    setup = (Path(medseg.__file__).parent.parent / "setup.cfg").read_text()
    assert "napari.manifest =\n    medseg = medseg.napari:napari.yaml" in setup


def test_reader_opens_ome_zarr_pyramids_with_geometry(tmp_path):
    labels = np.repeat(np.arange(40, dtype=np.uint32), 30).reshape(40, 30)
    out = BlockOutput(
        tmp_path / "case.ome.zarr",
        shape=labels.shape,
        dtype=np.uint32,
        spacing=(0.5, 0.25),
        origin=(3.0, 4.0),
        unit="um",
        pyramid_above=16,
    )
    out.write_block(0, (slice(None), slice(None)), labels)
    store = out.finish()
    reader = get_reader(str(store))
    assert reader is not None
    ((data, kwargs, kind),) = reader(str(store))
    assert kind == "labels" and kwargs["multiscale"] and len(data) == 3
    np.testing.assert_array_equal(np.asarray(data[1]), labels[::2, ::2])
    assert kwargs["scale"] == [0.5, 0.25] and kwargs["translate"] == [3.0, 4.0]
    assert kwargs["metadata"]["units"] == ["micrometer", "micrometer"]


def test_reader_opens_label_maps_images_and_run_folders(tmp_path):
    labels = Volume(
        np.arange(24, dtype=np.uint16).reshape(1, 2, 3, 4), spacing=(2.0, 1.0, 0.5), origin=(1.0, 2.0, 3.0)
    )
    path = write(labels, tmp_path / "run" / "predictions" / "case.nii.gz")
    ((data, kwargs, kind),) = read_layers(path)
    assert kind == "labels" and data.shape == (2, 3, 4) and kwargs["name"] == "case"
    assert kwargs["scale"] == pytest.approx([2.0, 1.0, 0.5]) and kwargs["translate"] == pytest.approx(
        [1.0, 2.0, 3.0]
    )
    image = write(Volume(np.random.default_rng(0).random((2, 5, 6)).astype(np.float32)), tmp_path / "two.tif")
    ((data, kwargs, kind),) = read_layers(image)
    assert kind == "image" and kwargs["channel_axis"] == 0 and data.shape == (2, 5, 6)
    (tmp_path / "run" / "checkpoints").mkdir()
    reader = get_reader(str(tmp_path / "run"))
    assert reader is not None
    assert [k for _, _, k in reader(str(tmp_path / "run"))] == ["labels"]
    assert get_reader(str(tmp_path / "elsewhere")) is None
    assert get_reader(str(tmp_path / "notes.txt")) is None


@pytest.mark.parametrize("kind", ["unet2d", "instances"])
def test_widget_prediction_equals_medseg_predict(runs, tmp_path, kind):
    if kind == "instances":
        source = next(runs[kind].parent.glob("lab/images/*.tif"))
    else:
        source = tmp_path / "section.tif"
        tifffile.imwrite(source, tifffile.imread(runs[kind].parent / "em" / "train-volume.tif")[0])
    image = read(source)
    fmt = ["--format", "instances"] if kind == "instances" else []
    argv = ["predict", "-m", str(runs[kind]), "-i", str(source), "-o", str(tmp_path / "cli"), *fmt]
    assert main([*argv, "--no-progress"]) == 0
    expected = read(tmp_path / "cli" / ("instances" if fmt else "") / f"{source.stem}.tif").array[0]
    labels, kwargs = predict_array(image.array[0], runs[kind], scale=image.spacing, translate=image.origin)
    np.testing.assert_array_equal(labels, expected)
    assert kwargs["scale"] == list(image.spacing)
    # the same image through the run's bioimage.io package
    package = tmp_path / "model.zip"
    assert main(["export", str(runs[kind]), "--bioimageio", str(package), "--author", "A B"]) == 0
    from_package, _ = predict_array(image.array[0], package, scale=image.spacing)
    np.testing.assert_array_equal(from_package, expected)
