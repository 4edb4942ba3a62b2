"""Fixtures for tests/io: tiny volumes with non-trivial geometry, all under tmp_path."""

from __future__ import annotations

import numpy as np
import pytest

from medseg.io import Volume

ANISO_SPACING = (3.0, 0.5, 0.7)


def rotation(ndim: int, angle: float = 0.3) -> np.ndarray:
    """A proper rotation (non-identity direction) in ``ndim`` dimensions."""
    c, s = np.cos(angle), np.sin(angle)
    if ndim == 2:
        return np.array([[c, -s], [s, c]])
    rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(0.2), -np.sin(0.2)], [0.0, np.sin(0.2), np.cos(0.2)]])
    return rz @ rx


def blobs(shape: tuple[int, ...], dtype: np.dtype | type = np.uint8, seed: int = 0) -> np.ndarray:
    """Deterministic random data of ``shape`` and ``dtype``."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) > 0.5
    if np.issubdtype(dtype, np.floating):
        return rng.normal(size=shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -1000), min(info.max, 60000), size=shape, endpoint=True).astype(dtype)


def make_volume(
    shape: tuple[int, ...] = (1, 4, 6, 5),
    dtype: np.dtype | type = np.uint8,
    *,
    oblique: bool = True,
    seed: int = 0,
) -> Volume:
    """A tiny ``(C, [Z,] Y, X)`` volume with anisotropic spacing, an origin and (optionally) a rotation."""
    nd = len(shape) - 1
    return Volume(
        blobs(shape, dtype, seed),
        spacing=ANISO_SPACING[-nd:],
        origin=(-12.5, 3.25, 100.125)[-nd:],
        direction=rotation(nd) if oblique else np.eye(nd),
    )


def assert_same_volume(actual: Volume, expected: Volume, *, atol: float = 0.0) -> None:
    """Array equality (values and dtype) and geometry equality (exact unless ``atol``)."""
    assert actual.array.dtype == expected.array.dtype
    assert actual.array.shape == expected.array.shape
    np.testing.assert_array_equal(actual.array, expected.array)
    if atol == 0.0:
        assert actual.spacing == expected.spacing
        assert actual.origin == expected.origin
        np.testing.assert_array_equal(actual.direction, expected.direction)
    else:
        np.testing.assert_allclose(actual.spacing, expected.spacing, rtol=0, atol=atol)
        np.testing.assert_allclose(actual.origin, expected.origin, rtol=0, atol=atol)
        np.testing.assert_allclose(actual.direction, expected.direction, rtol=0, atol=atol)


@pytest.fixture
def volume3d() -> Volume:
    """``(1, 4, 6, 5)`` uint8 with spacing (3.0, 0.5, 0.7), an origin and an oblique direction."""
    return make_volume()


@pytest.fixture
def volume2d() -> Volume:
    """``(1, 6, 5)`` uint8 with spacing (0.5, 0.7), an origin and a rotated direction."""
    return make_volume((1, 6, 5))


def listing(folder) -> list[str]:
    """Names in ``folder`` (hidden temp folders included), sorted."""
    return sorted(p.name for p in folder.iterdir())
