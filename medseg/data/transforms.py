"""Training augmentation built from MONAI dictionary transforms.

:func:`build_augmentation` returns a ``monai.transforms.Compose`` acting on
``{"image": (C, *spatial), "label": (1, *spatial)}``. Spatial transforms are applied
with the same random parameters to both keys (bilinear for the image, nearest for
the label, so label values stay exactly the original class ids); intensity
transforms touch the image only.

The elastic deformation follows the U-Net paper (Ronneberger et al. 2015): random
displacements on a coarse 3 x 3 grid drawn from a Gaussian with a standard deviation
of 10 pixels, interpolated bicubically to a per-pixel field (MONAI's
``Rand2DElasticd``: normal control-point offsets times ``magnitude``, bicubic
up-sampling). In 3D, ``Rand3DElasticd`` (smoothed dense field) is used instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from monai.transforms import (
    Compose,
    Rand2DElasticd,
    Rand3DElasticd,
    RandAdjustContrastd,
    RandFlipd,
    RandGaussianNoised,
    RandRotate90d,
    RandScaleIntensityd,
    RandShiftIntensityd,
)

from medseg.errors import ConfigError

__all__ = ["build_augmentation", "augment", "unet_elastic_spacing"]


def unet_elastic_spacing(patch_shape: Sequence[int], grid_points: int = 3) -> tuple[float, ...]:
    """Control-point spacing giving ``grid_points`` interior points per axis in MONAI's elastic grid.

    With ``s = (d - 1) / (grid_points - 1)`` MONAI's centred control grid has, for an
    odd size ``d``, exactly ``grid_points`` points spanning the patch (centre and both
    edges for 3) plus one outside each edge; for an even size the grid is shifted by
    half a spacing (two points inside, one just outside each edge).
    """
    if grid_points < 2:
        raise ConfigError(f"grid_points must be >= 2, got {grid_points}")
    return tuple(max(1.0, (int(d) - 1) / (grid_points - 1)) for d in patch_shape)


def build_augmentation(
    patch_shape: Sequence[int],
    *,
    elastic_probability: float = 0.5,
    elastic_sigma: float = 10.0,
    flip_probability: float = 0.5,
    rotate90_probability: float = 0.5,
    intensity_probability: float = 0.3,
    keys: tuple[str, str] = ("image", "label"),
    seed: int = 0,
) -> Compose:
    """Augmentation pipeline for 2D or 3D patches.

    Parameters
    ----------
    patch_shape : sequence of int
        Spatial size ``(Y, X)`` or ``(Z, Y, X)`` of the patches it will see (sets
        the elastic control grid).
    elastic_probability : float
        Probability of the elastic deformation.
    elastic_sigma : float
        Standard deviation of the control-point displacements, in pixels (U-Net: 10).
    flip_probability : float
        Probability of a flip, per spatial axis.
    rotate90_probability : float
        Probability of a random multiple-of-90-degree rotation in the ``(Y, X)`` plane;
        only when that plane is square (a rotation would change a ``Y != X`` patch's
        shape), flips still apply to every axis.
    intensity_probability : float
        Probability of each intensity jitter (contrast/gamma, scale, shift, noise).
    keys : (str, str)
        Dictionary keys of the image and the label.
    seed : int
        Seed of every random transform.

    Returns
    -------
    monai.transforms.Compose
        Call it on ``{"image": ..., "label": ...}`` with ``(C, *spatial)`` arrays.
    """
    nd = len(patch_shape)
    if nd not in (2, 3):
        raise ConfigError(f"patch_shape must have 2 or 3 axes, got {tuple(patch_shape)}")
    for name, p in (
        ("elastic_probability", elastic_probability),
        ("flip_probability", flip_probability),
        ("rotate90_probability", rotate90_probability),
        ("intensity_probability", intensity_probability),
    ):
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"{name} must be in [0, 1], got {p}")
    image_key, label_key = keys
    both = [image_key, label_key]
    modes = ("bilinear", "nearest")
    transforms: list = []
    if elastic_probability > 0:
        if nd == 2:
            transforms.append(
                Rand2DElasticd(
                    keys=both,
                    spacing=unet_elastic_spacing(patch_shape),
                    magnitude_range=(elastic_sigma, elastic_sigma),
                    prob=elastic_probability,
                    mode=modes,
                    padding_mode="reflection",
                )
            )
        else:
            transforms.append(
                Rand3DElasticd(
                    keys=both,
                    sigma_range=(5.0, 8.0),
                    magnitude_range=(elastic_sigma, elastic_sigma * 2),
                    prob=elastic_probability,
                    mode=modes,
                    padding_mode="reflection",
                )
            )
    if flip_probability > 0:
        transforms += [RandFlipd(keys=both, prob=flip_probability, spatial_axis=a) for a in range(nd)]
    if rotate90_probability > 0 and patch_shape[-1] == patch_shape[-2]:
        transforms.append(
            RandRotate90d(keys=both, prob=rotate90_probability, max_k=3, spatial_axes=(nd - 2, nd - 1))
        )
    if intensity_probability > 0:
        transforms += [
            RandAdjustContrastd(keys=image_key, prob=intensity_probability, gamma=(0.7, 1.5)),
            RandScaleIntensityd(keys=image_key, prob=intensity_probability, factors=0.1),
            RandShiftIntensityd(keys=image_key, prob=intensity_probability, offsets=0.1),
            RandGaussianNoised(keys=image_key, prob=intensity_probability, std=0.02),
        ]
    compose = Compose(transforms)
    compose.set_random_state(seed=seed)
    return compose


def augment(compose: Compose, image: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``compose`` (built with the default keys) to one pair; return numpy arrays.

    The label is cast back to its integer dtype.

    Parameters
    ----------
    image : np.ndarray
        ``(C, *spatial)`` float image.
    label : np.ndarray
        ``(1, *spatial)`` integer label map.
    """
    out = compose({"image": np.asarray(image, dtype=np.float32), "label": np.asarray(label)})
    new_image = np.asarray(out["image"])
    new_label = np.asarray(out["label"])
    if np.issubdtype(np.asarray(label).dtype, np.integer):
        new_label = np.rint(new_label).astype(np.asarray(label).dtype)
    return new_image, new_label
