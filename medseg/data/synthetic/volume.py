"""Synthetic CT-like volumes with labelled organs, written as an nnU-Net v2 raw dataset.

A body (soft tissue ellipse cylinder) in air, with three organs as ellipsoids of
different densities: liver (1), right kidney (2), spleen (3). Spacing is
anisotropic (thick slices), as in clinical CT.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from medseg.errors import ConfigError
from medseg.io import Volume, write

__all__ = ["ORGAN_LABELS", "SyntheticVolume", "make_ct_volume", "write_nnunet_raw"]

#: Label values of the synthetic organs (nnU-Net ``labels`` of ``dataset.json``).
ORGAN_LABELS: dict[str, int] = {"background": 0, "liver": 1, "kidney": 2, "spleen": 3}
_HU = {"air": -1000.0, "body": 40.0, "liver": 110.0, "kidney": 160.0, "spleen": 80.0}


@dataclass(frozen=True)
class SyntheticVolume:
    """``image`` ``(Z, Y, X)`` float32 HU-like, ``label`` ``(Z, Y, X)`` uint8, ``spacing`` mm ``(Z, Y, X)``."""

    image: np.ndarray
    label: np.ndarray
    spacing: tuple[float, float, float]


def _ellipsoid(shape: tuple[int, int, int], spacing, center_mm, radii_mm) -> np.ndarray:
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    dist = sum(((g * s - c) / r) ** 2 for g, s, c, r in zip(grids, spacing, center_mm, radii_mm, strict=True))
    return dist <= 1.0


def make_ct_volume(
    shape: tuple[int, int, int] = (16, 48, 48),
    *,
    spacing: tuple[float, float, float] = (3.0, 0.8, 0.8),
    seed: int = 0,
) -> SyntheticVolume:
    """Generate one CT-like volume with liver, kidney and spleen.

    Parameters
    ----------
    shape : (int, int, int)
        ``(Z, Y, X)``.
    spacing : (float, float, float)
        Voxel size in mm, ``(Z, Y, X)``; thick slices by default.
    seed : int
        Same seed, same volume (organ positions and sizes jitter by ~10%).
    """
    if len(shape) != 3 or min(shape) < 8:
        raise ConfigError(f"shape must be (Z, Y, X) with sizes >= 8, got {shape}")
    rng = np.random.default_rng(seed)
    extent = np.array(shape) * np.array(spacing)
    jitter = lambda: rng.uniform(0.9, 1.1)  # noqa: E731
    center = extent / 2
    yy, xx = np.ogrid[: shape[1], : shape[2]]
    body2d = ((yy * spacing[1] - center[1]) / (0.42 * extent[1])) ** 2 + (
        (xx * spacing[2] - center[2]) / (0.46 * extent[2])
    ) ** 2 <= 1
    body = np.broadcast_to(body2d, shape)
    label = np.zeros(shape, dtype=np.uint8)
    organs = {
        "liver": ((0.5, 0.45, 0.33), (0.35, 0.2, 0.18)),
        "kidney": ((0.5, 0.62, 0.68), (0.25, 0.1, 0.07)),
        "spleen": ((0.5, 0.38, 0.7), (0.2, 0.08, 0.08)),
    }
    for name, (c_frac, r_frac) in organs.items():
        c = extent * np.array(c_frac) * np.array([1.0, jitter(), jitter()])
        r = extent * np.array(r_frac) * jitter()
        label[_ellipsoid(shape, spacing, c, r) & body] = ORGAN_LABELS[name]
    image = np.where(body, _HU["body"], _HU["air"]).astype(np.float64)
    for name in ("liver", "kidney", "spleen"):
        image[label == ORGAN_LABELS[name]] = _HU[name]
    image = ndimage.gaussian_filter(image, sigma=(0.3, 0.8, 0.8)) + rng.normal(0, 12, size=shape)
    return SyntheticVolume(image.astype(np.float32), label, tuple(float(s) for s in spacing))


def write_nnunet_raw(
    root: str | Path,
    *,
    n_train: int = 2,
    n_test: int = 1,
    shape: tuple[int, int, int] = (16, 48, 48),
    seed: int = 0,
    file_ending: str = ".nii.gz",
) -> Path:
    """Write an nnU-Net v2 raw dataset: ``dataset.json``, ``imagesTr/case_XXX_0000<ending>``, ``labelsTr``, ``imagesTs``.

    Test cases also get ``labelsTs`` (synthetic data has ground truth).

    Returns
    -------
    Path
        ``root`` (the dataset folder).
    """
    root = Path(root)
    cases = [("Tr", i) for i in range(n_train)] + [("Ts", n_train + i) for i in range(n_test)]
    for part, i in cases:
        vol = make_ct_volume(shape, seed=seed + i)
        case = f"case_{i:03d}"
        write(
            Volume(vol.image[None], spacing=vol.spacing), root / f"images{part}" / f"{case}_0000{file_ending}"
        )
        write(Volume(vol.label[None], spacing=vol.spacing), root / f"labels{part}" / f"{case}{file_ending}")
    dataset = {
        "channel_names": {"0": "CT"},
        "labels": ORGAN_LABELS,
        "numTraining": n_train,
        "file_ending": file_ending,
        "name": "medseg synthetic abdomen",
    }
    (root / "dataset.json").write_text(json.dumps(dataset, indent=2))
    return root
