from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from medseg.data import Sample
from medseg.data.dataset import PatchDataset, TrainingTargets
from medseg.data.targets import boundary_target, distance_target
from medseg.errors import LabelError
from medseg.io import Volume, open_array
from medseg.train.stream import IndexBatches, batch_loader


def _sample(label: np.ndarray, case: str = "c0") -> Sample:
    image = Volume(np.arange(label.size, dtype=np.float32).reshape(1, *label.shape) / label.size)
    return Sample(image, Volume(label[None], meta={"source": f"/data/{case}.png"}), case, "em")


def _blobs(shape=(40, 40)) -> np.ndarray:
    label = np.zeros(shape, dtype=np.uint8)
    label[..., 10:20, 10:20] = 1
    return label


def test_patch_i_depends_on_seed_and_index_only():
    dataset = PatchDataset([_sample(_blobs(), "a"), _sample(_blobs(), "b")], patch_shape=(16, 16), seed=3)
    again = PatchDataset([_sample(_blobs(), "a"), _sample(_blobs(), "b")], patch_shape=(16, 16), seed=3)
    for i in (7, 0, 7, 123):  # any order, any repetition
        for a, b in zip(dataset[i], again[i], strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    image, target = dataset[5]
    assert image.shape == (1, 16, 16) and image.dtype == torch.float32
    assert target.shape == (1, 16, 16) and target.dtype == torch.int64
    assert not torch.equal(dataset[5][0], dataset[6][0])
    other_seed = PatchDataset([_sample(_blobs(), "a"), _sample(_blobs(), "b")], patch_shape=(16, 16), seed=4)
    assert not torch.equal(other_seed[5][0], image)


def test_batches_are_the_same_with_any_number_of_workers():
    dataset = PatchDataset([_sample(_blobs())], patch_shape=(16, 16), seed=1)
    serial = batch_loader(dataset, 4, start_iteration=2)
    parallel = batch_loader(dataset, 4, start_iteration=2, num_workers=2)
    for _ in range(3):
        for a, b in zip(next(serial), next(parallel), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    # iteration 2 of the stream is patches 8..11
    torch.testing.assert_close(next(batch_loader(dataset, 4, start_iteration=2))[0][1], dataset[9][0])


def test_ranks_split_each_global_batch():
    assert [next(iter(IndexBatches(4, rank=r, world_size=2, start_iteration=3))) for r in (0, 1)] == [
        [12, 13],
        [14, 15],
    ]


def test_non_square_3d_patches_are_augmented_without_changing_shape():
    label = np.zeros((12, 30, 40), dtype=np.uint8)
    label[4:8, 10:20, 10:30] = 1
    dataset = PatchDataset([_sample(label)], patch_shape=(8, 16, 24))
    for i in range(12):  # rotations only in square planes, so every patch keeps its shape
        image, target = dataset[i]
        assert image.shape == (1, 8, 16, 24) and target.shape == (1, 8, 16, 24)


def test_lazy_hdf5_samples_are_read_patch_by_patch(tmp_path):
    path = tmp_path / "stack.h5"
    label = np.zeros((6, 40, 40), dtype=np.uint8)
    label[:, 5:15, 5:15] = 1
    with h5py.File(path, "w") as f:
        f["raw"] = np.random.default_rng(0).random((6, 40, 40)).astype(np.float32)
        f["labels"] = label
    sample = Sample(open_array(f"{path}:raw"), open_array(f"{path}:labels"), "stack", "em")
    dataset = PatchDataset([sample], patch_shape=(1, 16, 16), augmentation=False, num_classes=2)
    image, target = dataset[0]
    assert image.shape == (1, 1, 16, 16) and set(np.unique(target.numpy())) <= {0, 1}
    parallel = next(batch_loader(dataset, 2, num_workers=2))  # workers re-open the file
    torch.testing.assert_close(parallel[0][0], dataset[0][0])


def test_label_values_outside_the_classes_name_the_file():
    label = _blobs()
    label[0, 0] = 5
    with pytest.raises(
        LabelError, match=r"/data/c0.png holds values \[5\] outside the 2 classes of data.classes"
    ):
        PatchDataset([_sample(label)], patch_shape=(16, 16), num_classes=2)
    label[0, 0] = 255  # the ignore label is allowed
    PatchDataset([_sample(label)], patch_shape=(16, 16), num_classes=2, ignore_label=255)


def test_all_empty_labels_are_refused_with_the_case_and_file():
    empty = np.zeros((40, 40), dtype=np.uint8)
    with pytest.raises(
        LabelError, match=r"no training label contains any of the classes \[1\]: c0 \(/data/c0.png\)"
    ):
        PatchDataset([_sample(empty)], patch_shape=(16, 16))
    unlabelled = Sample(Volume(np.zeros((1, 8, 8))), None, "u1", "em")
    with pytest.raises(LabelError, match=r"unlabelled cases \['u1'\]"):
        PatchDataset([unlabelled], patch_shape=(4, 4))


def test_some_empty_labels_are_sampled_uniformly(caplog):
    samples = [_sample(_blobs(), "c0"), _sample(np.zeros((40, 40), dtype=np.uint8), "c1")]
    dataset = PatchDataset(samples, patch_shape=(16, 16))
    for i in range(30):  # would raise LabelError if the empty case were class-balanced
        dataset[i]
    assert "1 of 2 training labels contain none of the classes [1] (e.g. c1)" in caplog.text


def test_instance_targets_come_from_the_data_target_functions():
    label = np.zeros((40, 40), dtype=np.uint16)
    label[5:15, 5:15], label[12:30, 14:30] = 7, 9  # two touching objects
    image = np.arange(40 * 40, dtype=np.float32).reshape(1, 40, 40)  # values give the crop position
    sample = Sample(Volume(image), Volume(label[None]), "c0", "cells")
    for kind in ("boundary", "distance"):
        dataset = PatchDataset(
            [sample],
            patch_shape=(16, 16),
            classes=None,
            augmentation=False,
            label_transform=TrainingTargets(kind),
        )
        for index in range(4):
            patch, *targets = dataset[index]
            y, x = divmod(int(patch[0, 0, 0]), 40)
            crop = label[None, y : y + 16, x : x + 16]
            expected = boundary_target(crop) if kind == "boundary" else distance_target(crop)
            expected = expected if isinstance(expected, tuple) else (expected,)
            for got, want in zip(targets, expected, strict=True):
                np.testing.assert_array_equal(got.numpy(), want)


def test_2d_patches_of_a_lazy_3d_stack_are_single_sections(tmp_path):
    path = tmp_path / "stack.h5"
    label = np.zeros((5, 40, 40), dtype=np.uint8)
    label[:, 5:15, 5:15] = 1
    with h5py.File(path, "w") as f:
        f["raw"] = np.arange(5 * 40 * 40, dtype=np.float32).reshape(5, 40, 40)
        f["labels"] = label
    sample = Sample(open_array(f"{path}:raw"), open_array(f"{path}:labels"), "stack", "em")
    image, target = PatchDataset([sample], patch_shape=(16, 16), augmentation=False)[3]
    assert image.shape == (1, 16, 16) and target.shape == (1, 16, 16)
    # a section-aligned crop of the stack: consecutive values along X, 40 apart along Y
    assert torch.all(image[0, :, 1:] - image[0, :, :-1] == 1) and torch.all(
        image[0, 1:] - image[0, :-1] == 40
    )
