"""build_model: names, parameter checks and error messages."""

from __future__ import annotations

import doctest
import importlib

import pytest
import torch

from medseg.errors import ConfigError
from medseg.models import MODEL_REGISTRY, build_model, model_names, model_params


def test_registry_names() -> None:
    assert model_names() == sorted(["unet", "unet-paper", "unet3d", "fcn8s", "fcn16s", "fcn32s", "sdae"])
    assert set(MODEL_REGISTRY) == set(model_names())


def test_unknown_name_lists_valid_names_and_suggests() -> None:
    with pytest.raises(ConfigError) as info:
        build_model("unet_paper")
    message = str(info.value)
    for name in model_names():
        assert name in message
    assert "Did you mean 'unet-paper'?" in message
    with pytest.raises(ConfigError, match="valid names"):
        build_model("resnet")


def test_unknown_params_are_named() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown parameter\(s\) 'base_feature', 'n_classes'.*valid parameters"
    ):
        build_model("unet", base_feature=8, n_classes=3)


def test_pinned_param_is_rejected() -> None:
    with pytest.raises(ConfigError, match="fixes variant='8s'"):
        build_model("fcn8s", variant="32s")


def test_bad_value_is_config_error() -> None:
    with pytest.raises(ConfigError, match="norm"):
        build_model("unet", norm="group")


def test_defaults_and_overrides() -> None:
    assert model_params("unet3d")["spatial_dims"] == 3
    assert "variant" not in model_params("fcn16s")
    model = build_model("unet3d", spatial_dims=2, features=2, depth=1)
    assert model.constraints.spatial_dims == 2
    assert model(torch.rand(1, 1, 18, 18)).shape == (1, 2, 2, 2)


@pytest.mark.parametrize("module", ["constraints", "unet", "unet_paper", "fcn", "sdae", "registry"])
def test_docstring_examples_run(module: str) -> None:
    mod = importlib.import_module(f"medseg.models.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
