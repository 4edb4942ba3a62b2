"""Block-wise prediction of arrays larger than memory (EM stacks, big scans).

Like torch-em's ``predict_with_halo``: the image is read block by block with a halo
of context, each block is predicted with the sliding window, the halo is cropped and
the labels go into an on-disk Zarr array. Memory stays bounded by the block size;
an interrupted run continues with the blocks not yet written.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from medseg.errors import ConfigError, ShapeError
from medseg.infer.predictor import Predictor
from medseg.io.zarr_output import BlockOutput

__all__ = ["iter_blocks", "predict_blockwise"]

logger = logging.getLogger(__name__)


def iter_blocks(shape: Sequence[int], block_shape: Sequence[int]) -> list[tuple[slice, ...]]:
    """Non-overlapping blocks tiling ``shape`` (the last block per axis may be smaller)."""
    starts = [range(0, s, b) for s, b in zip(shape, block_shape, strict=True)]
    return [
        tuple(slice(o, min(o + b, s)) for o, b, s in zip(origin, block_shape, shape, strict=True))
        for origin in itertools.product(*starts)
    ]


def predict_blockwise(
    predictor: Predictor,
    image: Any,
    output: str | Path,
    *,
    block_shape: Sequence[int],
    halo: Sequence[int],
    progress: bool = False,
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
        ``.zarr`` store for the ``([Z,] Y, X)`` uint8 labels, with the image's geometry.
    block_shape : sequence of int
        Spatial size of the blocks written at once.
    halo : sequence of int
        Context read around each block on every side, cropped after prediction
        (use at least half the network's receptive field).
    progress : bool
        Progress bar over blocks.

    Returns
    -------
    Path
        The finished store.
    """
    spatial = tuple(int(s) for s in image.shape[1:])
    block_shape = tuple(int(b) for b in block_shape)
    halo = tuple(int(h) for h in halo)
    if len(block_shape) != len(spatial) or len(halo) != len(spatial):
        raise ShapeError(
            f"block_shape {block_shape} and halo {halo} need one value per spatial axis of the image {spatial}"
        )
    if min(block_shape) < 1 or min(halo) < 0:
        raise ConfigError(f"block_shape must be positive and halo >= 0, got {block_shape} and {halo}")
    out = BlockOutput(
        output,
        shape=spatial,
        dtype=np.uint8,
        spacing=getattr(image, "spacing", None),
        origin=getattr(image, "origin", None),
        direction=getattr(image, "direction", None),
    )
    blocks = iter_blocks(spatial, block_shape)
    done = out.done
    todo = [(i, b) for i, b in enumerate(blocks) if i not in done]
    logger.info("%d of %d blocks to predict into %s", len(todo), len(blocks), output)
    for index, block in tqdm(todo, desc="blocks", unit="block", disable=not progress):
        outer = tuple(
            slice(max(0, s.start - h), min(n, s.stop + h))
            for s, h, n in zip(block, halo, spatial, strict=True)
        )
        data = np.asarray(image[(slice(None), *outer)])
        labels = predictor.predict_logits(data).argmax(dim=0).cpu().numpy().astype(np.uint8)
        inner = tuple(slice(s.start - o.start, s.stop - o.start) for s, o in zip(block, outer, strict=True))
        out.write_block(index, block, labels[inner])
    return out.finish()
