"""A map-style training data set of augmented patches over in-memory or lazy arrays.

Patch ``i`` of :class:`PatchDataset` is a pure function of ``(seed, i)``: the case,
the patch position (class-balanced by :class:`~medseg.data.sampling.PatchSampler`)
and every augmentation parameter are drawn from a generator seeded with
``(seed, i)``. A trainer that asks for indices ``[k * batch, (k + 1) * batch)`` at
iteration ``k`` therefore sees the same batches whether it runs in one go or is
resumed, and whatever the number of ``DataLoader`` workers.

Images and labels are read through indexing only (a :class:`medseg.io.LazyArray`
reads just the patch from HDF5/Zarr/TIFF), so training a stack larger than memory
keeps memory bounded. Workers re-open lazy arrays after the fork
(:func:`worker_init`), as h5py handles must not be shared between processes.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from medseg.data.sample import Sample
from medseg.data.sampling import PatchSampler
from medseg.data.targets import boundary_target, distance_target, flow_target
from medseg.data.transforms import augment, build_augmentation
from medseg.data.weight_map import WeightMap
from medseg.errors import LabelError, ShapeError
from medseg.io.lazy import LazyArray
from medseg.options import InstanceTarget

__all__ = ["PatchDataset", "TrainingTargets", "worker_init"]

logger = logging.getLogger(__name__)

#: Voxels read at a time when scanning a lazy label map at start-up.
_SCAN_VOXELS = 1 << 22

LabelTransform = Callable[[np.ndarray], tuple[np.ndarray, ...]]


def _array(x: Any) -> Any:
    """The indexable array of a Volume (its ``array``) or a LazyArray (itself)."""
    return x if isinstance(x, LazyArray) else x.array


def _source(sample: Sample) -> str:
    if isinstance(sample.label, LazyArray):
        return sample.label.path
    return str((sample.label.meta or {}).get("source") or "in memory")


def _label_slabs(label: Any) -> Any:
    """Yield blocks of a ``(1, *spatial)`` label map, at most about ``_SCAN_VOXELS`` each."""
    shape = tuple(int(n) for n in label.shape)
    per_slab = max(1, int(np.prod(shape[2:])))
    step = max(1, _SCAN_VOXELS // per_slab)
    for start in range(0, shape[1], step):
        yield np.asarray(label[:, start : start + step])


def _contains_any(label: Any, values: Sequence[int] | None) -> bool:
    """Whether the label holds one of ``values`` (any non-zero when ``None``), reading slab by slab."""
    for block in _label_slabs(label):
        hit = np.any(block != 0) if values is None else np.any(np.isin(block, list(values)))
        if hit:
            return True
    return False


def _present(label: Any, classes: Sequence[int] | None) -> Sequence[int] | None:
    """The ``classes`` an in-memory label contains (a lazy label keeps all: it is not scanned)."""
    if classes is None or isinstance(label, LazyArray):
        return classes
    present = [c for c in classes if c in set(np.unique(label.array).tolist())]
    return present or classes


def _check_values(label: np.ndarray, num_classes: int, ignore_label: int | None, source: str) -> None:
    low, high = int(label.min(initial=0)), int(label.max(initial=0))
    if low >= 0 and high < num_classes:
        return
    outside = (label < 0) | (label >= num_classes)
    if ignore_label is not None:
        outside &= label != ignore_label
    if np.any(outside):
        bad = np.unique(label[outside])
        raise LabelError(
            f"label {source} holds values {bad[:10].tolist()} outside the {num_classes} classes of "
            f"data.classes (0..{num_classes - 1}): add class names to data.classes, set train.ignore_label "
            "for a value to ignore, or data.label_kind: instances for an instance label map"
        )


class TrainingTargets:
    """Picklable label transform: instance target and/or U-Net weight map from an augmented label.

    Parameters
    ----------
    instance_target : InstanceTarget or {'boundary', 'distance', 'both', 'flow'} or None
        For instance label maps, the target of :mod:`medseg.data.targets`: 3 classes
        (background, inside, boundary), foreground plus a distance map (returned as the
        first extra), or the 3 classes plus the distance map (``both``), or foreground plus the
        ``(ndim, *P)`` Cellpose flows (``flow``, the first extra, computed after augmentation).
        ``None``: the label is a class map and is the target.
    weight_map : WeightMap or None
        Adds the U-Net weight map (computed from the instances, before the target is
        made) as the last extra.
    spacing : tuple of float or None
        Voxel size of the labels: the distance target is measured in these units
        (anisotropic volumes); default isotropic.
    """

    def __init__(
        self,
        instance_target: InstanceTarget | str | None = None,
        weight_map: WeightMap | None = None,
        spacing: tuple[float, ...] | None = None,
    ) -> None:
        self.instance_target = (
            None
            if instance_target is None
            else InstanceTarget.parse(instance_target, option="data.instance_target")
        )
        self.weight_map = weight_map
        self.spacing = spacing

    def __call__(self, label: np.ndarray) -> tuple[np.ndarray, ...]:
        extras: list[np.ndarray] = []
        if self.instance_target is None:
            target = label
        else:
            if self.instance_target is InstanceTarget.BOUNDARY:
                target = boundary_target(label)
            elif self.instance_target is InstanceTarget.DISTANCE:
                target, distance = distance_target(label, self.spacing)
                extras.append(distance)
            elif self.instance_target is InstanceTarget.FLOW:
                target, flows = flow_target(label)
                extras.append(flows)
            else:  # both: the three classes plus the distance map
                target = boundary_target(label)
                extras.append(distance_target(label, self.spacing)[1])
        if self.weight_map is not None:
            extras.append(self.weight_map(label))
        return (target, *extras)


class PatchDataset(Dataset):
    """``dataset[i]``: the ``i``-th augmented, normalised training patch (``(seed, i)`` decides it).

    Parameters
    ----------
    samples : sequence of Sample
        Labelled cases; images ``(C, *spatial)`` and labels ``(1, *spatial)`` as
        :class:`~medseg.io.Volume` or :class:`~medseg.io.LazyArray`.
    patch_shape : sequence of int
        Spatial patch size ``(Y, X)`` or ``(Z, Y, X)``; ``(Y, X)`` patches of ``(C, Z, Y, X)``
        stacks are single sections (a 2D model trained on a volume read lazily).
    classes : sequence of int or None
        Label values the class-balanced sampling aims at (a third of the patches
        contain one); ``None``: any non-zero value (instance maps).
    num_classes : int or None
        Number of classes (``len(data.classes)``): a patch label outside ``0..n-1`` is a
        :class:`LabelError` naming the file. ``None`` skips the check (instance ids).
    ignore_label : int or None
        A label value allowed besides the classes (the loss ignores it).
    normalize : callable or None
        Applied to the ``(C, *patch)`` image before augmentation.
    augmentation : bool
        Elastic, flips, rotations in square planes, intensity jitter
        (:func:`~medseg.data.transforms.build_augmentation`).
    label_transform : callable or None
        Turns the augmented ``(1, *patch)`` label into ``(target, *extra)`` arrays (an
        instance target, a weight map); extras are returned after the target.
    foreground_probability : float
        Fraction of class-constrained patches.
    seed : int
        With the index, decides every patch.
    border : float
        How far a patch may reach past an image's faces (mirrored), as a fraction of the
        patch (:class:`medseg.data.sampling.PatchSampler`); ``data.patch_border``.

    Raises
    ------
    LabelError
        Unlabelled cases, or no label contains any of ``classes``.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        *,
        patch_shape: Sequence[int],
        classes: Sequence[int] | None = (1,),
        num_classes: int | None = None,
        ignore_label: int | None = None,
        normalize: Callable[[np.ndarray], np.ndarray] | None = None,
        augmentation: bool = True,
        label_transform: LabelTransform | None = None,
        foreground_probability: float = 0.33,
        seed: int = 0,
        border: float = 0.0,
    ) -> None:
        unlabelled = [s.case_id for s in samples if s.label is None]
        if unlabelled:
            raise LabelError(
                f"cannot train on unlabelled cases {unlabelled[:5]}; drop them or add their labels"
            )
        empty = [s for s in samples if not _contains_any(_array(s.label), classes)]
        if len(empty) == len(samples):
            where = ", ".join(f"{s.case_id} ({_source(s)})" for s in empty[:5])
            what = (
                "any foreground (non-zero) value"
                if classes is None
                else f"any of the classes {list(classes)}"
            )
            raise LabelError(
                f"no training label contains {what}: {where}; the label files are "
                "empty or use other values, check the dataset's label convention (data_manifests/)"
            )
        if empty:
            logger.warning(
                "%d of %d training labels contain none of the classes %s (e.g. %s); their patches are drawn "
                "uniformly",
                len(empty),
                len(samples),
                None if classes is None else list(classes),
                empty[0].case_id,
            )
        if num_classes is not None:
            for s in samples:  # a cheap look at every file now; every patch is checked when drawn
                _check_values(next(_label_slabs(_array(s.label))), num_classes, ignore_label, _source(s))
        empty_ids = {id(s) for s in empty}
        spatial_dims = len(_array(samples[0].image).shape) - 1
        self.patch_shape = tuple(int(p) for p in patch_shape)
        self._squeeze = spatial_dims - len(self.patch_shape)
        if self._squeeze not in (0, 1):
            raise ShapeError(
                f"data.patch_shape {list(self.patch_shape)} has {len(self.patch_shape)} axes, the images "
                f"{spatial_dims} spatial axes: give one size per axis (or 2 sizes for 2D patches of 3D stacks)"
            )
        self.samplers = [
            PatchSampler(
                _array(s.image),
                _array(s.label),
                patch_shape=(1,) * self._squeeze + self.patch_shape,
                classes=_present(s.label, classes),
                foreground_probability=0.0 if id(s) in empty_ids else foreground_probability,
                border=border,
            )
            for s in samples
        ]
        self.sources = [_source(s) for s in samples]
        self.num_classes = num_classes
        self.ignore_label = ignore_label
        self.normalize = normalize
        self.augmentation = augmentation
        self.label_transform = label_transform
        self.seed = int(seed) % (1 << 63)
        self._transform: Any = None

    def __len__(self) -> int:
        """Patches in one pass; indices beyond it are valid too (the stream is endless)."""
        return len(self.samplers)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        """``(image (C, *P) float32, target (1, *P) int64, *extras float32)`` for patch ``index``."""
        if index < 0:
            raise IndexError(f"patch index must be >= 0, got {index}")
        rng = np.random.default_rng([self.seed, int(index)])
        case = int(rng.integers(len(self.samplers)))
        patch = self.samplers[case].sample(rng)
        image, label = patch.image, patch.label
        if self._squeeze:  # a 2D patch of a 3D stack: drop the length-1 Z axis
            image, label = image[:, 0], label[:, 0]
        if self.num_classes is not None:
            _check_values(label, self.num_classes, self.ignore_label, self.sources[case])
        image = np.asarray(self.normalize(image) if self.normalize is not None else image, dtype=np.float32)
        if self.augmentation:
            if self._transform is None:
                self._transform = build_augmentation(self.patch_shape)
            self._transform.set_random_state(seed=int(rng.integers(1 << 31)))
            image, label = augment(self._transform, image, label)
        targets = self.label_transform(label) if self.label_transform is not None else (label,)
        out = [torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))]
        out.append(torch.from_numpy(np.ascontiguousarray(targets[0], dtype=np.int64)))
        out += [torch.from_numpy(np.ascontiguousarray(t, dtype=np.float32)) for t in targets[1:]]
        return tuple(out)

    def reopen(self) -> None:
        """Re-open every lazy array (in a fresh worker process: file handles are per process)."""
        for sampler in self.samplers:
            sampler.image = _reopened(sampler.image)
            sampler.label = _reopened(sampler.label)


def _reopened(array: Any) -> Any:
    """A fresh handle on a file-backed LazyArray (pickling re-opens it from its path)."""
    if isinstance(array, LazyArray) and not isinstance(array._source, np.ndarray):
        return pickle.loads(pickle.dumps(array))
    return array


def worker_init(worker_id: int) -> None:
    """``DataLoader(worker_init_fn=...)``: re-open the data set's lazy arrays in the worker."""
    info = get_worker_info()
    if info is not None and isinstance(info.dataset, PatchDataset):
        info.dataset.reopen()
