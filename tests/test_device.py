from __future__ import annotations

import pytest
import torch

from medseg.device import available_devices, check_device_name, resolve_device
from medseg.errors import ConfigError


def test_cpu_and_auto():
    assert resolve_device("cpu", option="--device") == torch.device("cpu")
    assert resolve_device("CPU", option="--device") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None, option="--device").type == expected
    assert resolve_device("auto", option="--device").type == expected
    assert available_devices()[0] == "cpu"


@pytest.mark.parametrize("name", ["bogus", "cuda:x", pytest.param("gpu", id="gpu-name")])
def test_unknown_names_list_what_is_available(name):
    with pytest.raises(
        ConfigError, match=rf"^infer\.device: unknown device '{name}'; available on this machine: cpu"
    ):
        resolve_device(name, option="infer.device")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_cuda_without_cuda_is_a_config_error(name):
    with pytest.raises(ConfigError, match=rf"^--device: '{name}' asked for a GPU but this torch has no CUDA"):
        check_device_name(name, option="--device")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_gpu_index_beyond_the_count_is_refused():
    with pytest.raises(ConfigError, match=r"GPU\(s\)"):
        resolve_device(f"cuda:{torch.cuda.device_count()}", option="--device")
