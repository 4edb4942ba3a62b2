"""Random patch sampling with foreground / class balancing, on in-memory or lazy arrays.

:class:`PatchSampler` draws ``patch_shape`` crops from an image and its label map.
With probability ``foreground_probability`` a patch must contain a class drawn
uniformly from ``classes`` (nnU-Net-style oversampling); otherwise any position is
accepted. Arrays may be numpy arrays or lazy on-disk arrays (``h5py.Dataset``,
``zarr.Array``, :class:`medseg.io.LazyArray`): only the patch is read. Candidate
positions are rejected until the constraint holds, and after
``max_sampling_attempts`` failures the sampler raises (as torch-em's
``max_sampling_attempts``), so a class missing from a volume is an error, not a hang.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from medseg.borders import reflect_index
from medseg.errors import ConfigError, LabelError, ShapeError

__all__ = ["Patch", "PatchSampler"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Patch:
    """One sampled patch.

    Attributes
    ----------
    image : np.ndarray
        ``(C, *patch_shape)``.
    label : np.ndarray or None
        ``(1, *patch_shape)``.
    start : tuple of int
        Spatial index of the patch's first voxel in the source arrays.
    """

    image: np.ndarray
    label: np.ndarray | None
    start: tuple[int, ...]

    @property
    def slices(self) -> tuple[slice, ...]:
        """Spatial slices of the patch in the source arrays."""
        return tuple(slice(s, s + n) for s, n in zip(self.start, self.image.shape[1:], strict=True))


def _spatial_shape(array: Any, nd: int, name: str) -> tuple[tuple[int, ...], bool]:
    """Spatial shape and whether the array has a leading channel axis."""
    shape = tuple(int(n) for n in array.shape)
    if len(shape) == nd:
        return shape, False
    if len(shape) == nd + 1:
        return shape[1:], True
    raise ShapeError(
        f"{name} has shape {shape}, expected {nd} spatial axes with an optional leading channel axis "
        f"(patch_shape has {nd} axes)"
    )


class PatchSampler:
    """Seeded random patches from one image/label pair, optionally class-balanced.

    Parameters
    ----------
    image : array-like
        ``(C, *spatial)`` or ``(*spatial)`` (treated as one channel); numpy or lazy.
    label : array-like or None
        ``(1, *spatial)`` or ``(*spatial)`` integer map on the image's grid.
    patch_shape : sequence of int
        Spatial patch size, 2 or 3 values (axis order ``(Z,) Y, X``).
    classes : sequence of int, optional
        Label values to balance over; default ``(1,)`` (foreground of a binary map).
        For an instance map use ``min_foreground`` with ``classes=None``: any
        non-zero value then counts as foreground.
    foreground_probability : float
        Probability that a patch is constrained to contain a class, in ``[0, 1]``.
    min_foreground : float
        Fraction of the patch the chosen class must cover (``0`` = at least one voxel).
    max_sampling_attempts : int
        Rejected positions allowed per patch before :class:`LabelError` is raised.
    seed : int
        Seed; the same seed gives the same patches.
    border : float
        How far a patch may reach past the image's faces, as a fraction of the patch along
        each axis, in ``[0, 0.5]``; the part outside is mirrored, as sliding-window inference
        pads. ``0`` keeps patches inside the image, so voxels at a face are only ever seen at
        a patch edge; ``0.5`` lets patch centres fall anywhere in the image (nnU-Net's sampling).

    On an axis where the patch is larger than the image, the patch holds the whole axis
    at a random offset and the rest is mirrored (the U-Net overlap-tile extrapolation),
    so a valid-convolution model's large input tile trains on small images.

    Raises
    ------
    ShapeError
        Image and label grids differ.
    ConfigError
        Invalid probability, fraction or attempt count.
    """

    def __init__(
        self,
        image: Any,
        label: Any = None,
        *,
        patch_shape: Sequence[int],
        classes: Sequence[int] | None = (1,),
        foreground_probability: float = 0.33,
        min_foreground: float = 0.0,
        max_sampling_attempts: int = 500,
        seed: int = 0,
        border: float = 0.0,
    ) -> None:
        patch_shape = tuple(int(p) for p in patch_shape)
        nd = len(patch_shape)
        if nd not in (2, 3) or min(patch_shape) < 1:
            raise ConfigError(f"patch_shape must have 2 or 3 positive sizes, got {patch_shape}")
        if not 0.0 <= foreground_probability <= 1.0:
            raise ConfigError(f"foreground_probability must be in [0, 1], got {foreground_probability}")
        if not 0.0 <= min_foreground <= 1.0:
            raise ConfigError(f"min_foreground must be in [0, 1], got {min_foreground}")
        if not 0.0 <= border <= 0.5:
            raise ConfigError(f"data.patch_border must be in [0, 0.5], got {border}")
        if max_sampling_attempts < 1:
            raise ConfigError(f"max_sampling_attempts must be >= 1, got {max_sampling_attempts}")
        spatial, self._image_has_channel = _spatial_shape(image, nd, "image")
        if label is not None:
            label_spatial, self._label_has_channel = _spatial_shape(label, nd, "label")
            if label_spatial != spatial:
                raise ShapeError(
                    f"label spatial shape {label_spatial} differs from image spatial shape {spatial}"
                )
            if self._label_has_channel and int(label.shape[0]) != 1:
                raise ShapeError(f"label must have one channel, got shape {tuple(label.shape)}")
        self.image = image
        self.label = label
        self.patch_shape = patch_shape
        self.spatial_shape = spatial
        self.classes = None if classes is None else tuple(int(c) for c in classes)
        self.foreground_probability = float(foreground_probability) if label is not None else 0.0
        self.min_foreground = float(min_foreground)
        self.max_sampling_attempts = int(max_sampling_attempts)
        self.border = tuple(round(float(border) * p) for p in patch_shape)
        self.rng = np.random.default_rng(seed)

    def _read(self, array: Any, has_channel: bool, start: tuple[int, ...]) -> np.ndarray:
        """The patch at ``start``; where it extends past the image, mirrored (overlap-tile) content.

        Each axis follows :func:`medseg.borders.reflect_index`, the rule inference's windows
        use, so training and inference see the same borders (an axis of length 1 repeats its
        voxel while the others still reflect).
        """
        index = [
            reflect_index(np.arange(b, b + p), s)
            for b, p, s in zip(start, self.patch_shape, self.spatial_shape, strict=True)
        ]
        box: tuple[slice, ...] = tuple(slice(int(i.min()), int(i.max()) + 1) for i in index)
        block = np.asarray(array[(slice(None), *box) if has_channel else box])
        block = block if has_channel else block[None]
        if any(
            b < 0 or b + p > s for b, p, s in zip(start, self.patch_shape, self.spatial_shape, strict=True)
        ):
            block = block[(slice(None), *np.ix_(*(i - b.start for i, b in zip(index, box, strict=True))))]
        return block

    def _random_start(self, rng: np.random.Generator) -> tuple[int, ...]:
        """A patch inside the image (up to ``border`` past its faces), or, on an axis where the patch is larger, one holding the whole axis."""
        return tuple(
            int(rng.integers(-b, s - p + b + 1)) if p <= s else int(rng.integers(s - p, 1))
            for s, p, b in zip(self.spatial_shape, self.patch_shape, self.border, strict=False)
        )

    def _accept(self, label: np.ndarray, target: int | None) -> bool:
        hits = (label != 0) if target is None else (label == target)
        count = int(np.count_nonzero(hits))
        return count > 0 and count >= self.min_foreground * label.size

    def sample(self, rng: np.random.Generator | None = None) -> Patch:
        """Draw one patch.

        Parameters
        ----------
        rng : numpy.random.Generator, optional
            Generator to draw from instead of the sampler's own: a data set that seeds
            one generator per sample index gets patches that depend on the index only.

        Raises
        ------
        LabelError
            No position satisfying the class constraint was found in
            ``max_sampling_attempts`` tries (the class is absent or too rare).
        """
        rng = self.rng if rng is None else rng
        constrained = self.label is not None and rng.random() < self.foreground_probability
        if not constrained:
            start = self._random_start(rng)
            label = None if self.label is None else self._read(self.label, self._label_has_channel, start)
            return Patch(self._read(self.image, self._image_has_channel, start), label, start)
        target = None if self.classes is None else int(rng.choice(self.classes))
        for _ in range(self.max_sampling_attempts):
            start = self._random_start(rng)
            label = self._read(self.label, self._label_has_channel, start)
            if self._accept(label, target):
                return Patch(self._read(self.image, self._image_has_channel, start), label, start)
        what = "foreground (any non-zero label)" if target is None else f"class {target}"
        raise LabelError(
            f"no {self.patch_shape} patch with {what} covering >= {self.min_foreground:.0%} found in "
            f"{self.max_sampling_attempts} attempts (label of spatial shape {self.spatial_shape}): the class is "
            "absent or too rare; drop it from classes, lower min_foreground or raise max_sampling_attempts"
        )

    def __iter__(self) -> Iterator[Patch]:
        while True:
            yield self.sample()

    def take(self, n: int) -> list[Patch]:
        """``n`` patches."""
        return [self.sample() for _ in range(n)]
