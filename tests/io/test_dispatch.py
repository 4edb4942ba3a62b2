from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import assert_same_volume, listing, make_volume

from medseg.errors import DataNotFoundError, FormatError, MedsegError
from medseg.io import SUPPORTED_SUFFIXES, Volume, open_array, read, split_key, suffix_of, write

ALL_WRITABLE = [".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".nhdr", ".tif", ".tiff", ".ome.tif", ".ome.tiff",
                ".h5", ".hdf5", ".hdf", ".zarr"]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "suffix"),
    [
        ("case.nii.gz", ".nii.gz"),
        ("CASE.NII.GZ", ".nii.gz"),
        ("a.b.nii", ".nii"),
        ("cells.ome.tif", ".ome.tif"),
        ("cells.ome.tiff", ".ome.tiff"),
        ("stack.tif", ".tif"),
        ("x.JPEG", ".jpeg"),
        ("store.zarr", ".zarr"),
        ("dir/file.hdf", ".hdf"),
    ],
)
def test_suffix_of_handles_double_suffixes(name, suffix):
    assert suffix_of(name) == suffix


def test_unknown_suffix_lists_supported_ones(tmp_path):
    with pytest.raises(FormatError, match=r"unsupported file type 'scan\.dcm'.*\.h5.*\.nii\.gz.*\.zarr"):
        read(tmp_path / "scan.dcm")
    with pytest.raises(FormatError, match=r"unsupported file type 'noext'"):
        write(make_volume(), tmp_path / "noext")
    assert set(SUPPORTED_SUFFIXES) >= {".nii.gz", ".ome.tif", ".png", ".bmp", ".jpg", ".h5", ".zarr", ".nrrd"}


@pytest.mark.parametrize(
    ("text", "path", "key"),
    [
        ("a/cremi.h5:/volumes/raw", "a/cremi.h5", "/volumes/raw"),
        ("cremi.hdf:volumes/raw", "cremi.hdf", "/volumes/raw"),
        ("s.zarr:/pred", "s.zarr", "/pred"),
        ("s.zarr/volumes/raw", "s.zarr", "/volumes/raw"),
        ("s.zarr:", "s.zarr", None),
        ("plain.h5", "plain.h5", None),
        ("image.nii.gz", "image.nii.gz", None),
        ("C:/data/x.h5:/raw", "C:/data/x.h5", "/raw"),
        ("runs.zarr/case.nii.gz", "runs.zarr/case.nii.gz", None),
    ],
)
def test_split_key(text, path, key):
    assert split_key(text) == (Path(path), key)


@pytest.mark.parametrize("suffix", [*ALL_WRITABLE, ".png"])
def test_missing_file_names_the_path(tmp_path, suffix):
    missing = tmp_path / "sub" / f"missing{suffix}"
    with pytest.raises(DataNotFoundError, match=rf"no such file: {missing}.*does not exist either"):
        read(missing)
    with pytest.raises(DataNotFoundError, match=r"no such file"):
        open_array(missing)


@pytest.mark.parametrize("suffix", ALL_WRITABLE)
def test_every_format_round_trips_through_dispatch(tmp_path, suffix):
    volume = make_volume((2, 3, 5, 4), np.float32)
    path = write(volume, tmp_path / "deep" / "er" / f"vol{suffix}")  # parents are created
    assert path == tmp_path / "deep" / "er" / f"vol{suffix}"
    atol = 1e-5 if suffix.startswith(".nii") else 0.0
    assert_same_volume(read(path), volume, atol=atol)
    assert not [p for p in path.parent.iterdir() if ".medseg-tmp-" in p.name]


def test_open_array_matches_read_for_every_format(tmp_path):
    volume = make_volume((2, 3, 5, 4), np.int16, oblique=False)
    for suffix in ALL_WRITABLE:
        path = write(volume, tmp_path / f"vol{suffix}")
        with open_array(path) as lazy:
            assert lazy.shape == volume.array.shape, suffix
            assert lazy.dtype == volume.array.dtype, suffix
            np.testing.assert_array_equal(lazy[:, 1:, ::2, -1], volume.array[:, 1:, ::2, -1], err_msg=suffix)
            np.testing.assert_allclose(lazy.spacing, volume.spacing, rtol=1e-6)


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch, volume3d):
    def explode(path, *args, **kwargs):
        Path(path).write_bytes(b"half a tiff")
        raise OSError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", explode)
    with pytest.raises(OSError, match="disk full"):
        write(volume3d, tmp_path / "out" / "stack.tif")
    assert listing(tmp_path / "out") == []


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch, volume3d):
    path = write(volume3d, tmp_path / "stack.tif")
    before = path.read_bytes()

    def explode(path, *args, **kwargs):
        Path(path).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", explode)
    with pytest.raises(OSError, match="disk full"):
        write(make_volume(seed=3), path)
    assert path.read_bytes() == before
    assert listing(tmp_path) == ["stack.tif"]


def test_failed_zarr_write_keeps_previous_store(tmp_path, monkeypatch, volume3d):
    write(volume3d, tmp_path / "s.zarr:/raw")
    import zarr

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(zarr.Group, "create_array", explode)
    with pytest.raises(FormatError, match=r"cannot write .*s\.zarr:/pred: disk full"):
        write(volume3d, tmp_path / "s.zarr:/pred")
    assert listing(tmp_path) == ["s.zarr"]
    monkeypatch.undo()
    assert_same_volume(read(f"{tmp_path}/s.zarr:/raw"), volume3d)


def test_write_rejects_bare_arrays(tmp_path):
    with pytest.raises(TypeError, match=r"takes a medseg.io.Volume, got ndarray.*Volume\(array\[None\]"):
        write(np.zeros((3, 4)), tmp_path / "x.tif")


def test_errors_share_the_medseg_base(tmp_path):
    with pytest.raises(MedsegError):
        read(tmp_path / "nope.tif")


def test_lazy_array_pickles_by_path(tmp_path, volume3d):
    path = write(volume3d, tmp_path / "stack.tif")
    with open_array(path) as lazy:
        clone = pickle.loads(pickle.dumps(lazy))
    with clone:
        np.testing.assert_array_equal(clone[0, 3], volume3d.array[0, 3])


def test_read_meta_records_source_and_format(tmp_path):
    path = write(Volume(np.zeros((1, 2, 3), np.uint8)), tmp_path / "a.png")
    meta = read(path).meta
    assert meta["source"] == str(path) and meta["format"] == "png"
