"""Segmenters: U-Net, FCN, stacked denoising autoencoder; ``build_model`` registry. Imports torch only.

Every model maps ``N, C, *spatial`` to ``N, K, *out_spatial`` logits and has a frozen
``model.constraints`` (:class:`InputConstraints`): valid input sizes satisfy
``size % divisor == remainder`` and ``size >= min_size``; ``out = in - 2 * margin``
(``margin`` is 0 except for the valid-convolution U-Nets, e.g. 92 for ``unet-paper``).
"""

from __future__ import annotations

from medseg.models.constraints import InputConstraints, mirror_pad, overlap_tile_pad
from medseg.models.fcn import FCN
from medseg.models.registry import MODEL_REGISTRY, build_model, model_names, model_params
from medseg.models.sdae import StackedDenoisingAutoencoder
from medseg.models.unet import UNet
from medseg.models.unet_paper import PaperUNet, valid_unet_geometry

__all__ = [
    "FCN",
    "MODEL_REGISTRY",
    "InputConstraints",
    "PaperUNet",
    "StackedDenoisingAutoencoder",
    "UNet",
    "build_model",
    "mirror_pad",
    "model_names",
    "model_params",
    "overlap_tile_pad",
    "valid_unet_geometry",
]
