from __future__ import annotations

import numpy as np
import pytest
import tifffile

from medseg.data.em import ISBI_ON_DISK
from medseg.data.synthetic.em import make_em_stack, write_isbi2012
from medseg.errors import ConfigError
from medseg.io import read


def test_same_seed_same_stack_other_seed_other_stack():
    a = make_em_stack((3, 64, 64), seed=3)
    b = make_em_stack((3, 64, 64), seed=3)
    c = make_em_stack((3, 64, 64), seed=4)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.image, c.image)


def test_labels_use_isbi_polarity_and_membranes_are_dark_thin_bands():
    stack = make_em_stack((4, 128, 128), seed=0)
    assert stack.image.dtype == np.uint8 and stack.labels.dtype == np.uint8
    assert set(np.unique(stack.labels)) == {ISBI_ON_DISK["membrane"], ISBI_ON_DISK["cell"]}
    membrane = stack.labels == ISBI_ON_DISK["membrane"]
    assert 0.05 < membrane.mean() < 0.30
    assert stack.image[membrane].mean() < stack.image[~membrane].mean() - 40
    # a membrane band is at most ~4 px wide: eroding it by 3 px in-plane removes nearly all of it
    from scipy import ndimage

    core = ndimage.binary_erosion(membrane, structure=np.ones((1, 5, 5)))
    assert core.mean() < 0.01 * membrane.mean() + 1e-3


def test_cells_continue_across_sections():
    stack = make_em_stack((6, 96, 96), seed=1)
    same = (stack.cell_ids[1:] == stack.cell_ids[:-1]).mean()
    assert same > 0.7


def test_write_isbi2012_layout(tmp_path):
    paths = write_isbi2012(tmp_path, shape=(3, 32, 48), seed=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "test-labels.tif",
        "test-volume.tif",
        "train-labels.tif",
        "train-volume.tif",
    ]
    # multi-page uint8 TIFF, one page per section, readable by plain tifffile
    with tifffile.TiffFile(paths["train_volume"]) as tif:
        assert len(tif.pages) == 3 and tif.pages[0].dtype == np.uint8
    volume = read(paths["train_labels"])
    assert volume.array.shape == (1, 3, 32, 48)
    assert volume.spacing == (50.0, 4.0, 4.0)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="membrane_width"):
        make_em_stack((2, 32, 32), membrane_width=(1.0, 3.0))
    with pytest.raises(ConfigError, match=r"shape must be \(Z, Y, X\)"):
        make_em_stack((32, 32))
