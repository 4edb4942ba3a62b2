from __future__ import annotations

import pytest

from medseg.config import PipelineConfig, apply_overrides, load_config
from medseg.errors import ConfigError, DataNotFoundError


def _write(tmp_path, text):
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    return path


def test_load_with_overrides(tmp_path):
    path = _write(
        tmp_path, "name: em\ntrain:\n  iterations: 50\nmodel:\n  name: unet\n  params: {features: 8}\n"
    )
    config = load_config(path, ["train.iterations=7", "infer.overlap=0.25", "model.params.depth=3"])
    assert isinstance(config, PipelineConfig)
    assert config.train.iterations == 7
    assert config.infer.overlap == 0.25
    assert config.model.params == {"features": 8, "depth": 3}
    assert config.data.patch_shape == (128, 128)  # default kept


def test_unknown_key_names_file_key_and_allowed_keys(tmp_path):
    path = _write(tmp_path, "train:\n  iterationz: 5\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "unknown key 'train.iterationz'" in message
    assert "allowed here: checkpoint_every, deterministic, device, early_stopping_patience" in message


def test_bad_values_and_files(tmp_path):
    with pytest.raises(ConfigError, match=r"'infer.overlap': Input should be less than 1 \(got 1.5\)"):
        load_config(_write(tmp_path, "infer: {overlap: 1.5}\n"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path, "train: [unclosed\n"))
    with pytest.raises(
        DataNotFoundError, match=r"missing.yaml does not exist; see the examples in pipelines/"
    ):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="must look like section.key=value"):
        apply_overrides({}, ["train.iterations"])


def test_shipped_pipelines_validate():
    from pathlib import Path

    shipped = sorted((Path(__file__).parents[1] / "pipelines").glob("*.yaml"))
    assert shipped, "pipelines/ should ship example configs"
    for path in shipped:
        load_config(path)
