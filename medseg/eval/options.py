"""Evaluation options with a fixed set of values, as StrEnums (parse once, compare members).

A member is its own string (``NsdMethod.MONAI == "monai"``), so JSON reports and
command lines keep the plain words.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["FormatKind", "NsdMethod"]


class FormatKind(StrEnum):
    """What the files of a challenge format hold."""

    #: A float probability map (ISBI 2012: 0 = membrane, 1 = non-membrane).
    PROBABILITY = "probability"
    #: One id per object, 0 = background.
    INSTANCES = "instances"
    #: One class id per pixel, 0 = background.
    CLASSES = "classes"


class NsdMethod(StrEnum):
    """How surface Dice weighs the surface (``medseg evaluate --nsd-method``)."""

    #: Area-weighted surface elements on the voxel-corner grid (Nikolov et al., DeepMind ``surface-distance``).
    DEEPMIND = "deepmind"
    #: One unit per boundary voxel (MONAI ``compute_surface_dice``, ``use_subvoxels=False``).
    MONAI = "monai"
