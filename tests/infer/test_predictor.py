from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from torch import nn

from medseg.errors import DataNotFoundError
from medseg.eval.formats import read_submission
from medseg.infer.normalize import ZScore
from medseg.infer.postprocess import instances_from_boundary, instances_from_distance
from medseg.infer.predictor import Predictor, checkpoint_path
from medseg.infer.sliding_window import SlidingWindow
from medseg.io import Volume
from medseg.pipeline.predicting import case_name, write_case_submission


def _discs(shape=(48, 64)):
    """Three discs, two of them touching: instance ids 1..3."""
    yy, xx = np.indices(shape)
    truth = np.zeros(shape, dtype=np.uint32)
    for i, (cy, cx, r) in enumerate([(20, 16, 9), (20, 33, 8), (36, 50, 7)], start=1):
        truth[(yy - cy) ** 2 + (xx - cx) ** 2 <= r**2] = i
    return truth


class Channels(nn.Module):
    """The input channels are the logits: predictions equal the synthetic targets, tiling-independent."""

    def forward(self, x):
        return x


def _boundary_logits(truth):
    inside = np.zeros(truth.shape, dtype=bool)
    for i in range(1, truth.max() + 1):
        inside |= ndimage.binary_erosion(truth == i, iterations=2)
    boundary = (truth > 0) & ~inside
    return np.stack([truth == 0, inside, boundary]).astype(np.float32) * 6.0


def test_boundary_checkpoint_splits_touching_objects_and_writes_monuseg(tmp_path):
    truth = _discs()
    predictor = Predictor(
        Channels(),
        SlidingWindow((32, 32), device="cpu"),
        ZScore((0.0,) * 3, (1.0,) * 3),
        classes=["background", "inside", "boundary"],
        targets={"label_kind": "instances", "instance_target": "boundary"},
    )
    prediction = predictor.predict(Volume(_boundary_logits(truth)))
    instances = prediction.instances.array[0]
    assert prediction.probabilities is None and prediction.labels.array.shape == (1, 48, 64)
    # one predicted object per disc (the touching pair is split), ids 1..3, background kept
    assert sorted(np.unique(instances)) == [0, 1, 2, 3]
    for i in range(1, 4):
        assert len(np.unique(instances[truth == i])) == 1
    np.testing.assert_array_equal(instances > 0, truth > 0)
    path = write_case_submission("monuseg", prediction, tmp_path, "case", predictor)
    np.testing.assert_array_equal(read_submission("monuseg", path).array[0], instances)


def test_distance_model_uses_softmax_of_two_classes_and_sigmoid_distance():
    truth = _discs()
    distance = np.zeros(truth.shape, dtype=np.float32)
    for i in range(1, 4):
        d = ndimage.distance_transform_edt(truth == i)
        distance += d / d.max()
    foreground = (truth > 0).astype(np.float32)
    # logits: classes 0/1 from the foreground, channel 2 the logit of the distance
    logits = np.stack([-6 * foreground, 6 * foreground, np.log(distance + 1e-4) - np.log1p(-distance + 1e-4)])
    predictor = Predictor(
        Channels(),
        SlidingWindow((32, 32), device="cpu"),
        ZScore((0.0,) * 3, (1.0,) * 3),
        targets={"label_kind": "instances", "instance_target": "distance"},
    )
    prediction = predictor.predict(Volume(logits.astype(np.float32)))
    expected = instances_from_distance(foreground, distance)
    np.testing.assert_array_equal(prediction.instances.array[0], expected)
    assert sorted(np.unique(expected)) == [0, 1, 2, 3]
    np.testing.assert_array_equal(prediction.labels.array[0], truth > 0)  # argmax over the 2 classes only


def test_small_objects_are_removed_and_ids_renumbered():
    probabilities = np.zeros((3, 20, 20), dtype=np.float32)
    probabilities[0] = 1
    probabilities[:, 2:8, 2:8] = np.array([0, 1, 0])[:, None, None]  # 36 px
    probabilities[:, 15:17, 15:17] = np.array([0, 1, 0])[:, None, None]  # 4 px
    instances = instances_from_boundary(probabilities, min_size=10)
    assert instances.dtype == np.uint32 and sorted(np.unique(instances)) == [0, 1]
    assert (instances == 1).sum() == 36


def test_checkpoint_path_finds_the_run_folder_checkpoints_or_file(tmp_path):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    best = tmp_path / "run" / "checkpoints" / "best.pt"
    best.write_bytes(b"x")
    assert checkpoint_path(tmp_path / "run") == best
    assert checkpoint_path(tmp_path / "run" / "checkpoints") == best
    assert checkpoint_path(best) == best
    with pytest.raises(DataNotFoundError, match="pass the run folder that medseg train printed"):
        checkpoint_path(tmp_path)


@pytest.mark.parametrize(
    ("path", "case"),
    [
        ("imagesTs/right_0000.tif", "right"),
        ("a/case_001.nii.gz", "case_001"),
        ("s.h5:/raw", "s"),
        ("x_0001.tif", "x_0001"),
    ],
)
def test_case_ids(path, case):
    assert case_name(path) == case


def test_from_checkpoint_takes_a_run_folder_and_identifies_the_file(tmp_path):
    import torch

    from medseg.checkpoint_meta import read_checkpoint
    from medseg.models import build_model
    from medseg.options import InstanceTarget
    from medseg.train.checkpoint import save_checkpoint

    torch.manual_seed(0)
    params = {"in_channels": 1, "out_channels": 3, "features": 4, "depth": 2}
    model = build_model("unet", **params)
    metadata = {  # as medseg train wrote it before metadata versions (version 1)
        "model": {"name": "unet", "params": params},
        "normalization": {"mean": [0.5], "std": [0.25]},
        "classes": ["background", "cell"],  # the third output channel is the distance map
        "targets": {"label_kind": "instances", "instance_target": "distance"},
    }
    path = save_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt", model=model, metadata=metadata)
    window = SlidingWindow((32, 32), device="cpu")
    predictor = Predictor.from_checkpoint(tmp_path / "run", window)
    assert predictor.instance_target is InstanceTarget.DISTANCE and predictor.num_classes == 2
    assert predictor.identity["checkpoint_sha256"] == read_checkpoint(path).sha256
    for a, b in zip(predictor.model.state_dict().values(), model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    prediction = predictor.predict(Volume(np.random.default_rng(0).random((1, 40, 36), dtype=np.float32)))
    assert prediction.instances.array.shape == (1, 40, 36) and set(np.unique(prediction.labels.array)) <= {
        0,
        1,
    }
