"""Block-wise prediction of arrays larger than memory (EM stacks, big scans).

Class labels: each block runs exactly the windows of the whole image's sliding-window grid
that reach into it, reading only the input they need (mirror padding at the image border
included), and blends them with the same weights, so the block-wise label map equals
in-memory prediction voxel for voxel (:meth:`SlidingWindow.predict_labels_region`). Instance
models are read block by block with a halo of context (like torch-em's
``predict_with_halo``) and the halo is cropped. The labels go into an on-disk Zarr array.
Memory stays bounded by the block size; an interrupted run continues with the blocks not
yet written, and only when it is the same job: block shape, halo, window, model,
checkpoint hash and the input file's identity (size, modification time, a hash of sampled
pieces) are recorded in the store's attributes and compared on resume.

Instance-trained models get seamless instances: each block's objects are split on the
block *with* its halo; objects of the block's interior get new global ids; where the halo
overlaps blocks already written, an object is joined (union-find) to the written object it
shares most of its voxels with (a majority both ways). A last pass over the blocks replaces
every id by its set's id, numbered 1..N, so an object cut by block borders has one id.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import fastremap
import numpy as np
import torch
from tqdm.auto import tqdm

from medseg.errors import ConfigError, DataValueError, FormatError, ShapeError
from medseg.infer.predictor import Predictor, require_voxels
from medseg.infer.sliding_window import label_dtype
from medseg.io.dispatch import split_key
from medseg.io.identity import file_identity
from medseg.io.zarr_output import BlockOutput

__all__ = ["UnionFind", "iter_blocks", "predict_blockwise"]

logger = logging.getLogger(__name__)


def iter_blocks(shape: Sequence[int], block_shape: Sequence[int]) -> list[tuple[slice, ...]]:
    """Non-overlapping blocks tiling ``shape`` (the last block per axis may be smaller)."""
    starts = [range(0, s, b) for s, b in zip(shape, block_shape, strict=True)]
    return [
        tuple(slice(o, min(o + b, s)) for o, b, s in zip(origin, block_shape, shape, strict=True))
        for origin in itertools.product(*starts)
    ]


class UnionFind:
    """Disjoint sets of integer ids (path halving, union by smaller root)."""

    def __init__(self, parents: dict[int, int] | None = None) -> None:
        self.parent: dict[int, int] = dict(parents or {})

    def find(self, x: int) -> int:
        parent = self.parent
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _job_settings(predictor: Predictor, image: Any, block_shape, halo, instances: bool) -> dict[str, Any]:
    window = predictor.window
    source = getattr(image, "path", None)
    if source is not None:  # a file: its identity, so a changed input is not resumed
        source = split_key(source)[0]
    identity: dict[str, Any] = {}
    if source is not None and Path(source).exists():
        identity = {"input": file_identity(source), "input_path": str(source)}
    return {
        **identity,
        "block_shape": list(block_shape),
        "halo": list(halo),
        "output": "instances" if instances else "labels",
        "roi_size": list(window.roi_size),
        "overlap": window.overlap,
        "mirror_axes": list(window.mirror_axes),
        "precision": window.precision,
        **predictor.identity,
    }


def predict_blockwise(
    predictor: Predictor,
    image: Any,
    output: str | Path,
    *,
    block_shape: Sequence[int],
    halo: Sequence[int],
    instances: bool | None = None,
    overwrite: bool = False,
    shard: tuple[int, int] = (0, 1),
    barrier: Callable[[], None] | None = None,
    progress: bool = False,
    probabilities: str | Path | None = None,
) -> Path:
    """Predict a lazily-read image block by block into a ``.zarr`` label map.

    Parameters
    ----------
    predictor : Predictor
        Model, normalisation and sliding-window settings.
    image : LazyArray or array-like
        ``(C, [Z,] Y, X)`` with ``spacing``/``origin``/``direction`` attributes
        (:func:`medseg.io.open_array`) or a plain array.
    output : path
        ``.zarr`` store (``.ome.zarr``: an OME-Zarr NGFF 0.5 label image) for the ``([Z,] Y, X)`` labels (uint8 up to 256 classes, wider
        above; uint32 instance ids), with the image's geometry.
    block_shape : sequence of int
        Spatial size of the blocks written at once.
    halo : sequence of int
        Instance models: context read around each block on every side, cropped after
        prediction (at least the size of the objects' overlap needed to recognise them on
        both sides). Class labels need none: each block reads what its windows need.
    instances : bool, optional
        Write seamless instance ids instead of class labels; default: when the
        checkpoint was trained on instances.
    overwrite : bool
        Start again when ``<output>.incomplete`` is left from another job (default:
        refuse with the differences named). The job includes the input's identity
        (:func:`medseg.io.identity.file_identity` of ``image.path``): an input changed
        since the interruption is refused too.
    shard : (int, int)
        ``(rank, world_size)``: this process predicts the blocks ``i % world_size == rank``
        (class labels only; instance ids are stitched in one process). Rank 0 creates the
        store and moves it into place once every rank has written its blocks.
    barrier : callable, optional
        Waits for all processes (``torch.distributed.barrier``); needed when ``world_size > 1``.
    progress : bool
        Progress bar over blocks.
    probabilities : path, optional
        Also write the softmax probabilities ``(K, [Z,] Y, X)`` float32 into this ``.zarr``
        store, block by block (equal to in-memory prediction's for class labels; from the
        block with its halo for instance models), resumed and moved into place with the labels.

    Returns
    -------
    Path
        The finished store.
    """
    spatial = tuple(int(s) for s in image.shape[1:])
    source = getattr(image, "path", None)  # names the image in errors
    require_voxels(image.shape, source)
    if predictor.targets.has_flows:
        raise ConfigError(
            f"{source or 'the image'}: --block-shape (block-wise prediction) does not take a model trained "
            "with data.instance_target: flow: its voxels follow the flows across block borders to their "
            "object's centre; predict the image whole (drop --block-shape), or train with "
            "data.instance_target: distance for block-wise instances of images larger than memory"
        )
    block_shape = tuple(int(b) for b in block_shape)
    halo = tuple(int(h) for h in halo)
    if len(block_shape) != len(spatial) or len(halo) != len(spatial):
        raise ShapeError(
            f"block_shape {block_shape} and halo {halo} need one value per spatial axis of the image {spatial}"
        )
    if min(block_shape) < 1 or min(halo) < 0:
        raise ConfigError(f"block_shape must be positive and halo >= 0, got {block_shape} and {halo}")
    instances = predictor.is_instance_model if instances is None else instances
    rank, world = shard
    if world > 1 and (instances or barrier is None):
        raise ConfigError(
            "block-wise prediction across processes needs a barrier and class labels; "
            "instance ids are stitched in one process (run it without torchrun)"
        )

    def output_store(overwrite: bool, path: str | Path, dtype: Any, channels: int | None) -> BlockOutput:
        return BlockOutput(
            path,
            shape=spatial,
            dtype=dtype,
            spacing=getattr(image, "spacing", None),
            origin=getattr(image, "origin", None),
            direction=getattr(image, "direction", None),
            unit=getattr(image, "unit", None),
            settings=_job_settings(predictor, image, block_shape, halo, instances),
            overwrite=overwrite,
            # one block = whole chunks: concurrent writers never share one
            chunks=block_shape if channels is None else (channels, *block_shape),
            channels=channels,
        )

    def open_stores(overwrite: bool) -> tuple[BlockOutput, BlockOutput | None]:
        labels_dtype = np.uint32 if instances else label_dtype(predictor.num_classes)
        labels = output_store(overwrite, output, labels_dtype, None)
        if probabilities is None:
            return labels, None
        return labels, output_store(overwrite, probabilities, np.float32, _probability_channels(predictor))

    if world > 1:  # rank 0 creates (or checks) the store, the others open it
        if rank == 0:
            open_stores(overwrite)
        barrier()
        out, probs = open_stores(False)
    else:
        out, probs = open_stores(overwrite)
    all_blocks = iter_blocks(spatial, block_shape)
    done = out.done
    # a block counts as done when both stores hold it (the probabilities are written first)
    with_probs = probs.done if probs is not None else done
    todo = [i for i in range(len(all_blocks)) if i % world == rank and not (i in done and i in with_probs)]
    logger.info("%d of %d blocks to predict into %s", len(todo), len(all_blocks), output)
    state = out.state
    sets = UnionFind({int(k): v for k, v in state.get("parents", {}).items()})
    next_id = int(state.get("next_id", 1))
    windows = sum(
        predictor.count_windows(spatial, all_blocks[i])
        if not instances
        else predictor.count_windows(
            tuple(s.stop - s.start for s in _with_halo(all_blocks[i], halo, spatial))
        )
        for i in todo
    )
    # the automatic compile decision weighs the whole job, not one block
    with _discarded_on_bad_input(out, probs, world), predictor.window.planned(predictor.model, windows):
        for index in tqdm(todo, desc="blocks", unit="block", disable=not progress):
            block = all_blocks[index]
            if not instances:  # the whole image's windows that reach the block: equal to in-memory labels
                if probs is None:
                    out.write_block(index, block, predictor.predict_label_region(image, block, source=source))
                    continue
                labels, probabilities_block = predictor.predict_label_region(
                    image, block, source=source, probabilities=True
                )
                probs.write_block(index, (slice(None), *block), probabilities_block)
                if index not in done:
                    out.write_block(index, block, labels)
                continue
            outer = _with_halo(block, halo, spatial)
            data = np.asarray(image[(slice(None), *outer)])
            inner = tuple(
                slice(s.start - o.start, s.stop - o.start) for s, o in zip(block, outer, strict=True)
            )
            logits = predictor.predict_logits(data, source=source)
            if probs is not None:
                probs.write_block(index, (slice(None), *block), _probabilities(predictor, logits, inner))
            if index in done:  # only its probabilities were missing
                continue
            local = predictor.instances_from_logits(logits)
            ids = _global_ids(local, next_id)
            next_id += int(local.max())
            _join_with_written(ids, outer, all_blocks, done, out, sets)
            out.write_block(index, block, ids[inner], state={"next_id": next_id, "parents": sets.parent})
            done = done | {index}
    if world > 1:
        barrier()
        if rank != 0:
            barrier()  # rank 0 moves the stores into place
            return out.path
        if probs is not None:
            probs.finish()
        path = out.finish()
        barrier()
        return path
    if instances:
        _relabel(out, all_blocks, sets)
    if probs is not None:  # first: the label map in place marks the case as done
        probs.finish()
    return out.finish()


@contextlib.contextmanager
def _discarded_on_bad_input(out: BlockOutput, probs: BlockOutput | None, world: int) -> Iterator[None]:
    """Delete the incomplete stores when the input turns out unreadable (a damaged file).

    Its blocks are of no use to a resume: the repaired input is another input (its
    identity differs). Other failures (a full disk, a kill) keep them for ``resume``.
    """
    try:
        yield
    except (FormatError, DataValueError):
        if world == 1:
            for store in (out, probs):
                if store is not None:
                    store.discard()
        raise


def _with_halo(
    block: tuple[slice, ...], halo: tuple[int, ...], spatial: tuple[int, ...]
) -> tuple[slice, ...]:
    """The block with ``halo`` voxels of context on every side, within the image."""
    return tuple(
        slice(max(0, s.start - h), min(n, s.stop + h)) for s, h, n in zip(block, halo, spatial, strict=True)
    )


def _probability_channels(predictor: Predictor) -> int:
    """Channels of the softmax: the model's outputs (the class channels only when the last is a distance)."""
    if predictor.instance_target is not None and predictor.instance_target.has_distance_channel:
        return predictor.instance_target.num_classes
    constraints = getattr(predictor.model, "constraints", None)
    return int(getattr(constraints, "out_channels", None) or predictor.num_classes)


def _probabilities(predictor: Predictor, logits: Any, inner: tuple[slice, ...]) -> np.ndarray:
    """Softmax over the classes (all channels but a distance channel), cropped to ``inner``."""
    classes = logits[:-1] if predictor.targets.has_distance_channel else logits
    probs = torch.softmax(classes.float(), dim=0)[(slice(None), *inner)]
    return probs.cpu().numpy().astype(np.float32)


def _global_ids(local: np.ndarray, first: int) -> np.ndarray:
    """Local ids 1..n of one block as global ids ``first .. first + n - 1`` (0 stays 0)."""
    ids = local.astype(np.uint32)
    return np.where(ids > 0, ids + np.uint32(first - 1), np.uint32(0)).astype(np.uint32)


def _join_with_written(
    ids: np.ndarray,
    outer: tuple[slice, ...],
    blocks: list[tuple[slice, ...]],
    done: set[int],
    out: BlockOutput,
    sets: UnionFind,
) -> None:
    """Union each new object with the written object it overlaps most in the halo (mutual majority)."""
    for other in done:
        region = _intersection(outer, blocks[other])
        if region is None:
            continue
        written = np.asarray(out.array[region])
        mine = ids[
            tuple(slice(r.start - o.start, r.stop - o.start) for r, o in zip(region, outer, strict=True))
        ]
        both = (written > 0) & (mine > 0)
        if not both.any():
            continue
        pairs, counts = np.unique(np.stack([mine[both], written[both]]), axis=1, return_counts=True)
        mine_sizes = dict(zip(*fastremap.unique(mine[mine > 0], return_counts=True), strict=True))
        written_sizes = dict(zip(*fastremap.unique(written[written > 0], return_counts=True), strict=True))
        for (a, b), n in zip(pairs.T, counts, strict=True):
            if 2 * n > mine_sizes[a] and 2 * n > written_sizes[b]:
                sets.union(int(a), int(b))


def _intersection(a: tuple[slice, ...], b: tuple[slice, ...]) -> tuple[slice, ...] | None:
    out = tuple(slice(max(x.start, y.start), min(x.stop, y.stop)) for x, y in zip(a, b, strict=True))
    return None if any(s.start >= s.stop for s in out) else out


def _relabel(out: BlockOutput, blocks: list[tuple[slice, ...]], sets: UnionFind) -> None:
    """Give every written object its set's id, the sets numbered 1..N in id order.

    The mapping is saved before the first block changes, and each block is rewritten
    through :meth:`BlockOutput.rewrite_block` (journaled), so a run interrupted in this
    pass finishes it without renumbering a block twice.
    """
    state = out.state
    if "mapping" not in state:
        present: set[int] = set()
        for block in blocks:
            present.update(int(i) for i in fastremap.unique(np.asarray(out.array[block])) if i)
        numbers: dict[int, int] = {}
        state["mapping"] = {i: numbers.setdefault(sets.find(i), len(numbers) + 1) for i in sorted(present)}
        out.save_state(state)
    mapping = {0: 0, **{int(k): int(v) for k, v in state["mapping"].items()}}
    done = out.rewritten("relabel")
    for index, block in enumerate(blocks):
        if index not in done:
            out.rewrite_block(
                "relabel",
                index,
                block,
                lambda ids: fastremap.remap(ids, mapping, preserve_missing_labels=True),
            )
