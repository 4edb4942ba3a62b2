"""Model registry: ``build_model(name, **params)``.

Names map to a constructor plus fixed arguments; parameters are checked against the
constructor's signature before anything is built, so a typo in a YAML config is a
:class:`~medseg.errors.ConfigError` naming the key, not a ``TypeError``.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from torch import nn

from medseg.errors import ConfigError
from medseg.models.fcn import FCN
from medseg.models.sdae import StackedDenoisingAutoencoder
from medseg.models.unet import UNet
from medseg.models.unet_paper import PaperUNet

__all__ = ["MODEL_REGISTRY", "ModelSpec", "build_model", "model_names", "model_params"]


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry.

    Parameters
    ----------
    factory : callable
        Model class.
    fixed : mapping
        Arguments the name pins (``variant='8s'`` for ``fcn8s``); not overridable.
    defaults : mapping
        Arguments the name presets; overridable.
    summary : str
        One line for ``medseg`` help texts.
    """

    factory: Callable[..., nn.Module]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""


MODEL_REGISTRY: Mapping[str, ModelSpec] = MappingProxyType(
    {
        "unet": ModelSpec(UNet, summary="U-Net, same padding, instance norm, 2D/3D (spatial_dims)"),
        "unet-paper": ModelSpec(PaperUNet, summary="U-Net of Ronneberger et al. 2015: valid convs, 572->388"),
        "unet3d": ModelSpec(
            PaperUNet,
            defaults={"spatial_dims": 3, "features": 32, "depth": 3, "norm": "batch", "variant": "cicek"},
            summary="3D U-Net of Çiçek et al. 2016: valid convs, batch norm, 132^3 -> 44^3",
        ),
        "fcn32s": ModelSpec(FCN, fixed={"variant": "32s"}, summary="FCN-32s (Long et al. 2015), VGG-16"),
        "fcn16s": ModelSpec(FCN, fixed={"variant": "16s"}, summary="FCN-16s (Long et al. 2015), VGG-16"),
        "fcn8s": ModelSpec(FCN, fixed={"variant": "8s"}, summary="FCN-8s (Long et al. 2015), VGG-16"),
        "sdae": ModelSpec(
            StackedDenoisingAutoencoder,
            summary="stacked denoising autoencoder patch classifier, dense form (Su et al. 2015)",
        ),
    }
)


def model_names() -> list[str]:
    """Registered model names, sorted."""
    return sorted(MODEL_REGISTRY)


def _spec(name: str) -> ModelSpec:
    if not isinstance(name, str) or name not in MODEL_REGISTRY:
        hint = ""
        if isinstance(name, str):
            close = difflib.get_close_matches(name.lower(), model_names(), n=1)
            if close:
                hint = f" Did you mean {close[0]!r}?"
        raise ConfigError(f"unknown model name {name!r}; valid names: {', '.join(model_names())}.{hint}")
    return MODEL_REGISTRY[name]


def model_params(name: str) -> dict[str, Any]:
    """Parameters ``build_model(name, ...)`` accepts, with their effective defaults."""
    spec = _spec(name)
    params = {
        p.name: p.default
        for p in inspect.signature(spec.factory).parameters.values()
        if p.name not in spec.fixed and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    params.update(spec.defaults)
    return params


def build_model(name: str, **params: Any) -> nn.Module:
    """Build a registered model.

    Parameters
    ----------
    name : str
        One of ``unet``, ``unet-paper``, ``unet3d``, ``fcn8s``, ``fcn16s``, ``fcn32s``,
        ``sdae``.
    **params
        Constructor arguments (``in_channels``, ``out_channels``, ``features``,
        ``depth``, ``norm``, ...); see :func:`model_params`.

    Returns
    -------
    torch.nn.Module
        Maps ``N, C, *spatial`` to ``N, K, *out_spatial`` logits and carries
        ``model.constraints`` (:class:`~medseg.models.InputConstraints`).

    Raises
    ------
    ConfigError
        Unknown name (the message lists valid names), unknown or pinned parameter, or
        invalid value.

    Examples
    --------
    >>> import torch
    >>> model = build_model("unet", in_channels=1, out_channels=3, features=8, depth=3)
    >>> model(torch.rand(1, 1, 64, 64)).shape
    torch.Size([1, 3, 64, 64])
    """
    spec = _spec(name)
    allowed = model_params(name)
    pinned = sorted(set(params) & set(spec.fixed))
    if pinned:
        raise ConfigError(
            f"model {name!r} fixes {', '.join(f'{k}={spec.fixed[k]!r}' for k in pinned)}; drop the parameter "
            "or choose another model name"
        )
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for model {name!r}; "
            f"valid parameters: {', '.join(sorted(allowed))}"
        )
    return spec.factory(**{**spec.fixed, **spec.defaults, **params})
