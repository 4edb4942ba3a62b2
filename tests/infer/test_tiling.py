"""Window grids: every voxel covered, or a clear error."""

import numpy as np
import pytest

from medseg.errors import ConfigError
from medseg.infer.tiling import aligned_size, window_starts


@pytest.mark.parametrize(("size", "window", "align"), [(50, 8, 8), (100, 12, 4), (97, 33, 1), (64, 16, 16)])
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5, 0.9])
def test_aligned_windows_cover_every_voxel(size, window, align, overlap):
    grid = aligned_size(size, window, align)
    covered = np.zeros(grid, bool)
    for start in window_starts(grid, window, overlap, align=align):
        assert start % align == 0
        covered[start : start + window] = True
    assert covered.all()


def test_output_window_below_the_pooling_factor_is_refused():
    # the registry's unet3d at roi 44 gives 4 output voxels per axis with a pooling factor of 8:
    # aligned starts 8 apart left 4 of every 8 voxels uncovered (NaN in the prediction)
    with pytest.raises(ConfigError, match=r"output window \(4\) is smaller than its pooling factor \(8\)"):
        window_starts(aligned_size(50, 4, 8), 4, 0.5, align=8)
