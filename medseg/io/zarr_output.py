"""A Zarr array filled block by block, resumable, moved into place only when complete.

For outputs larger than memory (predicted label maps of big EM stacks or scans):
the array is created as ``<path>.incomplete`` with the target geometry; blocks are
written into it and recorded as done; :meth:`BlockOutput.finish` renames it to
``path``. An interrupted job leaves only ``<path>.incomplete``, which a new
:class:`BlockOutput` on the same path, shape and dtype picks up again.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from medseg.errors import FormatError
from medseg.io._container import attrs_for, chunks_for, layout_for
from medseg.io.volume import Volume

__all__ = ["BlockOutput"]

logger = logging.getLogger(__name__)

_DONE_ATTR = "medseg_done_blocks"


class BlockOutput:
    """Create (or resume) a single-channel Zarr array ``([Z,] Y, X)`` with geometry.

    Parameters
    ----------
    path : path
        Final ``.zarr`` store.
    shape : tuple of int
        Spatial shape ``([Z,] Y, X)`` of the output.
    dtype : numpy dtype
        Output dtype (e.g. uint8 labels).
    spacing, origin, direction
        Geometry in array axis order, as in :class:`~medseg.io.Volume`.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        shape: tuple[int, ...],
        dtype: Any,
        spacing: tuple[float, ...] | None = None,
        origin: tuple[float, ...] | None = None,
        direction: np.ndarray | None = None,
    ) -> None:
        self.path = Path(path)
        if self.path.suffix != ".zarr":
            raise FormatError(f"block-wise output {self.path} must be a .zarr store")
        self.partial = self.path.with_name(self.path.name + ".incomplete")
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        geometry = Volume(
            np.zeros((1,) + (1,) * len(self.shape), dtype=self.dtype),
            spacing=spacing,
            origin=origin,
            direction=direction,
        )
        _, axes = layout_for(geometry)
        if self.partial.exists() and self._matches():
            self.array = zarr.open_array(str(self.partial), mode="r+")
            logger.info("resuming %s: %d block(s) already done", self.partial, len(self.done))
        else:
            shutil.rmtree(self.partial, ignore_errors=True)
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            self.array = zarr.open_array(
                str(self.partial),
                mode="w",
                shape=self.shape,
                dtype=self.dtype,
                chunks=chunks_for(self.shape, axes),
            )
            self.array.attrs.update(json.loads(json.dumps({**attrs_for(geometry, axes), _DONE_ATTR: []})))

    def _matches(self) -> bool:
        try:
            array = zarr.open_array(str(self.partial), mode="r")
        except (ValueError, OSError, KeyError, TypeError):
            return False
        return tuple(array.shape) == self.shape and np.dtype(array.dtype) == self.dtype

    @property
    def done(self) -> set[int]:
        """Indices of the blocks already written."""
        return set(self.array.attrs.get(_DONE_ATTR, []))

    def write_block(self, index: int, where: tuple[slice, ...], data: np.ndarray) -> None:
        """Write block number ``index`` at ``where`` and record it as done."""
        self.array[where] = data
        self.array.attrs[_DONE_ATTR] = sorted(self.done | {int(index)})

    def finish(self) -> Path:
        """Move the completed array into place (replacing an older ``path``)."""
        attrs = dict(self.array.attrs)
        attrs.pop(_DONE_ATTR, None)
        self.array.attrs.clear()
        self.array.attrs.update(attrs)
        if self.path.exists():
            shutil.rmtree(self.path)
        self.partial.rename(self.path)
        return self.path
