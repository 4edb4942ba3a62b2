"""Suite-wide settings: GPU tests skip without CUDA and run in true fp32; one torch thread per xdist worker."""

from __future__ import annotations

import os

import pytest
import torch
from _trained_runs import runs  # noqa: F401 - the fixture of tests/exchange and tests/napari

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fp32_convolutions_in_gpu_tests(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """GPU tests compare with the CPU at fp32 tolerances; PyTorch's default TF32 convolutions
    (Ampere and later) differ by about 1e-3 (seen on an H200), so they are turned off there."""
    if "gpu" in request.keywords:
        monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
        monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
