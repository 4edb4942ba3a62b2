"""Instance-map training targets (CONTRACTS interface 2), on hand-worked arrays in 2D and 3D."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medseg.data.targets import boundary_target, distance_target
from medseg.errors import LabelError, ShapeError


def test_boundary_2d_square_and_touching_objects():
    ids = np.zeros((1, 5, 7), np.uint16)
    ids[0, 1:4, 1:4] = 3  # a 3x3 object: ring of 8 boundary voxels around one inside voxel
    ids[0, 1:4, 4:6] = 9  # touches object 3 along a column
    expected = np.array(
        [
            [0, 0, 0, 0, 0, 0, 0],
            [0, 2, 2, 2, 2, 2, 0],
            [0, 2, 1, 2, 2, 2, 0],
            [0, 2, 2, 2, 2, 2, 0],
            [0, 0, 0, 0, 0, 0, 0],
        ]
    )
    out = boundary_target(ids)
    assert out.dtype == np.int64 and out.shape == (1, 5, 7)
    np.testing.assert_array_equal(out[0], expected)


def test_boundary_patch_edge_is_not_a_border():
    ids = np.ones((1, 3, 4), np.int32)  # an object filling the crop continues outside it
    np.testing.assert_array_equal(boundary_target(ids), np.ones((1, 3, 4)))
    ids[0, :, 3] = 2
    np.testing.assert_array_equal(boundary_target(ids)[0], [[1, 1, 2, 2]] * 3)


def test_boundary_3d_cube_uses_face_neighbours():
    ids = np.zeros((1, 5, 5, 5), np.uint8)
    ids[0, 1:4, 1:4, 1:4] = 1
    out = boundary_target(ids)[0]
    assert out[2, 2, 2] == 1  # the only voxel whose 6 neighbours are all in the cube
    assert (out == 1).sum() == 1 and (out == 2).sum() == 26 and (out == 0).sum() == 125 - 27


def test_distance_hand_worked_2d():
    ids = np.zeros((1, 5, 5), np.int64)
    ids[0, 1:4, 1:4] = 1
    foreground, distance = distance_target(ids)
    assert foreground.dtype == np.int64 and distance.dtype == np.float32
    np.testing.assert_array_equal(foreground[0], ids[0] > 0)
    # EDT inside a 3x3 square: ring 1, centre 2 -> normalised 0.5 and 1
    expected = np.zeros((5, 5), np.float32)
    expected[1:4, 1:4] = 0.5
    expected[2, 2] = 1.0
    np.testing.assert_allclose(distance[0], expected)


def test_distance_touching_objects_each_peak_at_one():
    ids = np.array([[[1, 1, 1, 2, 2, 2, 0, 5]]])
    _, distance = distance_target(ids)
    # object 1: distances 3, 2, 1 to object 2 (the patch edge is not a border), / 3;
    # object 2: 1, 2, 1 between object 1 and the background, / 2; object 5: one voxel, 1 / 1
    np.testing.assert_allclose(distance[0, 0], [1, 2 / 3, 1 / 3, 0.5, 1, 0.5, 0, 1], rtol=1e-6)


@pytest.mark.parametrize("spacing", [None, (3.0, 1.0, 0.5)])
def test_distance_3d_matches_per_object_scipy_reference(spacing):
    rng = np.random.default_rng(0)
    labels, n = ndimage.label(ndimage.binary_opening(rng.random((12, 20, 20)) > 0.45))
    assert n > 5
    _, distance = distance_target(labels[None], spacing)
    expected = np.zeros(labels.shape, np.float64)
    for k, box in enumerate(ndimage.find_objects(labels), start=1):
        grown = tuple(slice(max(0, s.start - 1), s.stop + 1) for s in box)
        mask = labels[grown] == k
        # distance to the nearest voxel outside the object; the array edge does not count
        dt = ndimage.distance_transform_edt(mask, sampling=spacing)  # anisotropic: physical units
        expected[grown][mask] = dt[mask] / dt[mask].max()
    np.testing.assert_allclose(distance[0], expected, atol=1e-5)
    assert distance.max() == pytest.approx(1.0) and distance.min() == 0.0


def test_empty_patch_and_bad_input():
    foreground, distance = distance_target(np.zeros((1, 4, 4), np.uint16))
    assert not foreground.any() and not distance.any()
    with pytest.raises(ShapeError, match=r"\(1, Y, X\) or \(1, Z, Y, X\)"):
        boundary_target(np.zeros((4, 4), np.uint8))
    with pytest.raises(LabelError, match=r"integer ids, got dtype float32"):
        distance_target(np.zeros((1, 4, 4), np.float32))
    with pytest.raises(LabelError, match=r">= 0"):
        boundary_target(-np.ones((1, 2, 2), np.int32))
