"""Size checks before heavy work: a file's declared array size against the memory available.

A 600-byte NIfTI header can claim a 32767³ float32 volume, TIFF tags 10⁶ x 65000
pixels, a sparse HDF5 dataset 10¹² voxels. Reading such a file whole would end in a
bare ``MemoryError`` (or the kernel's OOM killer) with no file name. :func:`check_fits_in_memory`
looks at the header only (through the format's lazy opener, or SimpleITK's image
information for MetaImage/NRRD) and raises :class:`~medseg.errors.MemoryLimitError`
naming the file, the size, the memory available and the out-of-core alternatives.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medseg.errors import MemoryLimitError

__all__ = ["available_memory", "check_fits_in_memory", "check_header_size", "format_bytes"]

logger = logging.getLogger(__name__)

_ITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr")


def format_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``; binary units up to PiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_available() -> int | None:
    """Memory left under a container's cgroup limit (v2, then v1), if there is one."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        limit = _read_int(limit_file)
        usage = _read_int(usage_file)
        if limit is not None and usage is not None and limit < 1 << 60:
            return max(limit - usage, 0)
    return None


def available_memory() -> int | None:
    """Bytes of memory a new allocation can get (the smaller of the OS's and the cgroup's), or ``None``."""
    values = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    return min(values) if values else None


def check_fits_in_memory(shape: Sequence[int], dtype: Any, path: Path | str) -> None:
    """Raise :class:`MemoryLimitError` when an array of ``shape``/``dtype`` read from ``path`` cannot fit.

    Raises
    ------
    MemoryLimitError
        The array needs more bytes than :func:`available_memory`; the message names
        the file, both sizes and the out-of-core routes.
    """
    needed = math.prod(int(s) for s in shape) * np.dtype(dtype).itemsize
    available = available_memory()
    if available is None or needed <= available:
        return
    raise MemoryLimitError(
        f"{path} declares a {' x '.join(str(int(s)) for s in shape)} {np.dtype(dtype).name} array "
        f"({format_bytes(needed)}) but only {format_bytes(available)} of memory is available: read it block "
        "by block with medseg.io.open_array, or predict it out of core with medseg predict --block-shape; "
        "if the file is small on disk its header is wrong"
    )


def _itk_shape(path: Path) -> tuple[tuple[int, ...], Any] | None:
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return None  # the reader reports a broken header with its own message
    components = reader.GetNumberOfComponents()
    shape = (components, *reversed(reader.GetSize()))
    dtype = sitk.GetArrayViewFromImage(sitk.Image([1] * reader.GetDimension(), reader.GetPixelID())).dtype
    return shape, dtype


def check_header_size(path: Path, name: Path | str) -> None:
    """:func:`check_fits_in_memory` for formats without a lazy opener, from their header.

    MetaImage/NRRD headers are read with SimpleITK; PNG/JPEG/BMP are bounded by
    Pillow's own decompression-bomb check.
    """
    if path.name.lower().endswith(_ITK_SUFFIXES):
        declared = _itk_shape(path)
        if declared is not None:
            check_fits_in_memory(*declared, name)
