"""MoNuSeg (TIFF + Aperio XML) and GlaS (BMP + _anno BMP) loaders on synthetic files in the real layouts."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medseg.data.histo import (
    get_monuseg_paths,
    load_glas_samples,
    load_monuseg_samples,
    rasterize_aperio_xml,
)
from medseg.data.synthetic.histo import aperio_xml, make_histo_tile, write_glas, write_monuseg
from medseg.errors import DataNotFoundError, FormatError, ShapeError


def test_monuseg_round_trip(tmp_path):
    written = write_monuseg(tmp_path, n_images=2, shape=(96, 96), n_nuclei=30, seed=4)
    samples = load_monuseg_samples(tmp_path)
    assert [s.case_id for s in samples] == [p.stem for p, _, _ in written]
    for sample, (_, _, truth) in zip(samples, written, strict=True):
        assert sample.image.array.shape == (3, 96, 96) and sample.image.array.dtype == np.uint8
        assert sample.label.array.dtype == np.int32
        assert np.array_equal(sample.label.array[0], truth)
        assert sample.image.spacing == (0.25, 0.25) and sample.image.unit == sample.label.unit == "um"
    # touching nuclei: some nucleus borders another one directly
    lab = samples[0].label.array[0]
    touching = (lab[:, 1:] != lab[:, :-1]) & (lab[:, 1:] > 0) & (lab[:, :-1] > 0)
    assert touching.any()


def test_monuseg_test_split_layout(tmp_path):
    write_monuseg(tmp_path, n_images=1, shape=(64, 64), n_nuclei=5, split="test")
    [(image, xml)] = get_monuseg_paths(tmp_path, "test")
    assert image.parent.name == "MoNuSegTestData" and xml.suffix == ".xml"


def test_many_nuclei_need_more_than_uint8(tmp_path):
    tile = make_histo_tile((128, 128), n_nuclei=300, n_glands=0, nucleus_radius=3.0, seed=1)
    xml = tmp_path / "many.xml"
    xml.write_text(aperio_xml(tile.nucleus_polygons))
    label = rasterize_aperio_xml(xml, (128, 128))
    assert label.max() == 300 and np.array_equal(label, tile.nuclei)


def test_polygon_out_of_bounds_names_file_and_region(tmp_path):
    square = np.array([[10.0, 10.0], [20.0, 10.0], [20.0, 20.0]])
    outside = np.array([[50.0, 50.0], [80.0, 50.0], [80.0, 70.0]])
    xml = tmp_path / "tile.xml"
    xml.write_text(aperio_xml([square, outside]))
    with pytest.raises(FormatError, match=r"tile\.xml, region Id=2: vertex \(x=80\.0, y=50\.0\).*64 x 64"):
        rasterize_aperio_xml(xml, (64, 64))
    clipped = rasterize_aperio_xml(xml, (64, 64), clip=True)
    assert set(np.unique(clipped)) == {0, 1, 2}


def test_monuseg_missing_xml_and_bad_xml(tmp_path):
    written = write_monuseg(tmp_path, n_images=2, shape=(64, 64), n_nuclei=5)
    written[1][1].unlink()
    with pytest.raises(DataNotFoundError, match=rf"no label for case '{written[1][0].stem}' .*\.xml"):
        get_monuseg_paths(tmp_path)
    written[0][1].write_text("<Annotations><Region")
    with pytest.raises(FormatError, match="not valid XML"):
        rasterize_aperio_xml(written[0][1], (64, 64))


def test_glas_round_trip(tmp_path):
    written = write_glas(tmp_path, n_train=2, n_test_a=1, n_test_b=1, shape=(64, 80))
    train = load_glas_samples(tmp_path, "train")
    assert [s.case_id for s in train] == ["train_1", "train_2"]
    for sample, (_, _, truth) in zip(train, written[:2], strict=True):
        assert sample.image.array.shape == (3, 64, 80)
        assert np.array_equal(sample.label.array[0], truth) and truth.max() >= 1
        assert sample.image.spacing == (0.62005, 0.62005)
    assert [s.case_id for s in load_glas_samples(tmp_path, "test")] == ["testA_1", "testB_1"]


def test_glas_missing_anno_and_mismatch(tmp_path):
    written = write_glas(tmp_path, n_train=2, n_test_a=0, shape=(64, 80))
    Image.fromarray(np.zeros((60, 80), np.uint8)).save(written[0][1])
    with pytest.raises(ShapeError, match=r"train_1_anno\.bmp has spatial shape \(60, 80\)"):
        load_glas_samples(tmp_path)
    written[0][1].unlink()
    with pytest.raises(
        DataNotFoundError, match=r"no label for case 'train_1' \(expected .*train_1_anno\.bmp\)"
    ):
        load_glas_samples(tmp_path)
