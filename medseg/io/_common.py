"""Helpers shared by the format modules: atomic output, geometry (de)serialisation, checks.

Private to :mod:`medseg.io`; the format modules and :mod:`medseg.io.dispatch` use them.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, cast

import numpy as np

from medseg.errors import FormatError, MedsegError, OutputError
from medseg.io._limits import format_bytes
from medseg.io.paths import require_file
from medseg.io.volume import Volume

__all__ = [
    "atomic_output",
    "recording_writer",
    "clean_stale_temporaries",
    "output_errors",
    "geometry_from_attrs",
    "geometry_to_attrs",
    "make_volume",
    "require_file",
]

logger = logging.getLogger(__name__)

# temporary outputs are named ".<target name>.medseg-tmp-<pid>-<random>" next to the target
_TMP_MARK = ".medseg-tmp-"
_FULL_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}{_TMP_MARK}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def clean_stale_temporaries(path: Path) -> list[Path]:
    """Remove temporary outputs of ``path`` left by writers that died (killed, crashed, power loss).

    They are the ``.<name>.medseg-tmp-<pid>-*`` entries next to ``path`` whose process
    no longer runs; those of live processes (a concurrent writer) are kept.

    Returns
    -------
    list of Path
        The removed entries.
    """
    path = Path(path)
    prefix = _tmp_prefix(path)
    removed = []
    try:
        candidates = [p for p in path.parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return removed
    for entry in candidates:
        pid_text = entry.name[len(prefix) :].split("-", 1)[0]
        if pid_text.isdigit() and (int(pid_text) == os.getpid() or _pid_alive(int(pid_text))):
            continue  # a write in progress, in this process or another
        logger.info("removing %s, left by an interrupted write of %s", entry, path)
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _file_size_limit() -> int | None:
    """This process's limit on the size of a file it writes (RLIMIT_FSIZE, ``ulimit -f``), if any."""
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def _over_file_size_limit(path: Path, limit: int) -> OutputError:
    return OutputError(
        f"cannot write {path}: files written by this process are limited to {format_bytes(limit)} "
        "(the file-size limit, ulimit -f); nothing was written: raise the limit or write a smaller output"
    )


def _check_free_space(path: Path, needed: int) -> None:
    limit = _file_size_limit()
    if limit is not None and needed > limit:
        raise _over_file_size_limit(path, limit)
    free = _free_bytes(path.parent)
    if free is not None and needed > free:
        raise OutputError(
            f"cannot write {path}: it needs up to {format_bytes(needed)} but only {format_bytes(free)} are "
            f"free on the disk holding {path.parent}; free some space or choose another output folder"
        )


def _output_error(err: OSError, path: Path, tmp_dir: Path) -> OutputError:
    """An :class:`OutputError` naming the target ``path`` (never the temporary one) and the fix."""
    free = _free_bytes(path.parent)
    if err.errno in _FULL_DISK_ERRNOS or (err.errno is None and free is not None and free < 1 << 20):
        return OutputError(
            f"cannot write {path}: no space left on the disk holding {path.parent}; nothing was written: "
            "free some space or choose another output folder"
        )
    limit = _file_size_limit()
    if limit is not None and (err.errno == errno.EFBIG or err.errno is None):
        return _over_file_size_limit(path, limit)
    reason = _renamed(err.strerror or str(err), path, tmp_dir)
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(
            f"cannot write {path}: {reason}; choose a folder you can write to or fix its permissions"
        )
    return OutputError(f"cannot write {path}: {reason}")


def _renamed(text: str, path: Path, tmp_dir: Path) -> str:
    return text.replace(str(tmp_dir / path.name), str(path)).replace(str(tmp_dir), str(path.parent))


@contextlib.contextmanager
def output_errors(path: Path) -> Iterator[None]:
    """Turn an :class:`OSError` raised while writing ``path`` in place into an :class:`OutputError`.

    For outputs written piece by piece where they stand (a resumable block-wise
    store); the message names ``path`` and says when the disk is full.
    """
    try:
        yield
    except OSError as err:
        raise _output_error(err, Path(path), Path(path).parent) from err


@contextlib.contextmanager
def atomic_output(
    path: Path, *, copy_existing: bool = False, expected_bytes: int | None = None
) -> Iterator[Path]:
    """Yield a temporary path to write ``path`` to; move it into place only on success.

    The temporary path lives in a hidden directory next to ``path`` named
    ``.<name>.medseg-tmp-<pid>-<random>`` (same file system, so the final move is an
    atomic ``os.replace``; the name says which target and which process it belongs to)
    and has the same file name, so libraries that pick a writer by suffix, or write side
    files next to it (``.mhd`` + ``.raw``), behave as they would at the destination. On
    success every file in the temporary directory is moved next to ``path``, ``path``
    itself last; a directory output (a Zarr store) replaces any old one. On any
    exception the temporary directory is removed and the destination is left untouched.
    Temporary directories of earlier writers of ``path`` that were killed are removed
    first (:func:`clean_stale_temporaries`).

    Parameters
    ----------
    path : Path
        Final destination (file or directory).
    copy_existing : bool
        Copy an existing ``path`` into the temporary location first, for formats that
        add one array to a container (HDF5 file, Zarr store) keeping the others.
    expected_bytes : int, optional
        Upper bound of the bytes the writer will produce. When the disk has less free
        space, :class:`OutputError` is raised before anything is written (some writers,
        HDF5 among them, cannot fail cleanly on a full disk).

    Raises
    ------
    OutputError
        The disk is full, the folder cannot be written, or an OS error occurred while
        writing; the message names ``path``, never the temporary location.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(
            f"cannot create the folder of {path}: {err.strerror or err} ({err.filename}); choose another "
            "output location"
        ) from err
    clean_stale_temporaries(path)
    if expected_bytes is not None:
        existing = path.stat().st_size if copy_existing and path.is_file() else 0
        _check_free_space(path, expected_bytes + existing)
    try:
        tmp_dir = Path(tempfile.mkdtemp(prefix=f"{_tmp_prefix(path)}{os.getpid()}-", dir=path.parent))
    except OSError as err:
        raise _output_error(err, path, path.parent) from err
    tmp_path = tmp_dir / path.name
    try:
        if copy_existing and path.exists():
            if path.is_dir():
                shutil.copytree(path, tmp_path)
            else:
                shutil.copy2(path, tmp_path)
        yield tmp_path
        if not tmp_path.exists():
            raise FormatError(f"writing {path} produced no output (nothing was written)")
        # side files first (e.g. the .raw of a .mhd), the named output last
        for side in sorted(p for p in tmp_dir.iterdir() if p.name != path.name):
            _move_into_place(side, path.parent / side.name)
        _move_into_place(tmp_path, path)
    except MedsegError as err:
        renamed = _renamed(str(err), path, tmp_dir)
        if renamed == str(err):
            raise
        raise type(err)(renamed) from err
    except OSError as err:
        raise _output_error(err, path, tmp_dir) from err
    finally:
        _remove_tree(tmp_dir)


def _remove_tree(path: Path, attempts: int = 20) -> None:
    """Remove a temporary directory, again while writers still finishing add files to it.

    A Zarr store is written by concurrent chunk writers: when one fails (a full disk) the
    error arrives while others still create their files, so one ``rmtree`` can leave a
    half-removed directory behind.
    """
    for _ in range(attempts):
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return
        time.sleep(0.01)


class _RecordingFile(io.RawIOBase):
    """An unbuffered binary file that remembers the first :class:`OSError` of a write."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._handle = open(path, "wb", buffering=0)  # noqa: SIM115 - closed by close()
        self.error: OSError | None = None

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        try:
            return self._handle.write(data)
        except OSError as err:
            self.error = self.error or err
            raise

    def close(self) -> None:
        self._handle.close()
        super().close()


@contextlib.contextmanager
def recording_writer(path: str | Path) -> Iterator[IO[bytes]]:
    """A binary file to hand to a library that swallows write errors (``torch.save``).

    ``torch.save`` turns a full disk or the file-size limit into ``RuntimeError: [enforce
    fail at inline_container.cc]``; written through this file, the :class:`OSError` that
    caused it is raised instead, which :func:`atomic_output` turns into a clear
    :class:`~medseg.errors.OutputError`.
    """
    handle = _RecordingFile(Path(path))
    try:
        yield cast(IO[bytes], handle)  # a binary file as far as its users (torch.save) can tell
    except Exception as err:
        if handle.error is not None and not isinstance(err, OSError):
            raise handle.error from err
        raise
    finally:
        handle.close()


def _move_into_place(src: Path, dest: Path) -> None:
    if src.is_dir() and dest.exists():
        # os.replace cannot replace a non-empty directory: swap via a side name
        old = Path(tempfile.mkdtemp(prefix=f"{_tmp_prefix(dest)}{os.getpid()}-old-", dir=dest.parent))
        os.replace(dest, old / dest.name)
        try:
            os.replace(src, dest)
        except OSError:
            os.replace(old / dest.name, dest)
            raise
        finally:
            shutil.rmtree(old, ignore_errors=True)
    elif dest.is_dir() and not src.is_dir():
        raise FormatError(f"cannot write file {dest}: a directory of that name exists; remove it first")
    else:
        os.replace(src, dest)


def geometry_to_attrs(volume: Volume) -> dict[str, Any]:
    """JSON-friendly geometry: ``spacing``, ``origin`` (lists) and ``direction`` (nested lists).

    Python floats survive a JSON round trip exactly (``repr`` is shortest round-trip).
    """
    return {
        "spacing": [float(s) for s in volume.spacing],
        "origin": [float(o) for o in volume.origin],
        "direction": [[float(v) for v in row] for row in np.asarray(volume.direction)],
    }


def geometry_from_attrs(
    attrs: Mapping[str, Any], ndim: int, path: Path | str
) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None, np.ndarray | None]:
    """Parse ``spacing``/``resolution``, ``origin``/``offset`` and ``direction`` attributes.

    Accepts the CREMI convention (``resolution`` and ``offset`` in array order
    ``(z, y, x)``), ``element_size_um`` (ilastik/Fiji) and medseg's own names. The
    direction may be stored flat (``D*D`` values, row-major) or nested.
    """

    def _vector(*names: str) -> tuple[float, ...] | None:
        for name in names:
            if name in attrs:
                value = np.asarray(attrs[name], dtype=np.float64).ravel()
                if value.size != ndim:
                    raise FormatError(
                        f"{path}: attribute {name!r} has {value.size} values, expected {ndim} "
                        f"(one per spatial axis, array order); fix or remove the attribute"
                    )
                return tuple(float(v) for v in value)
        return None

    spacing = _vector("spacing", "resolution", "element_size_um")
    origin = _vector("origin", "offset")
    direction = None
    if "direction" in attrs:
        value = np.asarray(attrs["direction"], dtype=np.float64)
        if value.size != ndim * ndim:
            raise FormatError(
                f"{path}: attribute 'direction' has {value.size} values, expected {ndim * ndim} "
                f"({ndim}x{ndim} matrix); fix or remove the attribute"
            )
        direction = value.reshape(ndim, ndim)
    return spacing, origin, direction


def make_volume(
    path: Path | str,
    array: np.ndarray,
    *,
    spacing: Sequence[float] | None = None,
    origin: Sequence[float] | None = None,
    direction: np.ndarray | None = None,
    meta: dict[str, Any] | None = None,
    unit: str | None = None,
) -> Volume:
    """Build a :class:`Volume`, turning invalid file geometry into a :class:`FormatError`."""
    try:
        return Volume(
            array, spacing=spacing, origin=origin, direction=direction, meta=dict(meta or {}), unit=unit
        )
    except MedsegError as err:
        raise FormatError(f"{path}: cannot build a volume from the file's data and geometry: {err}") from err
