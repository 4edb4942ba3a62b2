"""Label values are checked against data.label_kind / data.classes with the file named."""

from __future__ import annotations

import numpy as np
import pytest

from medseg.data.label_check import check_labels, label_sample
from medseg.errors import LabelError
from medseg.io import Volume, open_array, read, write

CLASSES = ("background", "cell")


def _label(tmp_path, name, array):
    return read(write(Volume(array[None]), tmp_path / name))


def test_values_outside_the_classes_name_the_file_and_the_fix(tmp_path):
    mask = _label(tmp_path, "mask.png", np.array([[0, 255], [255, 0]], np.uint8))
    with pytest.raises(LabelError, match=r"mask\.png holds values \[255\].*0/255 mask: save it as 0/1"):
        check_labels([mask], label_kind="classes", classes=CLASSES)
    ids = _label(tmp_path, "ids.tif", np.arange(12, dtype=np.uint16).reshape(3, 4))
    with pytest.raises(LabelError, match=r"ids\.tif holds values \[2, 3, .*set data\.label_kind: instances"):
        check_labels([ids], label_kind="classes", classes=CLASSES)
    check_labels([ids, None], label_kind="instances")


def test_negative_and_fractional_values(tmp_path):
    negative = _label(tmp_path, "neg.nii.gz", np.array([[[0, -1], [1, 1]]], np.int16))
    with pytest.raises(LabelError, match=r"neg\.nii\.gz holds negative values \[-1\]"):
        check_labels([negative], label_kind="instances")
    soft = _label(tmp_path, "soft.tif", np.array([[0.0, 0.5], [1.0, 1.0]], np.float32))
    with pytest.raises(LabelError, match=r"soft\.tif holds non-integer values"):
        check_labels([soft], label_kind="classes", classes=CLASSES)
    whole = _label(tmp_path, "whole.tif", np.array([[0.0, 1.0]], np.float32))
    check_labels([whole], label_kind="classes", classes=CLASSES)


def test_large_lazy_labels_are_sampled_by_slabs(tmp_path):
    stack = np.zeros((1, 40, 16, 16), np.uint8)
    stack[0, 39, 0, 0] = 7  # in the last slab, which the evenly spaced sample includes
    with open_array(write(Volume(stack), tmp_path / "stack.h5")) as lazy:
        sample = label_sample(lazy, max_voxels=16 * 16 * 5)
        assert sample.shape == (5, 1, 16, 16)
        with pytest.raises(LabelError, match=r"stack\.h5 holds values \[7\]"):
            check_labels([lazy], label_kind="classes", classes=CLASSES, max_voxels=16 * 16 * 5)
