"""The training recipes reported for issue 9 (U-Net demo, FCN-8s, sDAE) are valid pipelines."""

from __future__ import annotations

from pathlib import Path

import pytest

from medseg.config import load_config

RECIPES = sorted((Path(__file__).parent / "recipes").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_validates_and_fits_its_model(path, tmp_path):
    config = load_config(path, [f"data.root={tmp_path}"])
    assert config.train.max_minutes is not None and config.train.max_minutes <= 5
    assert config.model.params["out_channels"] == len(config.data.classes)


def test_the_three_recipes_are_there():
    assert [p.stem for p in RECIPES] == ["fcn8s", "sdae", "unet_demo"]
