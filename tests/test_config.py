from __future__ import annotations

import pytest

from medseg.config import PipelineConfig, apply_overrides, config_from_dict, load_config
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
        DataNotFoundError,
        match=r"missing.yaml does not exist; see the examples in pipelines/",
    ):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="must look like section.key=value"):
        apply_overrides({}, ["train.iterations"])


def test_shipped_pipelines_validate():
    from medseg.resources import list_pipelines

    shipped = sorted(list_pipelines().values())
    assert shipped, "pipelines/ should ship example configs"
    for path in shipped:
        load_config(path)


def test_duplicate_keys_name_the_key_and_both_lines(tmp_path):
    path = _write(tmp_path, "name: a\ntrain:\n  iterations: 5\n  seed: 1\n  iterations: 50\n")
    with pytest.raises(
        ConfigError, match=r"pipeline\.yaml: duplicate key 'iterations' on line 5 \(first on line 3\)"
    ):
        load_config(path)


def test_python_tags_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "ran"
    path = _write(tmp_path, f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match=r"pipeline\.yaml: unsupported YAML tag .*python/object/apply"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"--set name: unsupported YAML tag"):
        load_config(
            _write(tmp_path, "name: a\n"), [f"name=!!python/object/apply:os.system ['touch {marker}']"]
        )
    assert not marker.exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.seed=[1,", r"--set train\.seed is not valid YAML"),
        ("train.seed={a: 1, a: 2}", r"--set train\.seed: duplicate key 'a'"),
        ("train..seed=1", r"must look like section\.key=value"),
        ("=1", r"must look like section\.key=value"),
        ("train.iterations.x=1", r"'iterations' is not a section but a value"),
    ],
)
def test_bad_overrides_name_the_key(tmp_path, override, message):
    path = _write(tmp_path, "train:\n  iterations: 5\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path, [override])


def test_a_top_level_list_is_refused_with_or_without_overrides(tmp_path):
    path = _write(tmp_path, "- data\n- model\n")
    for overrides in ([], ["train.seed=1"]):
        with pytest.raises(
            ConfigError, match=r"pipeline\.yaml: a pipeline config must be a mapping .* got a list"
        ):
            load_config(path, overrides)


def test_a_file_that_is_not_utf8_names_the_byte_and_line(tmp_path):
    path = tmp_path / "pipeline.yaml"
    path.write_bytes("name: a\nname2: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"pipeline\.yaml is not UTF-8 text \(byte 18, line 2\)"):
        load_config(path)


def test_a_folder_is_not_a_config(tmp_path):
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)


@pytest.mark.parametrize("key", ["train.device", "infer.device"])
def test_devices_are_checked_at_validation(tmp_path, key):
    path = _write(tmp_path, "name: a\n")
    with pytest.raises(
        ConfigError, match=rf"pipeline\.yaml: {key}: unknown device 'bogus'; available on this machine: cpu"
    ):
        load_config(path, [f"{key}=bogus"])
    assert load_config(path, [f"{key}=cpu"]).model_dump()[key.split(".")[0]]["device"] == "cpu"


def test_flow_target_needs_one_output_channel_more_than_the_spatial_dimensions():
    def config(dims, channels):
        params = {"in_channels": 1, "out_channels": channels, "spatial_dims": dims, "features": 4, "depth": 2}
        data = {"label_kind": "instances", "instance_target": "flow", "classes": ["background", "cell"]}
        if dims == 3:
            data["patch_shape"] = [16, 32, 32]
        return config_from_dict(
            {"data": data, "model": {"params": params}, "infer": {"roi_size": [32] * dims}}
        )

    assert config(2, 3).model.params["out_channels"] == 3
    assert config(3, 4).model.params["out_channels"] == 4
    with pytest.raises(
        ConfigError, match=r"out_channels is 3 but .*flow target.*set model.params.out_channels: 4"
    ):
        config(3, 3)
