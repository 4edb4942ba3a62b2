"""EM loaders on fixture files in the real formats: ISBI 2012 TIFFs, CREMI HDF5, generic lazy stacks."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest
import tifffile
import zarr

from medseg.data.em import (
    classes_to_isbi,
    get_isbi2012_paths,
    isbi_labels_to_classes,
    load_cremi_sample,
    load_isbi2012_samples,
    open_cremi,
    open_em_stack,
    split_sections,
)
from medseg.data.synthetic.em import write_isbi2012
from medseg.errors import DataNotFoundError, FormatError, LabelError, ShapeError
from medseg.io import LazyArray


@pytest.fixture
def isbi_root(tmp_path):
    write_isbi2012(tmp_path, shape=(3, 48, 48), seed=3)
    return tmp_path


def test_isbi_polarity_and_classes(isbi_root):
    raw_labels = tifffile.imread(isbi_root / "train-labels.tif")
    [sample] = load_isbi2012_samples(isbi_root)
    assert sample.image.array.shape == (1, 3, 48, 48) and sample.image.array.dtype == np.uint8
    assert sample.image.spacing == (50.0, 4.0, 4.0)
    label = sample.label.array[0]
    # medseg: 0 = cell (ISBI 255), 1 = membrane (ISBI 0)
    assert np.array_equal(label == 1, raw_labels == 0) and np.array_equal(label == 0, raw_labels == 255)
    assert np.array_equal(classes_to_isbi(label), raw_labels)


def test_isbi_per_section_and_test_split(isbi_root):
    sections = load_isbi2012_samples(isbi_root, per_section=True)
    assert [s.case_id for s in sections] == ["isbi2012_train_z00", "isbi2012_train_z01", "isbi2012_train_z02"]
    assert sections[1].image.array.shape == (1, 48, 48) and sections[1].image.spacing == (4.0, 4.0)
    [test] = load_isbi2012_samples(isbi_root, "test")
    assert test.label is None
    assert split_sections(30, 5) == (list(range(25)), list(range(25, 30)))


def test_isbi_unknown_label_value(isbi_root):
    labels = tifffile.imread(isbi_root / "train-labels.tif")
    labels[0, 0, :3] = 128
    tifffile.imwrite(isbi_root / "train-labels.tif", labels, photometric="minisblack")
    with pytest.raises(LabelError, match=r"train-labels\.tif holds values \[128\]"):
        load_isbi2012_samples(isbi_root)


def test_isbi_missing_label(isbi_root):
    (isbi_root / "train-labels.tif").unlink()
    with pytest.raises(DataNotFoundError, match=r"no label for ISBI 2012 train.*train-labels\.tif"):
        get_isbi2012_paths(isbi_root)


def test_isbi_shape_mismatch(isbi_root):
    tifffile.imwrite(
        isbi_root / "train-labels.tif", np.full((3, 40, 48), 255, np.uint8), photometric="minisblack"
    )
    with pytest.raises(ShapeError, match=r"train-labels\.tif has spatial shape \(3, 40, 48\).*\(3, 48, 48\)"):
        load_isbi2012_samples(isbi_root)


def test_isbi_truncated_tiff(isbi_root):
    path = isbi_root / "train-volume.tif"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(FormatError, match=r"train-volume\.tif.*truncated"):
        load_isbi2012_samples(isbi_root)


def test_isbi_label_conversion_rejects_grey():
    with pytest.raises(LabelError, match="<array>"):
        isbi_labels_to_classes(np.array([[0, 255, 7]]))


@pytest.fixture
def cremi_file(tmp_path):
    path = tmp_path / "sample_A_20160501.hdf"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        raw = f.create_dataset(
            "volumes/raw", data=rng.integers(0, 255, (4, 32, 32), dtype=np.uint8), chunks=True
        )
        raw.attrs["resolution"] = (40.0, 4.0, 4.0)
        ids = np.repeat(np.arange(1, 5, dtype=np.uint64), 8)[None, :, None] * np.ones((4, 1, 32), np.uint64)
        f.create_dataset("volumes/labels/neuron_ids", data=ids)
    return path


def test_cremi_opens_lazily_through_medseg_io(cremi_file, caplog):
    with open_cremi(cremi_file) as arrays:
        assert arrays.spacing == (40.0, 4.0, 4.0) and arrays.raw.unit == "nm"
        assert arrays.raw.shape == (1, 4, 32, 32) and arrays.labels.dtype == np.uint64
        # the label dataset has no resolution attribute: it takes the raw's spacing
        assert arrays.labels.spacing == (40.0, 4.0, 4.0) and arrays.labels.unit == "nm"
        block = arrays.labels[0, 1, 8:16, :4]
        assert np.all(block == 2)
    sample = load_cremi_sample(cremi_file)
    assert isinstance(sample.image, LazyArray) and sample.image.shape == (1, 4, 32, 32)
    assert sample.label.dtype == np.uint64 and sample.case_id == "sample_A_20160501"
    np.testing.assert_array_equal(sample.label[0, :, :, 0], np.repeat(np.arange(1, 5), 8)[None].repeat(4, 0))
    sample.image.close()
    sample.label.close()
    with h5py.File(cremi_file, "a") as f:
        del f["volumes/raw"].attrs["resolution"]
    with open_cremi(cremi_file, label_key=None) as arrays:
        assert arrays.spacing == (40.0, 4.0, 4.0) and arrays.labels is None
    assert "no 'resolution' attribute; assuming CREMI's 40 x 4 x 4 nm" in caplog.text


def test_cremi_missing_labels_and_bad_file(cremi_file, tmp_path):
    with pytest.raises(DataNotFoundError, match=r"no label for CREMI file .*'/volumes/labels/clefts'"):
        open_cremi(cremi_file, label_key="volumes/labels/clefts")
    bad = tmp_path / "sample_B.hdf"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(FormatError, match=r"HDF5 file .*sample_B\.hdf"):
        open_cremi(bad)


def test_open_em_stack_h5_zarr_tiff_folder(tmp_path):
    data = np.arange(3 * 16 * 20, dtype=np.uint8).reshape(3, 16, 20)
    with h5py.File(tmp_path / "stack.h5", "w") as f:
        f.create_dataset("raw", data=data, chunks=(1, 8, 8))
    zarr.save_array(str(tmp_path / "stack.zarr"), data)
    folder = tmp_path / "sections"
    folder.mkdir()
    for z in range(3):
        tifffile.imwrite(folder / f"sec_{z + 8}.tif", data[z])  # natural order: 8, 9, 10
    for stack in (
        open_em_stack(tmp_path / "stack.h5", "raw"),
        open_em_stack(tmp_path / "stack.zarr"),
        open_em_stack(folder),
    ):
        assert isinstance(stack, LazyArray) and tuple(stack.shape) == (1, 3, 16, 20)
        assert np.array_equal(stack[0, 1:3, 4:8, 2:5], data[1:3, 4:8, 2:5])
        assert np.array_equal(stack[:, 2], data[2][None])
        assert np.array_equal(stack[0, ::-2, 3], data[::-2, 3])
    assert np.array_equal(pickle.loads(pickle.dumps(open_em_stack(folder)))[...], data[None])


def test_tiff_folder_sections_must_match(tmp_path):
    tifffile.imwrite(tmp_path / "s1.tif", np.zeros((4, 5), np.uint8))
    tifffile.imwrite(tmp_path / "s2.tif", np.zeros((4, 6), np.uint8))
    stack = open_em_stack(tmp_path)
    with pytest.raises(FormatError, match=r"s2\.tif has shape \(4, 6\).*like s1\.tif"):
        stack[0, 1]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataNotFoundError, match=r"no files matching"):
        open_em_stack(empty)
