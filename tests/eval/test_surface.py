from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance, compute_surface_dice

from medseg.eval.surface import (
    average_symmetric_surface_distance,
    hausdorff_distance,
    normalized_surface_dice,
    surface_metrics,
    surfel_area_table,
)

# DeepMind's package (PyPI surface-distance) imports from deprecated scipy.ndimage namespaces
deepmind = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _t(a):
    return torch.from_numpy(a[None, None].astype(np.float32))


@pytest.mark.parametrize(("shape", "spacing"), [((40, 50), (1.0, 2.5)), ((16, 30, 25), (3.0, 1.0, 0.7))])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_monai(blobs, shape, spacing, seed):
    g, p = blobs(shape, seed), blobs(shape, seed + 10)
    kw = {"include_background": True, "spacing": spacing}
    # MONAI returns float32: compare with a relative tolerance of 1e-6
    assert hausdorff_distance(g, p, spacing=spacing) == pytest.approx(
        compute_hausdorff_distance(_t(p), _t(g), **kw).item(), rel=1e-6
    )
    assert hausdorff_distance(g, p, spacing=spacing, percentile=95) == pytest.approx(
        compute_hausdorff_distance(_t(p), _t(g), percentile=95, **kw).item(), rel=1e-6
    )
    assert normalized_surface_dice(g, p, tolerance=2.0, spacing=spacing, method="monai") == pytest.approx(
        compute_surface_dice(_t(p), _t(g), [2.0], **kw).item(), abs=1e-6
    )
    assert average_symmetric_surface_distance(g, p, spacing=spacing) == pytest.approx(
        compute_average_surface_distance(_t(p), _t(g), symmetric=True, **kw).item(), rel=1e-6
    )


def test_hand_worked_and_empty():
    g = np.zeros((5, 9), bool)
    g[2, 2] = True
    p = np.zeros((5, 9), bool)
    p[2, 6] = True
    assert hausdorff_distance(g, p, spacing=(1.0, 2.0)) == 8.0
    assert np.isnan(hausdorff_distance(np.zeros((4, 4)), np.zeros((4, 4))))
    assert hausdorff_distance(g, np.zeros_like(g)) == np.inf
    assert hausdorff_distance(g, np.zeros_like(g), percentile=95) == np.inf  # not nan
    assert average_symmetric_surface_distance(np.zeros_like(g), g) == np.inf
    assert normalized_surface_dice(np.zeros_like(g), g, tolerance=1, method="monai") == 0.0
    assert normalized_surface_dice(g, np.zeros_like(g), tolerance=1) == 0.0
    res = surface_metrics(g.astype(int), p.astype(int), tolerance=8.0, spacing=(1, 2))
    assert res[1]["surface_dice"] == 1.0 and res[1]["hausdorff95"] == 8.0


@pytest.mark.parametrize(
    "spacing", [(1.0, 1.0), (2.0, 0.7), (1.0, 1.0, 1.0), (5.0, 0.7, 0.7), (0.3, 3.0, 1.1)]
)
@deepmind
def test_surfel_tables_equal_deepmind(spacing):
    lookup_tables = pytest.importorskip("surface_distance.lookup_tables")

    make = (
        lookup_tables.create_table_neighbour_code_to_contour_length
        if len(spacing) == 2
        else lookup_tables.create_table_neighbour_code_to_surface_area
    )
    np.testing.assert_allclose(surfel_area_table(spacing), make(spacing), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("shape", "spacing"),
    [((40, 50), (1.0, 2.5)), ((16, 30, 25), (5.0, 0.7, 0.7)), ((12, 20, 22), (0.3, 3.0, 1.1))],
)
@pytest.mark.parametrize("seed", [0, 1])
@deepmind
def test_surface_dice_equals_deepmind(blobs, shape, spacing, seed):
    surface_distance = pytest.importorskip("surface_distance")
    g, p = blobs(shape, seed), blobs(shape, seed + 10)
    distances = surface_distance.compute_surface_distances(g, p, spacing)
    for tolerance in (0.5, 1.0, 2.0, 3.0):
        reference = surface_distance.compute_surface_dice_at_tolerance(distances, tolerance)
        assert normalized_surface_dice(g, p, tolerance=tolerance, spacing=spacing) == pytest.approx(
            reference, abs=1e-6
        )
    row = surface_metrics(g.astype(int), p.astype(int), labels=[1], spacing=spacing, tolerance=2.0)[1]
    assert row["surface_dice"] == pytest.approx(
        surface_distance.compute_surface_dice_at_tolerance(distances, 2.0), abs=1e-6
    )
