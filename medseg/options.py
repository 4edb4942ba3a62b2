"""Options with a fixed set of values, defined once and used everywhere as Enums.

Each option is a :class:`~enum.StrEnum` (MONAI's ``BlendMode`` style): pipeline configs
use them as pydantic field types, the CLI offers their values as choices, checkpoints
store their ``value``, and code compares members (``precision is Precision.FLOAT16``),
never strings. :meth:`Option.parse` turns a user's string into a member with an error
that names the option, lists the choices and suggests the closest one.

This module imports nothing from medseg but :mod:`medseg.errors`, so every layer
(``data``, ``models``, ``train``, ``infer``, ``config``) may use it.
"""

from __future__ import annotations

import difflib
from enum import StrEnum
from typing import Any, Self

from medseg.errors import ConfigError

__all__ = ["InstanceTarget", "LabelKind", "Option", "Precision"]


class Option(StrEnum):
    """Base of medseg's string options: parsing with a "did you mean" error."""

    @classmethod
    def choices(cls) -> list[str]:
        """The accepted values, in definition order."""
        return [m.value for m in cls]

    @classmethod
    def parse(cls, value: Self | str, *, option: str | None = None) -> Self:
        """The member for ``value`` (a member or its string value).

        Parameters
        ----------
        value : str
            What the user gave.
        option : str, optional
            The option's name for the error message (``train.precision``, ``--precision``).

        Raises
        ------
        ConfigError
            ``value`` is not one of :meth:`choices`; the message lists them and the closest one.

        Examples
        --------
        >>> Precision.parse("bfloat16")
        <Precision.BFLOAT16: 'bfloat16'>
        """
        try:
            return cls(value)
        except ValueError:
            choices = cls.choices()
            close = difflib.get_close_matches(str(value), choices, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            name = option or cls.__name__
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}{hint}") from None


class Precision(Option):
    """Floating-point precision of a forward pass (training autocast, inference windows).

    Weights, optimiser state, losses and blended outputs stay float32; ``float16`` needs
    gradient scaling in training, ``bfloat16`` has float32's range and needs none.
    """

    FLOAT32 = "float32"
    BFLOAT16 = "bfloat16"
    FLOAT16 = "float16"

    def torch_dtype(self) -> Any:
        """The ``torch.dtype`` of the forward pass (``torch.float32``, ``torch.bfloat16``, ``torch.float16``)."""
        import torch

        return getattr(torch, self.value)

    @property
    def is_mixed(self) -> bool:
        """Whether the forward pass runs under autocast (anything but ``float32``)."""
        return self is not Precision.FLOAT32

    @property
    def needs_grad_scaling(self) -> bool:
        """Whether training must scale the loss against gradient underflow (``float16``)."""
        return self is Precision.FLOAT16


class LabelKind(Option):
    """What label files hold: class ids (``classes``) or one id per object (``instances``)."""

    CLASSES = "classes"
    INSTANCES = "instances"


class InstanceTarget(Option):
    """How an instance label map is trained and turned back into objects.

    ``boundary``: three classes (background, inside, boundary), objects by a seeded
    watershed of the inside probability. ``distance``: two classes plus a normalised
    distance channel (the last output channel), objects by a watershed of the distance.
    ``both``: the three classes plus the distance channel (the last of four), objects by
    a watershed seeded from the distance along the boundary probability.
    ``flow``: Cellpose's representation (Stringer et al. 2021, Nature Methods): one
    cell-probability logit plus one flow component per spatial axis (``1 + ndim`` output
    channels, :meth:`model_channels`), objects by following the flows to their centres.
    """

    BOUNDARY = "boundary"
    DISTANCE = "distance"
    BOTH = "both"
    FLOW = "flow"

    @property
    def has_distance_channel(self) -> bool:
        """Whether the last output channel is a distance map, not a class."""
        return self in (InstanceTarget.DISTANCE, InstanceTarget.BOTH)

    @property
    def has_flows(self) -> bool:
        """Whether the model outputs a cell-probability logit and flow components (Cellpose)."""
        return self is InstanceTarget.FLOW

    @property
    def has_boundary_class(self) -> bool:
        """Whether the classes are background, inside and boundary (else background, foreground)."""
        return self in (InstanceTarget.BOUNDARY, InstanceTarget.BOTH)

    @property
    def num_classes(self) -> int:
        """Class channels of the target (the distance channel not counted)."""
        return 3 if self.has_boundary_class else 2

    @property
    def out_channels(self) -> int:
        """Output channels a model trained on this target has (classes plus the distance channel).

        ``flow`` depends on the model's spatial dimensions: use :meth:`model_channels`.
        """
        if self.has_flows:
            raise ConfigError(
                "the flow target's output channels depend on the spatial dimensions: model_channels(dims)"
            )
        return self.num_classes + int(self.has_distance_channel)

    def model_channels(self, spatial_dims: int) -> int:
        """Output channels of a ``spatial_dims``-D model trained on this target (``flow``: ``1 + spatial_dims``)."""
        return 1 + int(spatial_dims) if self.has_flows else self.out_channels

    def maps(self, spatial_dims: int) -> int:
        """Maps post-processing takes: the class probabilities (foreground only for ``distance`` and
        ``flow``), then the distance or the ``spatial_dims`` flow components."""
        if self.has_flows:
            return 1 + int(spatial_dims)
        return 2 if self is InstanceTarget.DISTANCE else self.out_channels

    @property
    def foreground(self) -> list[int]:
        """Class ids scored as foreground in validation."""
        return [1, 2] if self.has_boundary_class else [1]
