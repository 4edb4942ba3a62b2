"""``LazyArray``: block-wise, memory-bounded access to an on-disk array.

A :class:`LazyArray` presents an HDF5 dataset, a Zarr array, a memory-mapped or
Zarr-wrapped TIFF, or a NIfTI array proxy in medseg's axis order, channels first:
``(C, Z, Y, X)`` or ``(C, Y, X)``, exactly like :attr:`Volume.array` from
:func:`medseg.io.read`. Indexing reads only the requested block::

    with open_array("cremi.h5:/volumes/raw") as raw:   # shape (1, Z, Y, X)
        slab = raw[0, 10:20]                           # (10, Y, X) numpy array

Supported keys are basic numpy indexing: integers, slices (any step) and ``...``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medseg.io.units import normalize_unit

__all__ = ["LazyArray", "register_opener"]

logger = logging.getLogger(__name__)


class LazyArray:
    """An on-disk array in ``(C, [Z,] Y, X)`` order with its geometry; reads on indexing.

    Parameters
    ----------
    source : array-like
        Object with ``shape``, ``dtype`` and basic ``__getitem__`` in its native axis
        order (``h5py.Dataset``, ``zarr.Array``, ``np.memmap``, nibabel ``ArrayProxy``).
    axes : sequence of int or None
        For each output axis (channels first), the native axis it reads, or ``None``
        for a length-1 axis absent from the source (the channel axis of a
        single-channel file). Native axes not listed must have length 1.
    spacing, origin : tuple of float
        Geometry in spatial array order, as in :class:`~medseg.io.Volume`.
    direction : np.ndarray
        ``(D, D)`` direction matrix, as in :class:`~medseg.io.Volume`.
    path : str
        The path (with ``:key`` for containers) this array was opened from; pickling a
        ``LazyArray`` re-opens it from this path, so it can be sent to data-loader workers.
    meta : dict
        Provenance, as in :class:`~medseg.io.Volume`.
    unit : str or None
        Unit of ``spacing`` (``"nm"``, ``"um"``, ``"mm"`` or ``None``), as in :class:`~medseg.io.Volume`.
    close : callable or None
        Releases the underlying file handle; called by :meth:`close` / ``with``.
    """

    def __init__(
        self,
        source: Any,
        axes: Sequence[int | None],
        *,
        spacing: tuple[float, ...],
        origin: tuple[float, ...],
        direction: np.ndarray,
        path: str,
        meta: dict[str, Any] | None = None,
        unit: str | None = None,
        close: Callable[[], None] | None = None,
    ) -> None:
        native_shape = tuple(int(n) for n in source.shape)
        used = [a for a in axes if a is not None]
        if sorted(used) != sorted(set(used)) or any(not 0 <= a < len(native_shape) for a in used):
            raise ValueError(f"invalid axes {axes} for native shape {native_shape}")  # internal invariant
        for a in range(len(native_shape)):
            if a not in used and native_shape[a] != 1:
                raise ValueError(f"native axis {a} of length {native_shape[a]} is not mapped")
        self._source = source
        self._axes = tuple(axes)
        self._native_shape = native_shape
        self.shape: tuple[int, ...] = tuple(1 if a is None else native_shape[a] for a in axes)
        self.dtype = np.dtype(source.dtype)
        self.spacing = tuple(spacing)
        self.origin = tuple(origin)
        self.direction = np.asarray(direction, dtype=np.float64)
        self.path = path
        self.meta = dict(meta or {})
        self.unit = normalize_unit(unit)
        self._close = close

    @property
    def ndim(self) -> int:
        """Number of spatial axes (2 or 3), as :attr:`medseg.io.Volume.ndim`; ``len(shape)`` counts the channel axis too."""
        return len(self.shape) - 1

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return self.shape[1:]

    @property
    def num_channels(self) -> int:
        return self.shape[0]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return (
            f"LazyArray({self.path!r}, shape={self.shape}, dtype={self.dtype}, spacing={self.spacing}{unit})"
        )

    def __getitem__(self, key: Any) -> np.ndarray:
        """Read the block ``key`` (ints, slices, ``...``) and return it as a numpy array."""
        out_key = _expand_key(key, self.shape)
        native_key: list[Any] = [0] * len(self._native_shape)
        flips: list[bool] = []
        kept_native: list[int] = []  # native axes kept (sliced), in output order
        extra_out: list[tuple[int, slice]] = []  # output axes with no native axis
        out_pos = 0
        for k, a in zip(out_key, self._axes, strict=True):
            if a is None:
                if isinstance(k, slice):
                    extra_out.append((out_pos, k))
                    out_pos += 1
                continue
            if isinstance(k, slice):
                start, stop, step = k.indices(self._native_shape[a])
                idx = range(start, stop, step)
                if len(idx) == 0:
                    native_key[a] = slice(0, 0)
                    flips.append(False)
                elif step > 0:
                    native_key[a] = slice(idx[0], idx[-1] + 1, step)
                    flips.append(False)
                else:
                    native_key[a] = slice(idx[-1], idx[0] + 1, -step)
                    flips.append(True)
                kept_native.append(a)
                out_pos += 1
            else:
                native_key[a] = k
        block = np.asarray(self._source[tuple(native_key)])
        # the block has the kept native axes in native order; put them in output order
        native_order = sorted(kept_native)
        block = np.transpose(block, [native_order.index(a) for a in kept_native])
        flip_key = tuple(slice(None, None, -1) if f else slice(None) for f in flips)
        block = block[flip_key]
        for pos, k in extra_out:
            block = np.expand_dims(block, pos)
            if range(1)[k] != range(1):
                block = block[(slice(None),) * pos + (k,)]
        return block

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[...]
        return out if dtype is None else out.astype(dtype, copy=False)

    def read(self) -> np.ndarray:
        """Read the whole array into memory, ``(C, [Z,] Y, X)``."""
        return self[...]

    def close(self) -> None:
        """Release the underlying file handle (idempotent)."""
        if self._close is not None:
            close, self._close = self._close, None
            close()
        self._source = None

    def __enter__(self) -> LazyArray:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_reopen, (self.path,))


#: How a pickled :class:`LazyArray` is opened again from its path: :func:`medseg.io.open_array`,
#: registered by :mod:`medseg.io.dispatch` (which imports this module, never the reverse).
_OPENER: list[Callable[[str], LazyArray]] = []


def register_opener(opener: Callable[[str], LazyArray]) -> None:
    """Set the function that re-opens a path when a :class:`LazyArray` is unpickled."""
    _OPENER[:] = [opener]


def _reopen(path: str) -> LazyArray:
    if not _OPENER:  # internal invariant: importing medseg.io registers open_array
        raise RuntimeError("medseg.io.dispatch registers the LazyArray opener; import medseg.io first")
    return _OPENER[0](path)


def _expand_key(key: Any, shape: tuple[int, ...]) -> list[int | slice]:
    """Normalise a basic-indexing ``key`` to one int (checked, non-negative) or slice per axis."""
    if not isinstance(key, tuple):
        key = (key,)
    n_ellipsis = sum(k is Ellipsis for k in key)
    if n_ellipsis > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    n_real = len(key) - n_ellipsis
    if n_real > len(shape):
        raise IndexError(f"too many indices: array has {len(shape)} axes, got {n_real}")
    expanded: list[Any] = []
    for k in key:
        if k is Ellipsis:
            expanded.extend([slice(None)] * (len(shape) - n_real))
        else:
            expanded.append(k)
    expanded.extend([slice(None)] * (len(shape) - len(expanded)))
    out: list[int | slice] = []
    for axis, (k, n) in enumerate(zip(expanded, shape, strict=True)):
        if isinstance(k, slice):
            out.append(k)
        elif isinstance(k, (int, np.integer)) and not isinstance(k, bool):
            i = int(k)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for axis {axis} with size {n}")
            out.append(i + n if i < 0 else i)
        else:
            raise TypeError(
                f"LazyArray supports integers, slices and '...' only, got {type(k).__name__} "
                f"for axis {axis}; read a block first (e.g. arr[...]) for fancy indexing"
            )
    return out


def wrap_in_memory(
    array: np.ndarray,
    *,
    spacing: tuple[float, ...],
    origin: tuple[float, ...],
    direction: np.ndarray,
    path: str,
    meta: dict[str, Any] | None = None,
    unit: str | None = None,
) -> LazyArray:
    """A :class:`LazyArray` over an in-memory ``(C, ...)`` array (formats with no lazy reader)."""
    return LazyArray(
        array,
        list(range(array.ndim)),
        spacing=spacing,
        origin=origin,
        direction=direction,
        path=path,
        meta=meta,
        unit=unit,
    )


def path_str(path: Path | str, key: str | None) -> str:
    """``path`` or ``path:key`` as given to :func:`medseg.io.open_array`."""
    return str(path) if not key else f"{path}:{key}"
