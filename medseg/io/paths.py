"""Checks and ordering of input paths, shared by the format readers and the dataset loaders."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from medseg.errors import DataNotFoundError, ShapeError

__all__ = ["check_same_grid", "file_sha256", "natural_key", "require_dir", "require_file"]


def require_file(path: str | Path, what: str | None = None, fix: str = "check the path") -> Path:
    """``path`` when it exists, else :class:`DataNotFoundError` naming it, ``what`` it is and the ``fix``.

    Containers that are folders (a Zarr store) count as files.
    """
    path = Path(path)
    if not path.exists():
        if what is not None:
            raise DataNotFoundError(f"{what} not found: expected {path}; {fix}")
        parent = path.parent
        hint = "" if parent.exists() else f" (its folder {parent} does not exist either)"
        raise DataNotFoundError(f"no such file: {path}{hint}; {fix}")
    return path


def require_dir(path: str | Path, what: str, fix: str) -> Path:
    """``path`` when it is a folder, else :class:`DataNotFoundError` naming it, ``what`` it is and the ``fix``."""
    path = Path(path)
    if not path.is_dir():
        raise DataNotFoundError(f"{what} not found: expected folder {path}; {fix}")
    return path


def natural_key(path: str | Path) -> list[int | str]:
    """Sort key so that ``2.bmp`` comes before ``10.bmp``.

    Examples
    --------
    >>> sorted(["t10.tif", "t2.tif"], key=natural_key)
    ['t2.tif', 't10.tif']
    """
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", Path(path).name)]


def check_same_grid(
    image_shape: Iterable[int], label_shape: Iterable[int], image: object, label: object
) -> None:
    """Raise :class:`ShapeError` when an image and its label map have different spatial shapes."""
    image_shape, label_shape = tuple(image_shape), tuple(label_shape)
    if image_shape != label_shape:
        raise ShapeError(
            f"label {label} has spatial shape {label_shape} but image {image} has {image_shape}: "
            "they must be on the same grid; check that the files belong together"
        )


def file_sha256(path: str | Path, *, on_chunk: Callable[[int], None] | None = None) -> str:
    """Hex SHA-256 of a file, read in 1 MiB pieces (the one checksum helper of medseg).

    Parameters
    ----------
    path : path
        The file.
    on_chunk : callable, optional
        Called with the byte count of each piece read (a progress bar's ``update``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "x"
    >>> _ = f.write_bytes(b"abc")
    >>> file_sha256(f)[:16]
    'ba7816bf8f01cfea'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while piece := fh.read(1 << 20):
            digest.update(piece)
            if on_chunk is not None:
                on_chunk(len(piece))
    return digest.hexdigest()
