"""Exceptions raised by medseg.

Every message says what failed, in which file or argument, the value received and
what to do about it. Lower-level errors are wrapped with ``raise ... from err``.
"""

from __future__ import annotations

__all__ = [
    "MedsegError",
    "ConfigError",
    "DataNotFoundError",
    "FormatError",
    "ShapeError",
    "DataValueError",
    "LabelError",
    "ChecksumError",
    "DownloadError",
    "UnsafeArchiveError",
    "MemoryLimitError",
    "OutputError",
]


class MedsegError(Exception):
    """Base class of every error medseg raises on bad input."""


class ConfigError(MedsegError, ValueError):
    """A configuration file, key, option or argument value is invalid."""


class DataNotFoundError(MedsegError, FileNotFoundError):
    """A file, dataset, case or HDF5/Zarr key that was asked for does not exist."""


class FormatError(MedsegError, ValueError):
    """A file has an unsupported suffix, is corrupt/truncated, or breaks its format's rules."""


class ShapeError(MedsegError, ValueError):
    """Arrays have the wrong number of dimensions or shapes that do not match."""


class DataValueError(MedsegError, ValueError):
    """Array values are not allowed here (NaN/inf, wrong dtype, out of range)."""


class LabelError(MedsegError, ValueError):
    """A label map is empty where it must not be, or holds unknown class values."""


class ChecksumError(MedsegError):
    """A downloaded or registered file does not have the expected sha256."""


class DownloadError(MedsegError):
    """A download failed; the message names the URL and where to place the file by hand."""


class UnsafeArchiveError(MedsegError):
    """An archive entry would escape the extraction root (absolute path, '..', link)."""


class MemoryLimitError(DataValueError):
    """A file declares more data than fits in memory; the message names it and the out-of-core route."""


class OutputError(MedsegError, OSError):
    """An output cannot be written (a file in the way, no permission, disk full); names the target."""
