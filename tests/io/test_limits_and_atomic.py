"""Size checks from headers before reading, and atomic writes: stale temporaries, full disks, messages."""

from __future__ import annotations

import errno
import os
import struct
import subprocess
from collections import namedtuple

import h5py
import nibabel as nib
import numpy as np
import pytest

from medseg.errors import MedsegError, MemoryLimitError, OutputError
from medseg.io import Volume, open_array, read, write
from medseg.io import _common as common
from medseg.io._limits import check_fits_in_memory, format_bytes
from medseg.io.zarr_output import BlockOutput


def _tiff_claiming(path, width: int, length: int) -> None:
    """A 138-byte uncompressed 8-bit TIFF whose tags claim ``length x width`` pixels."""
    entries = [(256, 4, width), (257, 4, length), (258, 3, 8), (259, 3, 1), (262, 3, 1)]
    entries += [(273, 4, 8), (277, 3, 1), (278, 4, length), (279, 4, 16)]
    out = b"II*\x00" + struct.pack("<I", 24) + b"\x00" * 16 + struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        out += struct.pack(
            "<HHIHH" if kind == 3 else "<HHII", tag, kind, 1, value, *((0,) if kind == 3 else ())
        )
    path.write_bytes(out + struct.pack("<I", 0))


def _nifti_claiming(path, shape) -> None:
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(np.float32)
    path.write_bytes(header.binaryblock + b"\x00" * 4)


def test_format_bytes():
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(32767**3 * 4) == "128.0 TiB"


@pytest.mark.parametrize("kind", ["nifti", "tiff", "hdf5", "mha"])
def test_a_header_claiming_more_than_memory_is_refused_with_the_file_and_the_hint(tmp_path, kind):
    if kind == "nifti":
        path, name, shape = tmp_path / "big.nii", None, (1, 32767, 32767, 32767)
        _nifti_claiming(path, shape[1:])
    elif kind == "tiff":
        path, name, shape = tmp_path / "big.tif", None, (1, 1_000_000, 65_000)
        _tiff_claiming(path, 65_000, 1_000_000)
    elif kind == "hdf5":
        path, name, shape = tmp_path / "big.h5", "raw", (1, 10_000, 10_000, 10_000)
        with h5py.File(path, "w") as handle:  # sparse: no chunk is written, the file stays tiny
            handle.create_dataset("raw", shape=shape[1:], dtype="uint8", chunks=(64, 64, 64))
    else:
        path, name, shape = tmp_path / "big.mha", None, (1, 32767, 32767, 32767)
        path.write_text(
            "ObjectType = Image\nNDims = 3\nDimSize = 32767 32767 32767\nElementType = MET_FLOAT\n"
            "ElementDataFile = LOCAL\n"
        )
    assert path.stat().st_size < 10_000
    target = f"{path}:/{name}" if name else path
    with pytest.raises(MemoryLimitError) as info:
        read(target)
    message = str(info.value)
    assert str(target) in message and "medseg.io.open_array" in message and "--block-shape" in message
    assert " x ".join(str(s) for s in shape) in message
    if kind != "mha":  # the lazy route still opens it
        with open_array(target) as lazy:
            assert lazy.shape == shape


def test_check_fits_in_memory_passes_small_arrays(tmp_path):
    check_fits_in_memory((1, 64, 64), np.float32, tmp_path / "small.nii")


def test_a_stale_temporary_of_a_dead_writer_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "case.nii.gz"
    dead_pid = 2**22 + 1  # above Linux's largest pid_max: no process has it
    stale = tmp_path / f".case.nii.gz.medseg-tmp-{dead_pid}-abc"
    stale.mkdir()
    (stale / "case.nii.gz").write_bytes(b"partial")
    live = tmp_path / f".case.nii.gz.medseg-tmp-{os.getppid()}-xyz"  # our parent runs: kept
    live.mkdir()
    other = tmp_path / f".other.nii.gz.medseg-tmp-{dead_pid}-abc"  # another target's: not touched
    other.mkdir()
    write(Volume(np.ones((1, 4, 4), np.float32)), target)
    assert not stale.exists() and live.is_dir() and other.is_dir()
    np.testing.assert_array_equal(read(target).array, np.ones((1, 4, 4), np.float32))


def test_enospc_during_a_write_names_the_target_and_leaves_nothing(tmp_path, monkeypatch):
    def full_disk(image, filename):
        with open(filename, "wb") as fh:
            fh.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device", str(filename))

    monkeypatch.setattr(nib, "save", full_disk)
    target = tmp_path / "out" / "case.nii.gz"
    with pytest.raises(OutputError) as info:
        write(Volume(np.ones((1, 4, 4), np.float32)), target)
    message = str(info.value)
    assert message.startswith(f"cannot write {target}: no space left") and ".medseg-tmp" not in message
    assert list(target.parent.iterdir()) == []


def test_hdf5_refuses_before_writing_when_the_disk_lacks_space(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(common.shutil, "disk_usage", lambda _: usage(10_000, 9_000, 1_000))
    target = tmp_path / "out.h5"
    with pytest.raises(OutputError, match=r"needs up to 1\.0 MiB but only 1000 B are free"):
        write(Volume(np.ones((1, 64, 64), np.float32)), target)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs: a disk that really fills up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], check=False
    ).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


def test_a_real_full_disk_gives_one_clear_error_for_every_format(tiny_disk):
    volume = Volume(np.random.default_rng(0).random((1, 48, 48, 48), dtype=np.float32))
    for name in ("a.h5", "b.nii.gz", "c.tif", "d.zarr"):
        with pytest.raises(MedsegError) as info:
            write(volume, tiny_disk / name)
        assert str(tiny_disk / name) in str(info.value) and ".medseg-tmp" not in str(info.value)
        assert list(tiny_disk.iterdir()) == []


def test_a_block_wise_store_filling_the_disk_names_it(tiny_disk):
    target = tiny_disk / "pred.zarr"
    output = BlockOutput(target, shape=(64, 64, 64), dtype=np.float32, chunks=(16, 64, 64))
    noise = np.random.default_rng(0).random((16, 64, 64), dtype=np.float32)  # incompressible
    with pytest.raises(OutputError) as info:
        for index in range(4):
            output.write_block(index, (slice(16 * index, 16 * (index + 1)),), noise)
    assert str(info.value).startswith(f"cannot write {target}: no space left")
