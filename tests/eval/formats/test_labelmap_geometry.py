from __future__ import annotations

import numpy as np
import pytest

from medseg.eval.formats import write_submission
from medseg.io import read


@pytest.mark.parametrize("suffix", [".nii.gz", ".tif"])
def test_labelmap_submission_keeps_geometry(tmp_path, suffix):
    labels = np.zeros((3, 5, 6), dtype=np.int64)
    labels[1, 2:4, 1:5] = 2
    direction = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
    path = write_submission(
        "labelmap",
        labels,
        tmp_path,
        "case_7",
        spacing=(3.0, 0.5, 0.7),
        origin=(10.0, -4.0, 2.5),
        direction=direction,
        suffix=suffix,
    )
    volume = read(path)
    assert path.name == f"case_7{suffix}"
    assert volume.array.dtype == np.uint8
    np.testing.assert_array_equal(volume.array[0], labels)
    np.testing.assert_allclose(volume.spacing, (3.0, 0.5, 0.7), rtol=1e-6)
    np.testing.assert_allclose(volume.origin, (10.0, -4.0, 2.5), rtol=1e-6)
    np.testing.assert_allclose(volume.direction, direction, atol=1e-6)
