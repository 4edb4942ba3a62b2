"""``--smoke`` shrinks every registered model, and picks a patch the shrunk model accepts."""

from __future__ import annotations

import pytest
import torch

from medseg.config import config_from_dict
from medseg.models import build_model, model_names
from medseg.pipeline.synthetic_data import _SMOKE_MODELS, smoke_overrides


def test_every_registered_model_has_smoke_parameters():
    assert set(model_names()) <= set(_SMOKE_MODELS)


@pytest.mark.parametrize(
    ("name", "patch", "expected"),
    [
        ("unet3d", [132, 132, 132], [44, 44, 44]),  # valid convolutions: 8 x 16 x 16 is too small
        ("unet", [64, 64, 64], [8, 16, 16]),
        ("fcn16s", [256, 256], [32, 32]),
        ("fcn32s", [256, 256], [32, 32]),
    ],
)
def test_smoke_run_of_each_model_is_tiny_and_its_patch_fits(name, patch, expected):
    params = {"in_channels": 1, "out_channels": 2, **({"spatial_dims": 3} if len(patch) == 3 else {})}
    config = config_from_dict(
        {
            "data": {"patch_shape": patch},
            "model": {"name": name, "params": params},
            "infer": {"roi_size": patch},
        }
    )
    overrides = smoke_overrides(config)
    assert f"data.patch_shape={expected}" in overrides and f"infer.roi_size={expected}" in overrides
    small = {**params, **_SMOKE_MODELS[name]}
    with torch.device("meta"):
        model = build_model(name, **small)
    assert model.constraints.is_valid(tuple(expected))
    assert sum(p.numel() for p in model.parameters()) < 100_000  # the default networks have millions
