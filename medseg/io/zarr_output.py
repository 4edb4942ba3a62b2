"""A Zarr array filled block by block, resumable, moved into place only when complete.

For outputs larger than memory (predicted label maps of big EM stacks or scans):
the array is created as ``<path>.incomplete`` with the target geometry; blocks are
written into it and recorded as done; :meth:`BlockOutput.finish` renames it to
``path``. An interrupted job leaves only ``<path>.incomplete``, which a new
:class:`BlockOutput` on the same path picks up again when shape, dtype and the job's
``settings`` (block shape, halo, model, checkpoint hash: whatever the caller records)
are the same; otherwise it refuses (naming what differs) or, with ``overwrite``, restarts.
The job's settings stay in the finished store's attributes (``medseg_job``).

A path ending in ``.ome.zarr`` is written as an OME-Zarr label image (NGFF 0.5, the
version for Zarr format 3 stores): a group whose ``ome`` attributes hold ``multiscales``
(one level, array ``0``, axes with units, ``scale`` and ``translation`` from the
geometry) and ``image-label``; the array ``0`` carries medseg's own attributes. The NGFF
JSON is written through zarr itself: ``ome-zarr`` and ``ngff-zarr`` were not installed
here, and the metadata of one resolution level is a few keys of the specification
(https://ngff.openmicroscopy.org/0.5/).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from medseg.errors import ConfigError, FormatError, MedsegError
from medseg.io._common import output_errors
from medseg.io._container import attrs_for, chunks_for, layout_for
from medseg.io.dispatch import open_array
from medseg.io.volume import Volume

__all__ = ["BlockOutput", "finished_output_problem", "tidy_block_output"]

logger = logging.getLogger(__name__)

#: Folder inside the incomplete store with one empty file per finished block: processes
#: writing different blocks of one store (torchrun) never rewrite a shared attribute.
_DONE_DIR = "medseg_done_blocks"
#: Folder inside the incomplete store with one empty file per block rewritten by a later
#: pass (``<stage>/<index>``), and the journal of the block being rewritten.
_STAGES_DIR = "medseg_stages"
_JOURNAL_DIR = "medseg_journal"
_SETTINGS_ATTR = "medseg_job"
_STATE_ATTR = "medseg_state"
#: Setting naming the input file; recorded for the messages, not compared (a moved input is the same).
_INPUT_PATH = "input_path"
#: NGFF version written for ``.ome.zarr`` outputs (Zarr format 3 stores).
NGFF_VERSION = "0.5"
_NGFF_UNITS = {"nm": "nanometer", "um": "micrometer", "mm": "millimeter"}


def ngff_attributes(spacing, origin, unit: str | None, name: str) -> dict[str, Any]:
    """The ``ome`` group attributes of a one-level NGFF 0.5 label image ``([z,] y, x)``."""
    names = "zyx"[-len(spacing) :]
    axes = [{"name": a, "type": "space"} for a in names]
    if unit is not None:
        for axis in axes:
            axis["unit"] = _NGFF_UNITS[unit]
    transforms = [
        {"type": "scale", "scale": [float(s) for s in spacing]},
        {"type": "translation", "translation": [float(o) for o in origin]},
    ]
    return {
        "ome": {
            "version": NGFF_VERSION,
            "multiscales": [
                {
                    "name": name,
                    "axes": axes,
                    "datasets": [{"path": "0", "coordinateTransformations": transforms}],
                }
            ],
            "image-label": {},
        }
    }


class BlockOutput:
    """Create (or resume) a Zarr array ``([Z,] Y, X)`` (or ``(C, [Z,] Y, X)``) with geometry.

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
    settings : dict, optional
        What defines the job (JSON-serialisable); a resume must have the same.
    overwrite : bool
        Start again instead of resuming (or refusing) an incomplete store.
    chunks : tuple of int, optional
        Chunk shape; pass the block shape when several processes write blocks at once, so
        that no two of them ever write to one chunk.
    unit : str, optional
        Unit of ``spacing``.
    channels : int, optional
        A ``(C, [Z,] Y, X)`` array of this many channels (e.g. class probabilities) instead
        of a single-channel one; blocks are then written with a leading ``slice(None)``.
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
        settings: dict[str, Any] | None = None,
        overwrite: bool = False,
        chunks: tuple[int, ...] | None = None,
        unit: str | None = None,
        channels: int | None = None,
    ) -> None:
        self.path = Path(path)
        if self.path.suffix != ".zarr":
            raise FormatError(
                f"block-wise output {self.path} must be a .zarr store (or .ome.zarr for OME-Zarr)"
            )
        self.ome = self.path.name.endswith(".ome.zarr")
        self.partial = self.path.with_name(self.path.name + ".incomplete")
        spatial = tuple(int(s) for s in shape)
        self.shape = spatial if channels is None else (int(channels), *spatial)
        self.dtype = np.dtype(dtype)
        self.settings = json.loads(json.dumps(settings or {}))
        geometry = Volume(
            np.zeros((channels or 1,) + (1,) * len(spatial), dtype=self.dtype),
            spacing=spacing,
            origin=origin,
            direction=direction,
            unit=unit,
        )
        _, axes = layout_for(geometry)
        if channels is not None and not axes.startswith("C"):
            axes = "C" + axes  # one channel, still stored with its channel axis
        self._geometry = geometry
        if self.partial.exists() and not overwrite:
            self._check_resumable()
            self.array = zarr.open_array(str(self._array_path), mode="r+")
            logger.info("resuming %s: %d block(s) already done", self.partial, len(self.done))
            return
        shutil.rmtree(self.partial, ignore_errors=True)
        with output_errors(self.path):
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            if self.ome:
                group = zarr.open_group(str(self.partial), mode="w", zarr_format=3)
                name = self.path.name[: -len(".ome.zarr")]
                group.attrs.update(
                    json.loads(
                        json.dumps(ngff_attributes(geometry.spacing, geometry.origin, geometry.unit, name))
                    )
                )
            self.array = zarr.open_array(
                str(self._array_path),
                mode="w",
                shape=self.shape,
                dtype=self.dtype,
                chunks=tuple(chunks) if chunks is not None else chunks_for(self.shape, axes),
                **({"zarr_format": 3, "dimension_names": list(axes.lower())} if self.ome else {}),
            )
            attrs = {**attrs_for(geometry, axes), _SETTINGS_ATTR: self.settings, _STATE_ATTR: {}}
            self.array.attrs.update(json.loads(json.dumps(attrs)))

    @property
    def _array_path(self) -> Path:
        return self.partial / "0" if self.ome else self.partial

    def _check_resumable(self) -> None:
        """Raise ConfigError naming every difference between the interrupted job and this one."""
        try:
            array = zarr.open_array(str(self._array_path), mode="r")
        except (ValueError, OSError, KeyError, TypeError) as err:
            raise ConfigError(
                f"{self.partial} is left from an interrupted run but cannot be opened ({err}); "
                "delete it or predict with overwrite (medseg predict --overwrite)"
            ) from err
        recorded = {
            "shape": list(array.shape),
            "dtype": str(np.dtype(array.dtype)),
            **array.attrs.get(_SETTINGS_ATTR, {}),
        }
        wanted = {"shape": list(self.shape), "dtype": str(self.dtype), **self.settings}
        input_path = wanted.pop(_INPUT_PATH, None)
        recorded.pop(_INPUT_PATH, None)
        differ = [
            _difference(key, recorded.get(key), wanted.get(key), input_path)
            for key in sorted(set(recorded) | set(wanted))
            if recorded.get(key) != wanted.get(key)
        ]
        if differ:
            raise ConfigError(
                f"cannot resume {self.partial}: " + "; ".join(differ) + ". Predict with the same "
                "settings to resume, or with overwrite (medseg predict --overwrite) to start again"
            )

    @property
    def state(self) -> dict[str, Any]:
        """Free-form JSON state saved with the done blocks (e.g. instance id counters)."""
        return dict(self.array.attrs.get(_STATE_ATTR, {}))

    @property
    def done(self) -> set[int]:
        """Indices of the blocks already written."""
        folder = self.partial / _DONE_DIR
        return {int(p.name) for p in folder.iterdir()} if folder.is_dir() else set()

    def write_block(
        self, index: int, where: tuple[slice, ...], data: np.ndarray, *, state: dict[str, Any] | None = None
    ) -> None:
        """Write block number ``index`` at ``where`` and record it (and ``state``) as done."""
        with output_errors(self.path):
            self.array[where] = data
            if state is not None:
                self.array.attrs[_STATE_ATTR] = json.loads(json.dumps(state))
            folder = self.partial / _DONE_DIR
            folder.mkdir(exist_ok=True)
            (folder / str(int(index))).touch()

    def save_state(self, state: dict[str, Any]) -> None:
        """Replace the saved :attr:`state`."""
        with output_errors(self.path):
            self.array.attrs[_STATE_ATTR] = json.loads(json.dumps(state))

    def rewritten(self, stage: str) -> set[int]:
        """Indices of the blocks :meth:`rewrite_block` has finished in pass ``stage``."""
        folder = self.partial / _STAGES_DIR / stage
        return {int(p.name) for p in folder.iterdir()} if folder.is_dir() else set()

    def rewrite_block(
        self,
        stage: str,
        index: int,
        where: tuple[slice, ...],
        transform: Callable[[np.ndarray], np.ndarray],
    ) -> None:
        """Replace block ``where`` by ``transform(block)``, exactly once even when interrupted.

        The block as it was is journaled first (written to a temporary file, renamed into
        place), then the transformed block is written and ``index`` recorded as done in
        pass ``stage``, then the journal is removed. A run killed after the write but before
        the record transforms the journaled block again, never the transformed one, so a
        transform that is not idempotent (renumbering ids) is still applied once.
        """
        journal = self.partial / _JOURNAL_DIR / f"{stage}-{int(index)}.npy"
        with output_errors(self.path):
            if journal.exists():
                block = np.load(journal, allow_pickle=False)
            else:
                block = np.asarray(self.array[where])
                journal.parent.mkdir(exist_ok=True)
                tmp = journal.with_name(journal.name + ".tmp")
                with tmp.open("wb") as handle:
                    np.save(handle, block, allow_pickle=False)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, journal)
            self.array[where] = transform(block)
            folder = self.partial / _STAGES_DIR / stage
            folder.mkdir(parents=True, exist_ok=True)
            (folder / str(int(index))).touch()
            journal.unlink()

    def discard(self) -> None:
        """Delete the incomplete store (a job that cannot be resumed)."""
        shutil.rmtree(self.partial, ignore_errors=True)

    def finish(self) -> Path:
        """Move the completed array into place (replacing an older ``path``).

        The store is renamed into place first, with its bookkeeping, and tidied there: a
        run killed in between leaves a complete ``path`` (bookkeeping folders inside it
        are ignored by readers), never an incomplete store whose record of finished blocks
        is half deleted.
        """
        with output_errors(self.path):
            old = self.path.with_name(self.path.name + ".replaced.incomplete")
            _remove(old)
            if self.path.exists() or self.path.is_symlink():
                self.path.rename(old)
            self.partial.rename(self.path)
            _remove(old)
        tidy_block_output(self.path)
        return self.path


def tidy_block_output(path: str | Path) -> None:
    """Remove the bookkeeping of a finished block-wise store at ``path`` (job state, done blocks)."""
    path = Path(path)
    array_path = path / "0" if path.name.endswith(".ome.zarr") else path
    with output_errors(path):
        array = zarr.open_array(str(array_path), mode="r+")
        attrs = dict(array.attrs)
        if _STATE_ATTR in attrs:
            attrs.pop(_STATE_ATTR)
            array.attrs.put(attrs)  # one write: the attributes are never seen half replaced
        for folder in (_DONE_DIR, _STAGES_DIR, _JOURNAL_DIR):
            shutil.rmtree(array_path / folder, ignore_errors=True)


def _remove(path: Path) -> None:
    """Delete a file or a folder tree at ``path``, if there is one."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def finished_output_problem(path: str | Path) -> str | None:
    """Why the existing output ``path`` is not a finished prediction, or ``None`` when it is.

    A file medseg wrote is complete (written atomically); a stranger's or a damaged one
    is caught by opening it (the header, not the data). A ``.zarr`` output must be a
    store that opens as an array; a block-wise store whose bookkeeping was left by a run
    killed after moving it into place (it is complete: only finished jobs are moved) is
    tidied here.
    """
    path = Path(path)
    if path.name.endswith(".zarr"):
        if not path.is_dir():
            return "a .zarr output must be a folder (a Zarr store), this is a file"
        array_path = path / "0" if path.name.endswith(".ome.zarr") else path
        try:
            array = zarr.open_array(str(array_path), mode="r")
        except (ValueError, OSError, KeyError, TypeError) as err:
            return f"it does not open as a Zarr array ({type(err).__name__}: {err})"
        if _SETTINGS_ATTR in array.attrs and any(
            (array_path / name).exists() for name in (_DONE_DIR, _STAGES_DIR, _JOURNAL_DIR)
        ):
            tidy_block_output(path)
        return None
    try:
        open_array(path).close()
    except (MedsegError, ValueError, OSError) as err:
        return f"it cannot be read ({err})"
    return None


def _difference(key: str, recorded: Any, wanted: Any, input_path: str | None) -> str:
    """One difference between an interrupted job and this one, in words."""
    if key == "input" and isinstance(recorded, dict) and isinstance(wanted, dict):
        words = {"size": "size", "mtime_ns": "modification time", "sha256": "sampled content"}
        changed = [words[k] for k in words if recorded.get(k) != wanted.get(k)]
        return (
            f"the input {input_path or 'image'} changed since the interrupted run "
            f"({', '.join(changed) or 'identity'} differ), so its finished blocks would mix old and new content"
        )
    return f"{key}: interrupted run {recorded!r}, now {wanted!r}"
