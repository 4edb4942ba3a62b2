from __future__ import annotations

import json

import numpy as np
import pytest

from medseg.cli.main import main
from medseg.eval.formats import write_submission

SPACING = (5.0, 0.7, 0.7)


def _pair(tmp_path, pred_geometry=None, fmt_suffix=".nii.gz"):
    gt = np.zeros((12, 8, 8), np.uint8)
    gt[2:5, 2:6, 2:6] = 1
    pred = np.roll(gt, 3, axis=0)  # the same box three slices further
    geometry = {"spacing": SPACING, "origin": (1.0, 2.0, 3.0)}
    write_submission("labelmap", gt, tmp_path / "gt", "case", suffix=fmt_suffix, **geometry)
    write_submission(
        "labelmap", pred, tmp_path / "pred", "case", suffix=fmt_suffix, **(pred_geometry or geometry)
    )
    return ["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt")]


@pytest.mark.parametrize("suffix", [".nii.gz", ".tif"])
def test_three_slice_shift_is_15_mm(tmp_path, capsys, suffix):
    args = _pair(tmp_path, fmt_suffix=suffix)
    code = main([*args, "--format", "labelmap", "-o", str(tmp_path / "out"), "--no-plot", "--workers", "1"])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((tmp_path / "out" / "summary.json").read_text())["metric_per_case"][0]["metrics"][
        "1"
    ]
    # every surface voxel moves 3 slices = 15 mm; the in-plane faces are 15 mm from the other box
    assert metrics["hausdorff"] == pytest.approx(15.0, abs=1e-6)
    assert metrics["hausdorff95"] == pytest.approx(15.0, abs=1e-6)


@pytest.mark.parametrize(
    ("geometry", "what"),
    [
        ({"spacing": (5.0, 0.7, 0.71), "origin": (1.0, 2.0, 3.0)}, "spacing"),
        ({"spacing": SPACING, "origin": (1.0, 2.0, 3.5)}, "origin"),
        (
            {"spacing": SPACING, "origin": (1.0, 2.0, 3.0), "direction": [[1, 0, 0], [0, 0, 1], [0, 1, 0]]},
            "direction",
        ),
    ],
)
def test_prediction_off_the_reference_grid_names_both_files(tmp_path, capsys, geometry, what):
    args = _pair(tmp_path, pred_geometry=geometry)
    code = main([*args, "--format", "labelmap", "-o", str(tmp_path / "out"), "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert what in err and str(tmp_path / "pred" / "case.nii.gz") in err
    assert str(tmp_path / "gt" / "case.nii.gz") in err
    assert not (tmp_path / "out").exists()


def test_spacing_option_only_for_files_without_geometry(tmp_path, capsys):
    args = _pair(tmp_path)
    out = ["-o", str(tmp_path / "out"), "--workers", "1", "--no-plot"]
    assert main([*args, "--format", "labelmap", "--spacing", "1", "1", "1", *out]) == 2
    assert "--spacing" in capsys.readouterr().err
    # PNG class maps carry no spacing: --spacing gives the distances their unit
    gt = np.zeros((10, 10), np.uint8)
    gt[2:5, 2:5] = 1
    write_submission("dental", gt, tmp_path / "gt2", "a")
    write_submission("dental", np.roll(gt, 2, axis=1), tmp_path / "pred2", "a")
    args2 = [
        "evaluate",
        "--pred",
        str(tmp_path / "pred2"),
        "--gt",
        str(tmp_path / "gt2"),
        "--format",
        "dental",
    ]
    assert main([*args2, "--spacing", "0.5", "2.0", *out]) == 0
    metrics = json.loads((tmp_path / "out" / "summary.json").read_text())["metric_per_case"][0]["metrics"][
        "1"
    ]
    assert metrics["hausdorff"] == pytest.approx(4.0)  # 2 columns of 2.0


def test_prediction_of_another_shape_is_a_shape_error(tmp_path, capsys):
    args = _pair(tmp_path)
    write_submission("labelmap", np.zeros((12, 8, 9), np.uint8), tmp_path / "pred", "case", spacing=SPACING)
    assert main([*args, "--format", "labelmap", "-o", str(tmp_path / "out"), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "shape (12, 8, 9)" in err and "(12, 8, 8)" in err and str(tmp_path / "gt" / "case.nii.gz") in err


def test_cremi_format_scores_neuron_ids_with_the_border_mask_in_nm(tmp_path, capsys):
    from medseg.eval.em import cremi_neuron_scores

    rng = np.random.default_rng(3)
    gt = np.repeat(np.repeat(rng.integers(1, 6, (4, 6, 6)), 4, axis=1), 4, axis=2).astype(np.uint64)
    pred = gt.copy()
    pred[:, :12] += 10  # the top half of every section split off from its neuron
    pred[1, 12:20, 12:20] = 99  # a false merge
    for folder, ids in (("gt", gt), ("pred", pred)):
        write_submission("cremi", ids, tmp_path / folder, "A", spacing=(40.0, 4.0, 4.0))
    args = ["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--format", "cremi"]
    scores = {}
    for threshold in (None, 8.0):
        out = tmp_path / f"out{threshold}"
        extra = [] if threshold is None else ["--border-threshold", str(threshold)]
        assert main([*args, *extra, "-o", str(out), "--no-plot", "--workers", "1", "--no-progress"]) == 0
        summary = json.loads((out / "summary.json").read_text())
        assert summary["config"]["border_threshold"] == threshold
        scores[threshold] = summary["foreground_mean"]
        expected = cremi_neuron_scores(gt, pred, resolution=(40.0, 4.0, 4.0), border_threshold=threshold)
        assert scores[threshold]["cremi_score"] == pytest.approx(expected.cremi_score)
        assert scores[threshold]["voi_merge"] == pytest.approx(expected.voi_merge)
        assert scores[threshold]["adapted_rand_error"] == pytest.approx(expected.adapted_rand_error)
    assert "cremi_score" in capsys.readouterr().out
    assert scores[8.0]["cremi_score"] != pytest.approx(scores[None]["cremi_score"])  # the mask matters
    code = main([*args[:-1], "instances", "--border-threshold", "200", "-o", str(tmp_path / "x")])
    assert code == 2 and "--format cremi only" in capsys.readouterr().err


@pytest.mark.parametrize("slices", [3, 4])
def test_stacks_saved_with_tifffile_defaults_are_scored_as_stacks(tmp_path, capsys, slices):
    """tifffile.imwrite stores a 3/4-slice uint8/uint16 stack as one planar RGB(A) page:
    label formats read it as a Z stack (isbi2012 was refused with a geometry error naming
    no file; instances said 'a instance map has one channel, got 4')."""
    import tifffile

    rng = np.random.default_rng(slices)
    instances = np.zeros((slices, 24, 24), np.uint16)
    instances[:, 2:10, 2:10], instances[:, 12:20, 4:14] = 1, 2
    labels = np.where(rng.random((slices, 24, 24)) > 0.3, 255, 0).astype(np.uint8)
    files = {
        "inst/gt/c1.tif": instances,
        "inst/pred/c1.tif": instances,
        "isbi/gt/c1.tif": labels,
        "isbi/pred/c1.tif": (labels / 255).astype(np.float32),
    }
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(tmp_path / name, data)  # tifffile's defaults
    scores = {}
    for fmt, folder in (("instances", "inst"), ("isbi2012", "isbi")):
        report = tmp_path / f"eval-{fmt}"
        pair = ["--pred", str(tmp_path / folder / "pred"), "--gt", str(tmp_path / folder / "gt")]
        code = main(["evaluate", *pair, "--format", fmt, "-o", str(report), "--no-plot"])
        assert code == 0, capsys.readouterr().err
        scores[fmt] = json.loads((report / "summary.json").read_text())["mean"]
    assert scores["isbi2012"]["all"]["pixel_error"] == 0.0 and scores["isbi2012"]["all"]["v_rand"] == 1.0
    assert scores["instances"]["all"]["aji"] == 1.0 and scores["instances"]["all"]["pq"] == 1.0
