from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from medseg.errors import ShapeError
from medseg.infer.blockwise import iter_blocks, predict_blockwise
from medseg.infer.normalize import ZScore
from medseg.infer.predictor import Predictor
from medseg.infer.sliding_window import SlidingWindow
from medseg.io import Volume, open_array, read, write


class Threshold(nn.Module):
    """Pointwise 2-class 'model': logit of class 1 rises with intensity. Tiling-independent."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.cat([-x, x], dim=1)


def _stack(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.normal(size=(1, 7, 40, 45)).astype(np.float32)
    volume = Volume(image, spacing=(40.0, 4.0, 4.0), origin=(1.0, 2.0, 3.0))
    return write(volume, tmp_path / "raw.zarr"), image


def _predictor(model):
    return Predictor(model, SlidingWindow((16, 16), overlap=0.25, device="cpu"), ZScore((0.0,), (1.0,)))


def test_blocks_tile_the_array_exactly():
    blocks = iter_blocks((7, 40, 45), (3, 16, 16))
    covered = np.zeros((7, 40, 45), dtype=int)
    for block in blocks:
        covered[block] += 1
    assert np.all(covered == 1)
    assert len(blocks) == 3 * 3 * 3


def test_blockwise_equals_whole_image_prediction_and_keeps_geometry(tmp_path):
    path, image = _stack(tmp_path)
    with open_array(path) as lazy:
        out = predict_blockwise(
            _predictor(Threshold()), lazy, tmp_path / "labels.zarr", block_shape=(3, 16, 16), halo=(0, 4, 4)
        )
    labels = read(out)
    assert labels.array.shape == (1, 7, 40, 45) and labels.array.dtype == np.uint8
    np.testing.assert_array_equal(labels.array[0], (image[0] > 0).astype(np.uint8))
    assert labels.spacing == (40.0, 4.0, 4.0) and labels.origin == (1.0, 2.0, 3.0)
    assert not (tmp_path / "labels.zarr.incomplete").exists()


def test_interrupted_run_resumes_with_the_missing_blocks(tmp_path):
    path, image = _stack(tmp_path)

    class Crash(Threshold):
        def forward(self, x):
            if self.calls >= 5:
                raise RuntimeError("simulated crash")
            return super().forward(x)

    with open_array(path) as lazy, pytest.raises(RuntimeError, match="simulated crash"):
        predict_blockwise(
            _predictor(Crash()), lazy, tmp_path / "labels.zarr", block_shape=(3, 16, 16), halo=(0, 4, 4)
        )
    assert not (tmp_path / "labels.zarr").exists()  # nothing half-written at the destination
    assert (tmp_path / "labels.zarr.incomplete").exists()

    model = Threshold()
    with open_array(path) as lazy:
        out = predict_blockwise(
            _predictor(model), lazy, tmp_path / "labels.zarr", block_shape=(3, 16, 16), halo=(0, 4, 4)
        )
    np.testing.assert_array_equal(read(out).array[0], (image[0] > 0).astype(np.uint8))
    fresh = Threshold()
    with open_array(path) as lazy:
        predict_blockwise(
            _predictor(fresh), lazy, tmp_path / "again.zarr", block_shape=(3, 16, 16), halo=(0, 4, 4)
        )
    assert 0 < model.calls < fresh.calls  # the resumed run skipped the finished blocks


def test_block_arguments_must_match_the_image():
    with pytest.raises(ShapeError, match="one value per spatial axis"):
        predict_blockwise(
            _predictor(Threshold()), np.zeros((1, 4, 8, 8)), "x.zarr", block_shape=(4, 4), halo=(0, 0)
        )
