"""ZScore normalisation: statistics, the data.nonfinite policy, constant images."""

from __future__ import annotations

import numpy as np
import pytest

from medseg.errors import ConfigError, DataValueError
from medseg.infer.normalize import ZScore
from medseg.io import Volume, read, write


def test_fit_matches_numpy_over_all_images():
    a = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    b = np.full((1, 2, 2), 20.0, np.float32)
    z = ZScore.fit([a, b])
    both = np.concatenate([a.ravel(), b.ravel()])
    assert z.mean == pytest.approx((both.mean(),)) and z.std == pytest.approx((both.std(),))
    np.testing.assert_allclose(z(a), (a - both.mean()) / both.std(), rtol=1e-6)


def test_nonfinite_error_names_the_file_and_the_option(tmp_path):
    data = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
    data[0, 0, 0, :2] = [np.nan, np.inf]
    volume = read(write(Volume(data), tmp_path / "scan.nii.gz"))
    with pytest.raises(DataValueError, match=r"scan\.nii\.gz holds 2 non-finite.*data\.nonfinite"):
        ZScore.fit([volume])
    with pytest.raises(DataValueError, match=r"case\.mha holds 2 non-finite.*data\.nonfinite"):
        ZScore((0.0,), (1.0,))(data, source="case.mha")


def test_nonfinite_zero_and_min_fill_before_the_statistics():
    data = np.array([[[np.nan, 2.0], [4.0, -np.inf]]], np.float32)
    zero = ZScore.fit([data], nonfinite="zero")
    assert zero.mean == pytest.approx((1.5,)) and zero.fill == (0.0,)  # values 0, 2, 4, 0
    lowest = ZScore.fit([data], nonfinite="min")
    assert lowest.mean == pytest.approx((2.5,)) and lowest.fill == (2.0,)  # values 2, 2, 4, 2
    out = lowest(data)
    np.testing.assert_allclose(out.ravel(), (np.array([2.0, 2.0, 4.0, 2.0]) - 2.5) / np.sqrt(0.75), rtol=1e-6)
    back = ZScore.from_dict(lowest.to_dict())
    assert back == lowest
    assert ZScore.from_dict({"mean": [0.0], "std": [1.0]}).nonfinite == "error"
    with pytest.raises(ConfigError, match=r"data\.nonfinite must be one of error, zero, min"):
        ZScore.fit([data], nonfinite="drop")


def test_all_constant_training_images_are_named(tmp_path, caplog):
    blank = read(write(Volume(np.zeros((1, 4, 4), np.uint8)), tmp_path / "blank.tif"))
    with pytest.raises(DataValueError, match=r"constant in channel\(s\) \[0\].*blank\.tif"):
        ZScore.fit([blank])
    ZScore.fit([blank, np.arange(16, dtype=np.float32).reshape(1, 4, 4)])
    assert "blank.tif is constant" in caplog.text
