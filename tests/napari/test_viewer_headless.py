"""The plugin inside a real napari viewer (Qt offscreen): skipped where napari is not installed.

napari and Qt are not in the test extra (heavy); run this with an environment that has
them, e.g. ``QT_QPA_PLATFORM=offscreen pytest tests/napari`` after ``pip install
"medseg[napari]" pyqt5 pytest-qt``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import medseg.napari
from medseg.io import read
from medseg.io.zarr_output import BlockOutput
from medseg.napari.widget import predict_array

napari = pytest.importorskip("napari", reason="napari is not installed (not in the test extra)")
pytest.importorskip("pytestqt", reason="pytest-qt is needed for napari's viewer fixture")
npe2 = pytest.importorskip("npe2")


@pytest.fixture
def viewer(make_napari_viewer):
    manager = npe2.PluginManager.instance()
    if "medseg" not in manager._manifests:  # this checkout's manifest, whatever medseg is installed
        manager.register(npe2.PluginManifest.from_file(Path(medseg.napari.__file__).with_name("napari.yaml")))
    return make_napari_viewer()


def test_viewer_opens_ome_zarr_with_the_medseg_reader(viewer, tmp_path):
    labels = np.repeat(np.arange(40, dtype=np.uint32), 30).reshape(40, 30)
    out = BlockOutput(
        tmp_path / "case.ome.zarr",
        shape=labels.shape,
        dtype=np.uint32,
        spacing=(0.5, 0.25),
        unit="um",
        pyramid_above=16,
    )
    out.write_block(0, (slice(None), slice(None)), labels)
    layers = viewer.open(str(out.finish()), plugin="medseg")
    assert len(layers) == 1 and isinstance(layers[0], napari.layers.Labels)
    assert layers[0].multiscale and list(layers[0].scale) == [0.5, 0.25]
    np.testing.assert_array_equal(np.asarray(layers[0].data[0]), labels)


def test_widget_predicts_the_image_layer_into_labels(viewer, runs):
    image = read(next(runs["unet2d"].parent.glob("em/train-volume.tif")))
    layer = viewer.add_image(image.array[0, 0], scale=image.spacing[1:], name="section")
    _, widget = viewer.window.add_plugin_dock_widget("medseg", "Predict (medseg)")
    widget.image.value = layer
    widget.model.value = runs["unet2d"]
    widget()
    labels = viewer.layers[-1]
    assert isinstance(labels, napari.layers.Labels) and labels.name == "unet2d labels"
    expected, _ = predict_array(image.array[0, 0], runs["unet2d"], scale=image.spacing[1:])
    np.testing.assert_array_equal(labels.data, expected)
    assert list(labels.scale) == list(image.spacing[1:])
