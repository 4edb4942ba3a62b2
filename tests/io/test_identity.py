from __future__ import annotations

import os

import numpy as np

from medseg.io import Volume, write
from medseg.io.identity import file_identity


def test_identity_of_a_file_changes_with_size_content_and_mtime(tmp_path):
    path = tmp_path / "big.bin"
    data = bytearray(np.random.default_rng(0).integers(0, 256, 3_000_000, dtype=np.uint8).tobytes())
    path.write_bytes(data)
    first = file_identity(path)
    assert first == file_identity(path) and first["size"] == 3_000_000
    stat = path.stat()
    data[0] ^= 0xFF  # the first sampled piece, same size, same mtime
    path.write_bytes(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = file_identity(path)
    assert second["sha256"] != first["sha256"] and second["mtime_ns"] == first["mtime_ns"]
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert file_identity(path)["mtime_ns"] == first["mtime_ns"] + 10**9


def test_identity_of_a_zarr_store_follows_its_files(tmp_path):
    store = write(Volume(np.zeros((1, 4, 8, 8), np.float32)), tmp_path / "raw.zarr")
    first = file_identity(store)
    assert first == file_identity(store)
    write(Volume(np.ones((1, 4, 8, 8), np.float32)), store)
    assert file_identity(store) != first
