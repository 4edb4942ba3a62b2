from __future__ import annotations

import numpy as np
import pytest

from medseg.data import Sample
from medseg.errors import LabelError
from medseg.infer.normalize import ZScore
from medseg.io import Volume
from medseg.train.batches import patch_batches


def _sample(label: np.ndarray, case: str = "c0") -> Sample:
    image = Volume(np.arange(label.size, dtype=np.float32).reshape(1, *label.shape))
    return Sample(image, Volume(label[None], meta={"source": f"/data/{case}.png"}), case, "em")


def test_batches_have_the_requested_shapes_and_dtypes():
    label = np.zeros((40, 40), dtype=np.uint8)
    label[10:20, 10:20] = 1
    batches = patch_batches(
        [_sample(label)], patch_shape=(16, 16), batch_size=3, normalization=ZScore((0.0,), (1.0,))
    )
    image, target = next(batches)
    assert image.shape == (3, 1, 16, 16) and str(image.dtype) == "torch.float32"
    assert target.shape == (3, 1, 16, 16) and str(target.dtype) == "torch.int64"
    assert set(np.unique(target.numpy())) <= {0, 1}


def test_all_empty_labels_are_refused_with_the_case_and_file():
    empty = np.zeros((40, 40), dtype=np.uint8)
    with pytest.raises(
        LabelError, match=r"no training label contains any of the classes \[1\]: c0 \(/data/c0.png\)"
    ):
        next(
            patch_batches(
                [_sample(empty)], patch_shape=(16, 16), batch_size=2, normalization=ZScore((0.0,), (1.0,))
            )
        )
    unlabelled = Sample(Volume(np.zeros((1, 8, 8))), None, "u1", "em")
    with pytest.raises(LabelError, match=r"unlabelled cases \['u1'\]"):
        next(
            patch_batches(
                [unlabelled], patch_shape=(4, 4), batch_size=1, normalization=ZScore((0.0,), (1.0,))
            )
        )


def test_some_empty_labels_are_sampled_uniformly(caplog):
    full = np.zeros((40, 40), dtype=np.uint8)
    full[5:30, 5:30] = 1
    samples = [_sample(full, "c0"), _sample(np.zeros((40, 40), dtype=np.uint8), "c1")]
    batches = patch_batches(samples, patch_shape=(16, 16), batch_size=4, normalization=ZScore((0.0,), (1.0,)))
    for _ in range(30):  # would raise LabelError if the empty case were class-balanced
        next(batches)
    assert "1 of 2 training labels contain none of the classes [1] (e.g. c1)" in caplog.text
