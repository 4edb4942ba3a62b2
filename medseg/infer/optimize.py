"""Inference-only rewrites of a model that keep its outputs (to float rounding) and share its weights.

The sliding-window engine runs the network on a prepared view of the model:

* **channels-last** memory format for the input (oneDNN and cuDNN then keep every
  activation in NHWC/NDHWC and skip a layout reorder per convolution; measured 1.1x in 2D
  and up to 2x in 3D for MONAI's ``BasicUNet`` on a 2-thread CPU);
* **instance normalisation in one pass**: ``torch.nn.InstanceNorm*d`` without running
  statistics reshapes ``(N, C, ...)`` to ``(1, N*C, ...)`` and calls batch norm, which copies
  a channels-last tensor back to NCHW twice; :class:`FastInstanceNorm` computes the same
  ``(x - mean) / sqrt(var + eps) * weight + bias`` with ``var_mean`` and one ``addcmul``;
* optionally ``torch.compile``.

The prepared model is a structural copy whose parameters and buffers *are* the original
tensors (not copies), so a model that is still training is always predicted with its
current weights.
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn

__all__ = ["FastInstanceNorm", "prepare_for_inference"]

logger = logging.getLogger(__name__)


class FastInstanceNorm(nn.Module):
    """Instance normalisation (per sample and channel over the spatial axes) in any memory format.

    Equivalent to ``nn.InstanceNorm{1,2,3}d(track_running_stats=False)`` (biased variance, as
    PyTorch), reusing that module's ``weight``/``bias``.
    """

    def __init__(self, norm: nn.modules.instancenorm._InstanceNorm) -> None:
        super().__init__()
        self.eps = norm.eps
        self.weight = norm.weight
        self.bias = norm.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(2, x.ndim))
        var, mean = torch.var_mean(x, dim=dims, keepdim=True, correction=0)
        scale = torch.rsqrt(var + self.eps)
        if self.weight is not None:
            shape = (1, -1) + (1,) * len(dims)
            scale = scale * self.weight.view(shape)
            shift = self.bias.view(shape) - mean * scale
        else:
            shift = -mean * scale
        return torch.addcmul(shift, x, scale)


def _fusable(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.instancenorm._InstanceNorm) and not module.track_running_stats


def _swap_instance_norms(module: nn.Module) -> int:
    swapped = 0
    for name, child in module.named_children():
        if _fusable(child):
            setattr(module, name, FastInstanceNorm(child))
            swapped += 1
        else:
            swapped += _swap_instance_norms(child)
    return swapped


def prepare_for_inference(model: nn.Module, *, fuse_norms: bool = True, compile: bool = False) -> nn.Module:
    """An eval-mode copy of ``model`` for prediction that shares its parameters and buffers.

    Parameters
    ----------
    model : nn.Module
        Any segmentation network; it is not modified.
    fuse_norms : bool
        Replace instance norms without running statistics by :class:`FastInstanceNorm`.
    compile : bool
        Wrap the result in ``torch.compile`` (slow first call: about a minute on a small CPU).

    Returns
    -------
    nn.Module
        The model to call under ``torch.inference_mode``: ``model`` itself (put in eval mode)
        when there is nothing to rewrite.
    """
    model.eval()
    fusable = fuse_norms and any(_fusable(m) for m in model.modules())
    prepared = model
    if fusable:
        shared = {id(t): t for t in (*model.parameters(), *model.buffers())}
        prepared = copy.deepcopy(model, memo=shared)
        swapped = _swap_instance_norms(prepared)
        logger.debug("replaced %d instance norm(s) by a one-pass implementation", swapped)
    return torch.compile(prepared) if compile else prepared
