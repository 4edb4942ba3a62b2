"""Synthetic generators are deterministic per seed and produce the promised structures."""

from __future__ import annotations

import numpy as np

from medseg.data.synthetic import make_bitewing, make_cell_sequence, make_ct_volume, make_histo_tile


def test_same_seed_same_data_other_seed_other_data():
    for make in (
        lambda s: make_histo_tile((48, 48), n_nuclei=10, seed=s).image,
        lambda s: make_bitewing((48, 64), n_teeth=2, seed=s).image,
        lambda s: make_ct_volume((8, 16, 16), seed=s).image,
        lambda s: make_cell_sequence(2, (32, 32), n_cells=2, radius=4, seed=s).frames,
    ):
        assert np.array_equal(make(1), make(1))
        assert not np.array_equal(make(1), make(2))


def test_structures_present():
    tile = make_histo_tile((96, 96), n_nuclei=30, n_glands=2, seed=0)
    assert tile.nuclei.max() == 30 and set(np.unique(tile.glands)) == {0, 1, 2}
    assert tile.image[tile.nuclei > 0].mean() < tile.image[(tile.nuclei == 0) & (tile.glands == 0)].mean()
    vol = make_ct_volume((10, 32, 32), seed=0)
    assert set(np.unique(vol.label)) == {0, 1, 2, 3} and vol.spacing[0] > vol.spacing[1]
    xray = make_bitewing((64, 96), seed=0)
    assert (
        xray.image[xray.label == 0].mean() < xray.image[xray.label == 2].mean()
    )  # enamel brighter than background
