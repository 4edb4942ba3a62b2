"""``medseg predict --block-shape ... --ome-zarr``: the store opens in independent OME-Zarr readers."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from medseg.cli.main import main
from medseg.io import Volume, read, write

models = pytest.importorskip("ome_zarr_models", reason="ome-zarr-models is in the test extra")
pytest.importorskip("ome_zarr", reason="ome-zarr is in the test extra")


def test_blockwise_ome_zarr_output_is_accepted_by_ome_zarr_models_and_ome_zarr(runs, tmp_path):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    stack = read(runs["unet2d"].parent / "em" / "train-volume.tif")
    source = write(
        Volume(stack.array, spacing=(50.0, 4.0, 4.0), origin=(0.0, 8.0, 4.0), unit="nm"),
        tmp_path / "stack.nii.gz",
    )
    out = tmp_path / "out"
    argv = [
        "predict",
        "-m",
        str(runs["unet2d"]),
        "-i",
        str(source),
        "-o",
        str(out),
        "--block-shape",
        "2",
        "32",
        "32",
    ]
    assert main([*argv, "--ome-zarr", "--no-progress"]) == 0
    store = out / "stack.ome.zarr"
    label_image = models.open_ome_zarr(zarr.open_group(str(store), mode="r"))
    assert type(label_image).__name__ == "ImageLabel"
    (multiscale,) = label_image.attributes.ome.multiscales
    # NIfTI keeps nm as micron (spacing / 1000): the store says what the file says
    assert [a.unit for a in multiscale.axes] == ["micrometer"] * 3
    assert list(multiscale.datasets[0].coordinateTransformations[0].scale) == pytest.approx(
        [0.05, 0.004, 0.004]
    )
    nodes = [n for n in Reader(parse_url(str(store)))() if n.data]
    np.testing.assert_array_equal(np.asarray(nodes[0].data[0]), read(store).array[0])
    assert nodes[0].data[0].shape == stack.spatial_shape
