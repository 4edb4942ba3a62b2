"""A cheap fingerprint of an input file or folder, to tell whether it changed between runs.

A resumable job (block-wise prediction) records the fingerprint of its input and refuses to
continue on a different one: blocks predicted from the old content would be mixed with
blocks of the new. The fingerprint holds the size and modification time (nanoseconds) and
a SHA-256 of a few pieces of the content (the start, the end and evenly spaced pieces
between), so it costs a few reads even for a file of many GiB. A folder (a Zarr store, a
folder of sections) is fingerprinted by the names, sizes and modification times of its
files, and the content of its small metadata files.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

__all__ = ["file_identity"]

#: Bytes read at the start, at the end and at each evenly spaced point of a file.
_PIECE = 64 * 1024
#: Evenly spaced pieces read between the start and the end of a file.
_PIECES = 8
#: Files of a folder whose whole content is hashed (format metadata, small).
_METADATA_NAMES = {".zarray", ".zattrs", ".zgroup", "zarr.json"}


def _hash_file(digest: Any, path: Path, size: int) -> None:
    with path.open("rb") as handle:
        if size <= _PIECE * (_PIECES + 2):
            digest.update(handle.read())
            return
        step = (size - _PIECE) // (_PIECES + 1)
        for offset in [i * step for i in range(_PIECES + 1)] + [size - _PIECE]:
            handle.seek(offset)
            digest.update(handle.read(_PIECE))


def file_identity(path: str | Path) -> dict[str, Any]:
    """Size, modification time and a sampled content hash of a file or folder.

    Parameters
    ----------
    path : path
        A file, or a folder (every file under it counts).

    Returns
    -------
    dict
        ``{"size": bytes, "mtime_ns": latest modification, "sha256": sampled hash}``,
        JSON-serialisable; equal dicts mean the input is (very likely) unchanged.
    """
    path = Path(path)
    digest = hashlib.sha256()
    if not path.is_dir():
        stat = path.stat()
        _hash_file(digest, path, stat.st_size)
        return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest.hexdigest()}
    size = mtime = 0
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            file = Path(root, name)
            stat = file.stat()
            size += stat.st_size
            mtime = max(mtime, stat.st_mtime_ns)
            digest.update(
                f"{file.relative_to(path).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
            )
            if name in _METADATA_NAMES:
                _hash_file(digest, file, stat.st_size)
    return {"size": size, "mtime_ns": mtime, "sha256": digest.hexdigest()}
