"""OME-Zarr label images that independent readers accept: ome-zarr-models validation and ome-zarr's reader."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from medseg.io.zarr_output import BlockOutput, pyramid_shapes

models = pytest.importorskip("ome_zarr_models", reason="ome-zarr-models is in the test extra")
pytest.importorskip("ome_zarr", reason="ome-zarr is in the test extra")


def _write(path, labels, *, spacing, origin, unit, above):
    out = BlockOutput(
        path,
        shape=labels.shape,
        dtype=np.uint32,
        spacing=spacing,
        origin=origin,
        unit=unit,
        pyramid_above=above,
    )
    half = labels.shape[-2] // 2  # two blocks, as block-wise prediction writes them
    out.write_block(0, (..., slice(0, half), slice(None)), labels[..., :half, :])
    out.write_block(1, (..., slice(half, None), slice(None)), labels[..., half:, :])
    return out.finish()


def _read_with_ome_zarr(path):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    nodes = list(Reader(parse_url(str(path)))())
    node = next(n for n in nodes if n.data)
    return [np.asarray(d) for d in node.data], node.metadata


def test_pyramid_shapes():
    assert pyramid_shapes((5000, 3000), above=2048) == [(2500, 1500), (1250, 750)]
    assert pyramid_shapes((4, 70, 40), above=16) == [(4, 35, 20), (4, 18, 10), (4, 9, 5)]
    assert pyramid_shapes((4, 16, 16), above=16) == []


@pytest.mark.parametrize("shape", [(70, 40), (3, 70, 40)])
def test_label_image_with_pyramid_is_valid_and_read_by_ome_zarr(tmp_path, shape):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 50, shape).astype(np.uint32)
    dims = len(shape)
    spacing, origin = (2.0, 0.5, 0.25)[-dims:], (10.0, 1.0, -3.0)[-dims:]
    store = _write(tmp_path / "case.ome.zarr", labels, spacing=spacing, origin=origin, unit="um", above=16)
    # ome-zarr-models: the store is an NGFF 0.5 image-label with every level declared
    image = models.open_ome_zarr(zarr.open_group(str(store), mode="r"))
    assert type(image).__name__ == "ImageLabel"
    datasets = image.attributes.ome.multiscales[0].datasets
    assert [d.path for d in datasets] == ["0", "1", "2", "3"]
    assert list(datasets[2].coordinateTransformations[0].scale) == [
        *spacing[:-2],
        spacing[-2] * 4,
        spacing[-1] * 4,
    ]
    assert list(datasets[2].coordinateTransformations[1].translation) == list(origin)
    assert [a.unit for a in image.attributes.ome.multiscales[0].axes] == ["micrometer"] * dims
    # ome-zarr's reader: the levels are the labels sampled every 2**k pixels in Y and X
    levels, metadata = _read_with_ome_zarr(store)
    assert len(levels) == 4
    for k, level in enumerate(levels):
        np.testing.assert_array_equal(level, labels[..., :: 2**k, :: 2**k])
    assert [a["name"] for a in metadata["axes"]] == list("zyx"[-dims:])


def test_small_label_image_has_one_level(tmp_path):
    labels = np.arange(12, dtype=np.uint32).reshape(3, 4)
    store = _write(
        tmp_path / "small.ome.zarr", labels, spacing=(1.0, 1.0), origin=(0.0, 0.0), unit=None, above=2048
    )
    image = models.open_ome_zarr(zarr.open_group(str(store), mode="r"))
    assert [d.path for d in image.attributes.ome.multiscales[0].datasets] == ["0"]
    levels, _ = _read_with_ome_zarr(store)
    np.testing.assert_array_equal(levels[0], labels)


def test_finished_store_keeps_no_bookkeeping_and_counts_as_finished(tmp_path):
    from medseg.io.zarr_output import finished_output_problem

    labels = np.arange(70 * 40, dtype=np.uint32).reshape(70, 40)
    store = _write(
        tmp_path / "case.ome.zarr", labels, spacing=(1.0, 1.0), origin=(0.0, 0.0), unit=None, above=16
    )
    assert sorted(p.name for p in store.iterdir()) == ["0", "1", "2", "3", "zarr.json"]
    assert "medseg_state" not in zarr.open_array(str(store / "0"), mode="r").attrs
    assert finished_output_problem(store) is None
