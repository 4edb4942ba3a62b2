"""Segmentation losses selectable by name, with an ignore label and the distance channel.

``build_loss`` returns a module called as ``loss(logits, target, *extras)``:

* ``ce``: cross entropy; ``dice``: soft Dice (MONAI); ``dice_ce``: their sum
  (nnU-Net's default); ``unet_weighted_ce``: pixel-weighted cross entropy with the
  U-Net border weight map (:mod:`medseg.data.weight_map`) as the last extra tensor.
* ``ignore_label``: voxels with this target value contribute nothing.
* ``distance=True`` (instance ``distance`` target): the logits carry one more
  channel, trained with MSE of its sigmoid against the distance map (the first extra).
* :class:`FlowLoss` (instance ``flow`` target, Cellpose, Stringer et al. 2021): channel 0
  is the cell-probability logit (binary cross entropy against the foreground), the
  others the flow components, trained with ``MSE(flows, 5 * target) / 2`` as Cellpose.

Each loss declares the extra tensors it needs: ``needs_weight_map`` is true when it
takes the border weight map as its last extra, so the data pipeline builds weight maps
because the loss asks for them (:func:`needs_weight_map`), not because of its name.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss, MaskedDiceLoss

from medseg.errors import ConfigError, ShapeError
from medseg.flows import FLOW_SCALE

__all__ = ["LOSSES", "FlowLoss", "WeightedCrossEntropy", "build_loss", "needs_weight_map"]

#: Names accepted by :func:`build_loss` (``train.loss``).
LOSSES = ("ce", "dice", "dice_ce", "unet_weighted_ce")


def _split(target: torch.Tensor, ignore_label: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(N, 1, *S)`` target with ignored voxels set to 0, and the ``(N, 1, *S)`` keep mask."""
    target = target.long()
    if ignore_label is None:
        return target, None
    keep = target != ignore_label
    return torch.where(keep, target, torch.zeros_like(target)), keep


class WeightedCrossEntropy(torch.nn.Module):
    """Pixel-wise weighted cross entropy, ``sum(w * CE) / sum(w)`` (U-Net paper eq. 1).

    ``forward(logits, target, weights)`` takes logits ``(N, K, *spatial)``, integer
    targets ``(N, 1, *spatial)`` or ``(N, *spatial)`` and weights of the target's shape.
    """

    #: Takes the border weight map as its last extra tensor.
    needs_weight_map = True

    def __init__(self, ignore_label: int | None = None) -> None:
        super().__init__()
        self.ignore_label = ignore_label

    def forward(self, logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        target = target if target.ndim == logits.ndim else target[:, None]
        weights = weights if weights.ndim == logits.ndim else weights[:, None]
        if target.shape != weights.shape or target.shape[2:] != logits.shape[2:]:
            raise ShapeError(
                f"logits {tuple(logits.shape)}, target {tuple(target.shape)} and weights "
                f"{tuple(weights.shape)} do not match"
            )
        target, keep = _split(target, self.ignore_label)
        if keep is not None:
            weights = weights * keep
        ce = F.cross_entropy(logits, target[:, 0], reduction="none")
        return (ce * weights[:, 0]).sum() / weights.sum().clamp_min(1e-8)


class _Segmentation(torch.nn.Module):
    """Cross entropy and/or soft Dice on ``(N, K, *S)`` logits, with an ignore label."""

    needs_weight_map = False

    def __init__(self, *, ce: bool, dice: bool, ignore_label: int | None) -> None:
        super().__init__()
        self.ce, self.ignore_label = ce, ignore_label
        self.dice = None
        if dice:
            dice_class = DiceLoss if ignore_label is None else MaskedDiceLoss
            self.dice = dice_class(to_onehot_y=True, softmax=True)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target if target.ndim == logits.ndim else target[:, None]
        target, keep = _split(target, self.ignore_label)
        value = logits.new_zeros(())
        if self.ce:
            ce = F.cross_entropy(logits, target[:, 0], reduction="none")
            value = value + (ce.mean() if keep is None else (ce * keep[:, 0]).sum() / keep.sum().clamp_min(1))
        if self.dice is not None:
            value = value + (self.dice(logits, target) if keep is None else self.dice(logits, target, keep))
        return value


class _WithDistance(torch.nn.Module):
    """``base(logits[:, :-1], target, *rest) + MSE(sigmoid(logits[:, -1]), distance)`` on kept voxels."""

    def __init__(self, base: torch.nn.Module, ignore_label: int | None) -> None:
        super().__init__()
        self.base, self.ignore_label = base, ignore_label
        self.needs_weight_map = needs_weight_map(base)

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, distance: torch.Tensor, *rest: torch.Tensor
    ) -> torch.Tensor:
        predicted = torch.sigmoid(logits[:, -1:])
        distance = distance if distance.ndim == logits.ndim else distance[:, None]
        squared = (predicted - distance.to(predicted.dtype)) ** 2
        _, keep = _split(target if target.ndim == logits.ndim else target[:, None], self.ignore_label)
        mse = squared.mean() if keep is None else (squared * keep).sum() / keep.sum().clamp_min(1)
        return self.base(logits[:, :-1], target, *rest) + mse


class FlowLoss(torch.nn.Module):
    """Cellpose's loss: ``MSE(logits[:, 1:], 5 * flows) / 2 + BCEWithLogits(logits[:, 0], foreground)``.

    ``forward(logits, foreground, flows)``: logits ``(N, 1 + D, *S)``, the foreground
    ``(N, 1, *S)`` (0/1; the ignore label contributes nothing) and unit flows ``(N, D, *S)``.
    """

    needs_weight_map = False

    def __init__(self, ignore_label: int | None = None) -> None:
        super().__init__()
        self.ignore_label = ignore_label

    def forward(self, logits: torch.Tensor, target: torch.Tensor, flows: torch.Tensor) -> torch.Tensor:
        target = target if target.ndim == logits.ndim else target[:, None]
        if flows.shape[1] != logits.shape[1] - 1 or flows.shape[2:] != logits.shape[2:]:
            raise ShapeError(
                f"flow logits {tuple(logits.shape)} need 1 + {flows.shape[1]} channels for flows "
                f"{tuple(flows.shape)}: set model.params.out_channels to 1 + the spatial dimensions"
            )
        target, keep = _split(target, self.ignore_label)
        squared = (logits[:, 1:] - FLOW_SCALE * flows.to(logits.dtype)) ** 2
        bce = F.binary_cross_entropy_with_logits(logits[:, :1], target.to(logits.dtype), reduction="none")
        if keep is None:
            return squared.mean() / 2 + bce.mean()
        kept = keep.sum().clamp_min(1)
        return (squared * keep).sum() / (kept * flows.shape[1]) / 2 + (bce * keep).sum() / kept


def build_loss(
    name: str, *, ignore_label: int | None = None, distance: bool = False, flows: bool = False
) -> torch.nn.Module:
    """Loss by name (``train.loss``): one of :data:`LOSSES`.

    Parameters
    ----------
    name : str
        ``ce``, ``dice``, ``dice_ce`` or ``unet_weighted_ce``.
    ignore_label : int or None
        Target value that contributes nothing (``train.ignore_label``).
    distance : bool
        Add the MSE term of the instance distance channel (the last logit channel).
    flows : bool
        The instance ``flow`` target: :class:`FlowLoss` (Cellpose's loss), whatever ``name``.

    Raises
    ------
    ConfigError
        Unknown name; the message lists the valid ones.
    """
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)} (train.loss)")
    if flows:
        if name == "unet_weighted_ce":
            raise ConfigError(
                "train.loss: unet_weighted_ce does not apply to data.instance_target: flow (trained with "
                "Cellpose's flow loss); use train.loss: dice_ce"
            )
        return FlowLoss(ignore_label)
    if name == "unet_weighted_ce":
        loss: torch.nn.Module = WeightedCrossEntropy(ignore_label)
    else:
        loss = _Segmentation(
            ce=name in ("ce", "dice_ce"), dice=name in ("dice", "dice_ce"), ignore_label=ignore_label
        )
    return _WithDistance(loss, ignore_label) if distance else loss


def needs_weight_map(loss: torch.nn.Module) -> bool:
    """Whether ``loss`` takes the U-Net border weight map as its last extra tensor.

    Examples
    --------
    >>> needs_weight_map(build_loss("unet_weighted_ce")), needs_weight_map(build_loss("dice_ce"))
    (True, False)
    """
    return bool(getattr(loss, "needs_weight_map", False))
