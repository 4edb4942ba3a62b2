from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medseg.errors import ShapeError
from medseg.pipeline.overlay import overlay_panels, write_overlay


def test_panels_show_image_truth_and_prediction(tmp_path):
    image = np.linspace(0, 255, 16 * 10).reshape(16, 10)
    truth = np.zeros((16, 10), dtype=np.uint8)
    truth[4:8, 2:5] = 1
    prediction = np.zeros_like(truth)
    picture = overlay_panels(image, truth, prediction)
    assert picture.shape == (16, 3 * 10 + 2 * 4, 3) and picture.dtype == np.uint8
    left, middle, right = picture[:, :10], picture[:, 14:24], picture[:, 28:]
    assert np.array_equal(left, right)  # empty prediction leaves the image untinted
    assert middle[5, 3, 0] > middle[5, 3, 1]  # membrane (class 1) tinted red
    path = write_overlay(tmp_path / "o.png", image, truth, prediction)
    written = np.asarray(Image.open(path))
    assert written.shape == (16 + 16, 38, 3)  # a title band on top of the panels
    assert np.array_equal(written[16:], picture)
    assert (written[:16] < 128).any()  # the titles are drawn


def test_shape_mismatch():
    with pytest.raises(ShapeError, match="one shape"):
        overlay_panels(np.zeros((4, 4)), np.zeros((4, 5)), np.zeros((4, 4)))
