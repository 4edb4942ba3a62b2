"""Suite-wide settings: GPU tests skip without CUDA; one torch thread per xdist worker."""

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
