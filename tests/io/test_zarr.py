from __future__ import annotations

import numpy as np
import pytest
import zarr
from conftest import assert_same_volume, blobs, listing, make_volume

from medseg.errors import DataNotFoundError, FormatError
from medseg.io import Volume, open_array, read, write


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((1, 4, 6, 5), np.uint8), ((3, 4, 6, 5), np.float32), ((1, 6, 5), np.int64), ((2, 6, 5), np.bool_)],
)
def test_round_trip_is_exact(tmp_path, shape, dtype):
    volume = make_volume(shape, dtype)
    assert_same_volume(read(write(volume, tmp_path / "vol.zarr")), volume)
    assert_same_volume(read(write(volume, tmp_path / "grp.zarr:/volumes/raw")), volume)
    assert listing(tmp_path) == ["grp.zarr", "vol.zarr"]


def test_path_inside_store_works_like_key(tmp_path, volume3d):
    write(volume3d, tmp_path / "s.zarr/volumes/raw")
    assert (tmp_path / "s.zarr").is_dir()
    assert_same_volume(read(f"{tmp_path}/s.zarr:/volumes/raw"), volume3d)
    assert_same_volume(read(tmp_path / "s.zarr" / "volumes" / "raw"), volume3d)


def test_reads_store_written_by_zarr(tmp_path):
    raw = blobs((3, 8, 6), np.uint16)
    root = zarr.open_group(str(tmp_path / "em.zarr"), mode="w")
    array = root.create_array("raw", shape=raw.shape, dtype=raw.dtype, chunks=(1, 8, 6))
    array[...] = raw
    array.attrs["resolution"] = [40, 4, 4]
    volume = read(tmp_path / "em.zarr")  # the only array
    np.testing.assert_array_equal(volume.array[0], raw)
    assert volume.spacing == (40.0, 4.0, 4.0)


def test_writing_a_key_keeps_other_arrays_and_replaces_rewritten(tmp_path, volume3d):
    write(volume3d, tmp_path / "s.zarr:/raw")
    pred = make_volume((2, 4, 6, 5), np.float32)
    write(pred, tmp_path / "s.zarr:/pred")
    write(pred, tmp_path / "s.zarr:/pred")
    assert_same_volume(read(f"{tmp_path}/s.zarr:/raw"), volume3d)
    assert_same_volume(read(f"{tmp_path}/s.zarr:/pred"), pred)
    write(volume3d, tmp_path / "s.zarr")  # no key: a fresh store
    assert_same_volume(read(tmp_path / "s.zarr"), volume3d)
    assert listing(tmp_path) == ["s.zarr"]


def test_missing_key_lists_available_arrays(tmp_path, volume3d):
    write(volume3d, tmp_path / "s.zarr:/volumes/raw")
    write(volume3d, tmp_path / "s.zarr:/volumes/labels")
    with pytest.raises(
        DataNotFoundError,
        match=r"'/pred' does not exist in Zarr store .*s\.zarr; available arrays: /volumes/labels, /volumes/raw",
    ):
        read(f"{tmp_path}/s.zarr:/pred")
    with pytest.raises(DataNotFoundError, match=r"holds 2 arrays"):
        read(tmp_path / "s.zarr")


def test_missing_store_is_data_not_found(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"no such file: .*nope\.zarr"):
        read(f"{tmp_path}/nope.zarr:/raw")


def test_directory_that_is_not_a_store_is_a_format_error(tmp_path):
    (tmp_path / "bad.zarr").mkdir()
    (tmp_path / "bad.zarr" / "zarr.json").write_text("{ not json")
    with pytest.raises(FormatError, match=r"cannot open Zarr store .*bad\.zarr") as info:
        read(tmp_path / "bad.zarr")
    assert info.value.__cause__ is not None


def test_open_array_reads_blocks(tmp_path):
    volume = make_volume((2, 5, 6, 7), np.int16)
    write(volume, tmp_path / "s.zarr:/pred")
    with open_array(f"{tmp_path}/s.zarr:/pred") as lazy:
        assert lazy.shape == (2, 5, 6, 7) and lazy.dtype == np.int16
        assert lazy.spacing == volume.spacing
        np.testing.assert_array_equal(lazy[1, 1:3, :, ::-2], volume.array[1, 1:3, :, ::-2])


def test_ome_zarr_is_read_as_its_array_and_named_without_suffix(tmp_path, volume3d):
    from medseg.io.dispatch import suffix_of

    store = tmp_path / "case.ome.zarr"
    group = zarr.open_group(str(store), mode="w", zarr_format=3)
    group.create_array("0", data=np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    assert suffix_of(store) == ".ome.zarr"
    np.testing.assert_array_equal(read(store).array[0], np.arange(24).reshape(2, 3, 4))
    with pytest.raises(FormatError, match="--ome-zarr"):
        write(volume3d, tmp_path / "out.ome.zarr")
    assert not (tmp_path / "out.ome.zarr").exists()


def test_finished_output_problem_tells_finished_outputs_from_others(tmp_path):
    from medseg.io.zarr_output import BlockOutput, finished_output_problem

    store = tmp_path / "case.zarr"
    store.write_text("a file")
    assert "must be a folder" in finished_output_problem(store)
    out = BlockOutput(store, shape=(4, 6), dtype=np.uint8, settings={"job": 1}, overwrite=True)
    out.write_block(0, (slice(0, 4), slice(0, 6)), np.full((4, 6), 3, np.uint8), state={"n": 1})
    assert out.finish() == store and store.is_dir()  # the plain file was replaced
    assert finished_output_problem(store) is None
    # a run killed between moving the store into place and tidying it: complete, tidied on sight
    (store / "medseg_done_blocks").mkdir()
    assert finished_output_problem(store) is None and not (store / "medseg_done_blocks").exists()
    np.testing.assert_array_equal(read(store).array[0], np.full((4, 6), 3, np.uint8))
    broken = tmp_path / "broken.zarr"
    broken.mkdir()
    (broken / ".zarray").write_text("{")
    assert "does not open as a Zarr array" in finished_output_problem(broken)
    garbage = tmp_path / "case.tif"
    garbage.write_bytes(b"II*\x00garbage")
    assert "cannot be read" in finished_output_problem(garbage)
    write(Volume(np.ones((1, 4, 6), np.uint8)), garbage)
    assert finished_output_problem(garbage) is None
