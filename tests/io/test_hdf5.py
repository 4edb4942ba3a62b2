from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest
from conftest import assert_same_volume, blobs, listing, make_volume

from medseg.errors import DataNotFoundError, FormatError
from medseg.io import open_array, read, write


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((1, 4, 6, 5), np.uint8), ((3, 4, 6, 5), np.float32), ((1, 6, 5), np.uint64), ((2, 6, 5), np.bool_)],
)
@pytest.mark.parametrize("suffix", [".h5", ".hdf5", ".hdf"])
def test_round_trip_is_exact(tmp_path, shape, dtype, suffix):
    volume = make_volume(shape, dtype)
    assert_same_volume(read(write(volume, tmp_path / f"vol{suffix}")), volume)
    assert listing(tmp_path) == [f"vol{suffix}"]


def test_written_attributes_follow_cremi(tmp_path, volume3d):
    write(volume3d, tmp_path / "out.h5:/volumes/raw")
    with h5py.File(tmp_path / "out.h5", "r") as handle:
        dataset = handle["volumes/raw"]
        assert dataset.shape == (4, 6, 5)  # single channel stored spatial-only
        np.testing.assert_array_equal(dataset.attrs["resolution"], [3.0, 0.5, 0.7])
        np.testing.assert_array_equal(dataset.attrs["offset"], volume3d.origin)
        np.testing.assert_array_equal(dataset.attrs["direction"], volume3d.direction)


def test_reads_cremi_style_file(tmp_path):
    raw = blobs((3, 8, 6), np.uint8)
    labels = blobs((3, 8, 6), np.uint64, seed=1)
    with h5py.File(tmp_path / "sample_A.hdf", "w") as handle:
        handle.create_dataset("volumes/raw", data=raw).attrs["resolution"] = (40.0, 4.0, 4.0)
        handle.create_dataset("volumes/labels/neuron_ids", data=labels).attrs["resolution"] = (40.0, 4.0, 4.0)
    volume = read(f"{tmp_path}/sample_A.hdf:/volumes/raw")
    assert volume.array.shape == (1, 3, 8, 6)
    np.testing.assert_array_equal(volume.array[0], raw)
    assert volume.spacing == (40.0, 4.0, 4.0)
    assert volume.origin == (0.0, 0.0, 0.0)
    assert volume.meta["key"] == "/volumes/raw"
    ids = read(f"{tmp_path}/sample_A.hdf:volumes/labels/neuron_ids")
    assert ids.array.dtype == np.uint64
    np.testing.assert_array_equal(ids.array[0], labels)


def test_missing_key_lists_available_datasets(tmp_path, volume3d):
    write(volume3d, tmp_path / "f.h5:/volumes/raw")
    with pytest.raises(
        DataNotFoundError, match=r"'/volumes/labels' does not exist .*f\.h5.*available datasets: /volumes/raw"
    ):
        read(f"{tmp_path}/f.h5:/volumes/labels")
    with pytest.raises(DataNotFoundError, match=r"'/volumes' is a group"):
        read(f"{tmp_path}/f.h5:/volumes")


def test_no_key_needs_exactly_one_dataset(tmp_path, volume3d):
    write(volume3d, tmp_path / "f.h5")
    assert_same_volume(read(tmp_path / "f.h5"), volume3d)  # the lone /data dataset
    write(volume3d, tmp_path / "f.h5:/other")
    with pytest.raises(DataNotFoundError, match=r"holds 2 datasets \(/data, /other\); name one"):
        read(tmp_path / "f.h5")


def test_writing_a_key_keeps_other_datasets(tmp_path, volume3d):
    write(volume3d, tmp_path / "f.h5:/volumes/raw")
    prediction = make_volume((2, 4, 6, 5), np.float32)
    write(prediction, tmp_path / "f.h5:/volumes/pred")
    write(prediction, tmp_path / "f.h5:/volumes/pred")  # overwrite in place
    assert_same_volume(read(f"{tmp_path}/f.h5:/volumes/raw"), volume3d)
    assert_same_volume(read(f"{tmp_path}/f.h5:/volumes/pred"), prediction)
    assert listing(tmp_path) == ["f.h5"]


def test_garbage_file_is_a_format_error(tmp_path):
    (tmp_path / "bad.h5").write_bytes(b"\x89HDF garbage" * 10)
    with pytest.raises(FormatError, match=r"cannot open HDF5 file .*bad\.h5") as info:
        read(tmp_path / "bad.h5")
    assert isinstance(info.value.__cause__, OSError)


def test_open_array_reads_slabs_and_closes(tmp_path):
    raw = blobs((6, 8, 7), np.uint8)
    with h5py.File(tmp_path / "em.h5", "w") as handle:
        handle.create_dataset("raw", data=raw, chunks=(2, 8, 7)).attrs["resolution"] = (40, 4, 4)
    lazy = open_array(f"{tmp_path}/em.h5:/raw")
    assert lazy.shape == (1, 6, 8, 7) and lazy.dtype == np.uint8 and lazy.ndim == 3
    assert lazy.spacing == (40.0, 4.0, 4.0)
    np.testing.assert_array_equal(lazy[0, 2:4], raw[2:4])
    np.testing.assert_array_equal(lazy[:, 1, ::2, -3:], raw[None, 1, ::2, -3:])
    np.testing.assert_array_equal(np.asarray(lazy), raw[None])
    clone = pickle.loads(pickle.dumps(lazy))  # re-opens by path, e.g. in a DataLoader worker
    np.testing.assert_array_equal(clone[0, 5], raw[5])
    clone.close()
    handle = lazy._source.file
    lazy.close()
    assert not handle  # h5py file closed
    lazy.close()  # idempotent


def test_truncated_file_is_a_format_error(tmp_path, volume3d):
    path = write(volume3d, tmp_path / "half.h5")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(FormatError, match=r"half\.h5.*truncated") as info:
        read(path)
    assert isinstance(info.value.__cause__, OSError)
