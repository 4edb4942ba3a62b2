from __future__ import annotations

from medseg.pipeline import bench


def test_bench_prints_a_row_per_case_engine_and_precision_with_matching_values():
    cases = [
        bench.Case("2D tiny", (1, 1, 48, 48), (32, 32), 0.5, 2, (4, 4, 8, 8, 16, 4)),
        bench.Case("3D labels", (1, 1, 32, 48, 32), (32, 32, 32), 0.5, 2, (2, 2, 2, 2, 2, 2), 4, True),
    ]
    lines = list(bench.bench_sliding_window(device="cpu", repeat=1, cases=cases))
    assert lines[0].startswith("device cpu")
    assert lines[1].split() == [
        "case",
        "engine",
        "prec",
        "wall",
        "s",
        "cpu",
        "s",
        "Mvox/s",
        "speed-up",
        "max",
        "diff",
        "agree",
        "%",
        "peak",
        "MB",
    ]
    rows = [line.split() for line in lines[2:]]
    assert [(r[0] + " " + r[1], r[2], r[3]) for r in rows] == [
        ("2D tiny", "MONAI", "fp32"),
        ("2D tiny", "medseg", "fp32"),
        ("2D tiny", "MONAI", "bf16"),
        ("2D tiny", "medseg", "bf16"),
        ("3D labels", "MONAI", "fp32"),
        ("3D labels", "medseg", "fp32"),
    ]
    # the same window grid and map: medseg fp32 equals MONAI fp32 to float rounding
    assert float(rows[1][-3]) < 1e-5 and float(rows[1][-2]) == 100.0
    assert rows[0][-4] == "1.00x" and rows[0][-3] == "0.0e+00"
    # labels only: identical labels, no logit difference to report
    assert rows[5][-3] == "-" and float(rows[5][-2]) == 100.0
    assert all(float(r[-1]) >= 0 for r in rows)
