from __future__ import annotations

import re

from medseg.pipeline import bench


def test_bench_prints_a_row_per_case_with_matching_values(monkeypatch):
    small = [("2D tiny", (1, 1, 48, 40), (16, 16), {"spatial_dims": 2, "features": 4, "depth": 2})]
    monkeypatch.setattr(bench, "CASES", small)
    lines = list(bench.bench_sliding_window(device="cpu", repeat=1))
    assert lines[0].startswith("device cpu")
    row = lines[2]
    assert row.startswith("2D tiny")
    ratio, diff = re.findall(r"([\d.]+)x\s+([\d.e+-]+)$", row)[0]
    assert float(ratio) > 0
    assert float(diff) < 1e-5  # medseg and MONAI agree on a tiling-independent model
