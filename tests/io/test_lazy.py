from __future__ import annotations

import numpy as np
import pytest

from medseg.io import LazyArray

NATIVE = np.arange(4 * 5 * 6).reshape(6, 5, 4)  # e.g. nibabel (i, j, k) ... here (X, Y, Z)-like


def reversed_with_channel() -> LazyArray:
    """Native (i, j, k) shown as (1, k, j, i), like a 3D NIfTI."""
    return LazyArray(NATIVE, [None, 2, 1, 0], spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0),
                     direction=np.eye(3), path="mem")  # fmt: skip


EXPECTED = NATIVE.transpose(2, 1, 0)[None]


@pytest.mark.parametrize(
    "key",
    [
        (...),
        0,
        (0, 1),
        (0, slice(1, 3)),
        (slice(None), 2, slice(None, None, 2)),
        (0, slice(None, None, -1), 3),
        (..., -1),
        (0, ..., slice(-3, None)),
        (slice(0, 0),),
        (-1, 2, 3, 4),
        (0, slice(3, 1, -1), slice(4, None, -2), slice(1, 5, 3)),
    ],
)
def test_indexing_matches_numpy(key):
    lazy = reversed_with_channel()
    np.testing.assert_array_equal(lazy[key], EXPECTED[key])


def test_shape_and_properties():
    lazy = reversed_with_channel()
    assert lazy.shape == (1, 4, 5, 6)
    assert lazy.ndim == 3 and lazy.spatial_shape == (4, 5, 6) and lazy.num_channels == 1
    assert lazy.nbytes == EXPECTED.nbytes and len(lazy) == 1
    np.testing.assert_array_equal(np.asarray(lazy), EXPECTED)
    np.testing.assert_array_equal(lazy.read(), EXPECTED)


def test_channel_last_native_is_moved_first():
    native = np.arange(2 * 3 * 4 * 3).reshape(2, 3, 4, 3)  # (Z, Y, X, RGB)
    lazy = LazyArray(native, [3, 0, 1, 2], spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0),
                     direction=np.eye(3), path="mem")  # fmt: skip
    np.testing.assert_array_equal(lazy[1, :, 1:], np.moveaxis(native, -1, 0)[1, :, 1:])


def test_singleton_native_axes_are_dropped():
    native = np.arange(12).reshape(1, 3, 1, 4)
    lazy = LazyArray(
        native, [None, 1, 3], spacing=(1.0, 1.0), origin=(0.0, 0.0), direction=np.eye(2), path="m"
    )
    assert lazy.shape == (1, 3, 4)
    np.testing.assert_array_equal(lazy[0, 1], native[0, 1, 0])


@pytest.mark.parametrize(
    ("key", "error", "message"),
    [
        ((0, 0, 0, 0, 0), IndexError, "too many indices"),
        ((0, 9), IndexError, "out of bounds for axis 1 with size 4"),
        (([0, 1],), TypeError, "integers, slices and '...' only"),
        ((..., ...), IndexError, "single ellipsis"),
    ],
)
def test_bad_keys(key, error, message):
    with pytest.raises(error, match=message):
        reversed_with_channel()[key]
