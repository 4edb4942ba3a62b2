"""Tiny synthetic segmentation samples and configs for training tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import ndimage

from medseg.config import PipelineConfig, config_from_dict
from medseg.data import Sample
from medseg.io import Volume


def disk_samples(
    n: int, *, shape: tuple[int, int] = (48, 48), seed: int = 0, channels: int = 1, contrast: float = 1.0
) -> list[Sample]:
    """Bright noisy disks (class 1) on a dark background, ``n`` single-section cases."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    samples = []
    for i in range(n):
        label = np.zeros(shape, dtype=np.uint8)
        for _ in range(4):
            cy, cx = rng.integers(6, shape[0] - 6), rng.integers(6, shape[1] - 6)
            label[(yy - cy) ** 2 + (xx - cx) ** 2 <= rng.integers(9, 36)] = 1
        image = contrast * label + rng.normal(0, 0.35, shape)
        image = ndimage.gaussian_filter(image, 0.7).astype(np.float32)
        stacked = np.stack([image * (1 + 0.1 * c) for c in range(channels)])
        samples.append(
            Sample(Volume(stacked), Volume(label[None], meta={"source": f"case{i}"}), f"case{i}", "em")
        )
    return samples


def tiny_config(**sections: dict[str, Any]) -> PipelineConfig:
    """A 2D U-Net (4 features, depth 2) on 32x32 patches; ``sections`` update the defaults."""
    raw: dict[str, Any] = {
        "data": {
            "dataset": "folder",
            "classes": ["background", "disk"],
            "patch_shape": [32, 32],
            "batch_size": 4,
        },
        "model": {"name": "unet", "params": {"in_channels": 1, "out_channels": 2, "features": 4, "depth": 2}},
        "train": {"iterations": 6, "learning_rate": 1e-2, "validate_every": 100, "checkpoint_every": 100},
        "infer": {"roi_size": [32, 32], "batch_size": 4, "mirror_axes": []},
    }
    for name, values in sections.items():
        raw[name] = {**raw[name], **values}
    return config_from_dict(raw, source="test config")


@pytest.fixture(name="disk_samples")
def _disk_samples_fixture():
    """:func:`disk_samples` for tests."""
    return disk_samples


@pytest.fixture(name="tiny_config")
def _tiny_config_fixture():
    """:func:`tiny_config` for tests."""
    return tiny_config


@pytest.fixture
def samples() -> tuple[list[Sample], list[Sample]]:
    cases = disk_samples(4)
    return cases[:3], cases[3:]
