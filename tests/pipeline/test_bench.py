from __future__ import annotations

import pytest

from medseg.pipeline import bench

_HEADER = [
    "case",
    "engine",
    "prec",
    "wall",
    "s",
    "cpu",
    "s",
    "first",
    "s",
    "Mvox/s",
    "xMONAI",
    "xMONAI-c",
    "max",
    "diff",
    "agree",
    "%",
    "peak",
    "MB",
]


def test_bench_prints_a_row_per_case_engine_and_precision_with_matching_values():
    cases = [
        bench.Case("2D tiny", (1, 1, 48, 48), (32, 32), 0.5, 2, (4, 4, 8, 8, 16, 4)),
        bench.Case("3D labels", (1, 1, 32, 48, 32), (32, 32, 32), 0.5, 2, (2, 2, 2, 2, 2, 2), 4, True),
    ]
    lines = list(bench.bench_sliding_window(device="cpu", repeat=1, cases=cases))
    assert lines[0].startswith("device cpu")
    assert lines[2].split() == _HEADER
    rows = [line.split() for line in lines[3:]]
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
    assert rows[0][-5:-2] == ["1.00x", "-", "0.0e+00"]
    # labels only: identical labels, no logit difference to report
    assert rows[5][-3] == "-" and float(rows[5][-2]) == 100.0
    assert all(float(r[-1]) >= 0 and float(r[7]) > 0 for r in rows)


@pytest.mark.slow  # compiles twice: about a minute on 2 quiet cores
def test_bench_compile_adds_monai_compiled_and_medseg_compiled_rows_each_in_its_own_process():
    cases = [bench.Case("2D tiny", (1, 1, 48, 48), (32, 32), 0.5, 2, (2, 2, 2, 2, 2, 2))]
    lines = list(
        bench.bench_sliding_window(device="cpu", repeat=1, cases=cases, precisions=("fp32",), compile=True)
    )
    rows = {line.split()[2]: line.split() for line in lines[3:]}
    assert list(rows) == ["MONAI", "MONAI-c", "medseg", "medseg-c", "net-c"]
    # the network alone: timed like the engines, no image to compare
    assert rows["net-c"][-5].endswith("x") and rows["net-c"][-3:-1] == ["-", "-"]
    # speed-ups over both anchors; an anchor over itself is 1.00x
    assert rows["MONAI"][-5] == "1.00x" and rows["MONAI-c"][-4] == "1.00x"
    assert all(r[-5].endswith("x") and r[-4].endswith("x") for r in rows.values())
    # compiled outputs agree with MONAI eager: fp32 labels identical
    for name in ("MONAI-c", "medseg-c"):
        assert float(rows[name][-3]) < 1e-4 and float(rows[name][-2]) == 100.0


@pytest.mark.parametrize("case", bench.CPU_CASES + bench.GPU_CASES, ids=lambda case: case.name)
def test_every_case_places_its_windows_where_monai_does(case):
    # medseg spreads windows evenly (nnU-Net), MONAI steps from the origin and clamps the last
    # one; the cases are sized so that both give the same starts, else "max diff" and "agree %"
    # would compare different work (2D 4096² with roi 512 at overlap 0.25 agreed on 88 % of labels)
    from monai.data.utils import dense_patch_slices
    from monai.inferers.utils import _get_scan_interval

    from medseg.infer.tiling import window_starts

    spatial = case.shape[2:]
    interval = _get_scan_interval(spatial, case.roi, len(spatial), (case.overlap,) * len(spatial))
    monai = dense_patch_slices(spatial, case.roi, interval)
    for axis, (size, roi) in enumerate(zip(spatial, case.roi, strict=True)):
        assert sorted({box[axis].start for box in monai}) == window_starts(size, roi, case.overlap)
