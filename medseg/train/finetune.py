"""Fine-tuning: start from a trained checkpoint whose classes or channels may differ.

:func:`initialize_from` loads every tensor whose name and shape match; a tensor whose
only differences are class axes (the head, FCN score layers) gets the rows of the
classes that map onto the checkpoint's (by name, or through ``train.label_map``),
and the rest keep their fresh initialisation (the first convolution when the number
of channels changes, the rows of new classes). :func:`parameter_groups` gives the
loaded tensors a lower learning rate, :func:`freeze_encoder_stages` stops the
gradients of the first encoder stages.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from medseg.errors import ConfigError

__all__ = ["InitReport", "class_index_map", "freeze_encoder_stages", "initialize_from", "parameter_groups"]

logger = logging.getLogger(__name__)

#: Parameter names of encoder stages: UNet ``encoder.i``, sDAE ``encoders.i``, FCN ``stages.i``.
_STAGE = re.compile(r"^(?:module\.)?(?:encoder|encoders|stages)\.(\d+)\.")


@dataclass
class InitReport:
    """Which tensors a fine-tuning run took from the checkpoint."""

    loaded: list[str] = field(default_factory=list)
    remapped: list[str] = field(default_factory=list)
    initialized: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"loaded": self.loaded, "remapped": self.remapped, "initialized": self.initialized}


def class_index_map(
    classes: Sequence[str], checkpoint_classes: Sequence[str], label_map: Mapping[str, str] | None = None
) -> dict[int, int]:
    """``{class id here: class id in the checkpoint}`` for classes that correspond.

    Classes map by ``label_map`` (this config's name -> the checkpoint's name), else by
    identical names.

    Raises
    ------
    ConfigError
        ``label_map`` names a class that does not exist on either side.
    """
    label_map = dict(label_map or {})
    unknown = [k for k in label_map if k not in classes]
    missing = [v for v in label_map.values() if v not in checkpoint_classes]
    if unknown or missing:
        raise ConfigError(
            f"train.label_map maps {unknown or missing} which are not among "
            f"{'data.classes ' + str(list(classes)) if unknown else 'the checkpoint classes ' + str(list(checkpoint_classes))}"
        )
    out = {}
    for i, name in enumerate(classes):
        target = label_map.get(name, name)
        if target in checkpoint_classes:
            out[i] = list(checkpoint_classes).index(target)
    return out


def _class_axes(old: torch.Size, new: torch.Size, n_old: int, n_new: int) -> list[int] | None:
    """Axes where only the number of classes differs (``None`` when other axes differ too)."""
    if len(old) != len(new) or n_old == n_new:
        return None
    axes = [d for d, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
    if all(old[d] == n_old and new[d] == n_new for d in axes):
        return axes
    return None


def _remap(old: torch.Tensor, new: torch.Tensor, axes: list[int], mapping: dict[int, int]) -> torch.Tensor:
    out = new.detach().clone()
    pairs = sorted(mapping.items())
    if not pairs:
        return out
    new_idx = torch.tensor([n for n, _ in pairs])
    old_idx = torch.tensor([o for _, o in pairs])
    selected = old.to(out.dtype)
    target_index: list[Any] = [slice(None)] * out.ndim
    for k, axis in enumerate(axes):
        selected = selected.index_select(axis, old_idx)
        shape = [1] * len(axes)
        shape[k] = len(pairs)
        target_index[axis] = new_idx.view(shape)  # broadcasts over the class axes together
    out[tuple(target_index)] = selected.to(out.device)
    return out


def initialize_from(
    model: torch.nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    class_map: dict[int, int],
    num_classes: int,
    checkpoint_num_classes: int,
) -> InitReport:
    """Load matching tensors of ``state_dict`` into ``model`` in place; report what was taken.

    Parameters
    ----------
    class_map : dict
        From :func:`class_index_map`.
    num_classes, checkpoint_num_classes : int
        Output classes of this model and of the checkpoint's.
    """
    report = InitReport()
    own = model.state_dict()
    updated = {}
    for name, tensor in own.items():
        old = state_dict.get(name)
        if old is None:
            report.initialized[name] = "not in the checkpoint"
        elif old.shape == tensor.shape:
            updated[name] = old
            report.loaded.append(name)
        elif (axes := _class_axes(old.shape, tensor.shape, checkpoint_num_classes, num_classes)) is not None:
            updated[name] = _remap(old, tensor, axes, class_map)
            report.remapped.append(name)
        else:
            report.initialized[name] = (
                f"shape {tuple(old.shape)} in the checkpoint, {tuple(tensor.shape)} here"
            )
    model.load_state_dict({**own, **updated})
    logger.info(
        "initialised from checkpoint: %d tensors loaded, %d remapped by class, %d freshly initialised%s",
        len(report.loaded),
        len(report.remapped),
        len(report.initialized),
        f" ({', '.join(list(report.initialized)[:4])}...)" if report.initialized else "",
    )
    return report


def freeze_encoder_stages(model: torch.nn.Module, stages: int) -> list[str]:
    """Stop gradients of the parameters in encoder stages ``0 .. stages - 1``; return their names.

    Raises
    ------
    ConfigError
        ``stages > 0`` but the model has no recognisable encoder stages.
    """
    if stages <= 0:
        return []
    frozen = []
    for name, parameter in model.named_parameters():
        match = _STAGE.match(name)
        if match and int(match.group(1)) < stages:
            parameter.requires_grad_(False)
            frozen.append(name)
    if not frozen:
        raise ConfigError(
            f"train.freeze_encoder_stages: {stages}, but {type(model).__name__} has no encoder stages "
            "(encoder.N / encoders.N / stages.N parameters); set it to 0"
        )
    return frozen


def parameter_groups(
    model: torch.nn.Module, pretrained: Sequence[str], *, learning_rate: float, pretrained_factor: float
) -> list[dict[str, Any]]:
    """Optimiser groups: trainable pre-trained tensors at ``learning_rate * pretrained_factor``, the rest at ``learning_rate``."""
    pretrained_set = set(pretrained)
    old: list[torch.nn.Parameter] = []
    new: list[torch.nn.Parameter] = []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (old if name in pretrained_set else new).append(parameter)
    groups = [{"params": new, "lr": learning_rate}]
    if old:
        groups.append({"params": old, "lr": learning_rate * pretrained_factor})
    return [g for g in groups if g["params"]]
