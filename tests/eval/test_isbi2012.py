from __future__ import annotations

import numpy as np
import pytest

from medseg.eval.isbi2012 import FIJI_THRESHOLDS, isbi2012_scores, pixel_error, thin_boundaries
from medseg.eval.warping import (
    classify_mismatches,
    simple_point_table,
    splits_and_mergers_warping_error,
    warping_error,
)


def _cells():
    gt = np.full((12, 12), 255, np.uint8)
    gt[:, 5:7] = 0  # 2-px membrane between two cells
    return gt


def test_thresholds_like_fiji():
    assert len(FIJI_THRESHOLDS) == 11 and FIJI_THRESHOLDS[3] == 0.1 + 0.1 + 0.1


def test_perfect_proposal_scores_one():
    gt = _cells()
    s = isbi2012_scores(gt, (gt > 0).astype(np.float32))
    assert s.v_rand == pytest.approx(1.0) and s.v_info == pytest.approx(1.0)


def test_thinning_keeps_one_pixel_lines():
    cells = np.ones((5, 9), bool)
    cells[:, 4] = False
    thin = thin_boundaries(cells)
    assert (thin[:, 4] == 0).all() and len(np.unique(thin)) == 3
    assert (thin_boundaries(np.zeros((3, 3), bool)) == 1).all()


def test_even_width_membrane_line_follows_fiji_fifo_order():
    # cell, 4 membrane pixels, cell: the fronts meet on x = 3 (Fiji's queue reaches x = 2 from the left first)
    row = np.array([[1, 0, 0, 0, 0, 1]], bool)
    np.testing.assert_array_equal(thin_boundaries(row), [[1, 1, 1, 0, 2, 2]])
    np.testing.assert_array_equal(thin_boundaries(row.T), [[1], [1], [1], [0], [2], [2]])


def test_cross_of_two_pixel_membranes_hand_traced():
    # four 1-px corner cells and a 2-px cross; traced by hand through WatershedTransform2D:
    # labels in x-major order, the shared 'flag' lets (x=1, y=2) take basin 1 and lose it again
    cells = np.zeros((4, 4), bool)
    cells[[0, 0, 3, 3], [0, 3, 0, 3]] = True
    expected = [[1, 1, 0, 3], [1, 1, 0, 3], [0, 0, 0, 0], [2, 2, 0, 4]]
    np.testing.assert_array_equal(thin_boundaries(cells), expected)


def test_thresholds_are_compared_in_double_precision():
    # cells saturated at 1.0, membrane just below: only t = 0.9999999999999999 separates them,
    # and 1.0 > t holds in double precision (in float32 t rounds to 1.0 and every pixel is membrane)
    gt = _cells()
    prob = np.where(gt > 0, 1.0, 0.99999).astype(np.float32)
    s = isbi2012_scores(gt, prob)
    assert s.v_rand == 1.0 and s.v_info == 1.0
    assert s.v_rand_threshold == FIJI_THRESHOLDS[-1] == 0.9999999999999999
    assert pixel_error(gt, prob) == 0.0


def test_pixel_error_statistics_like_fiji():
    membrane = np.zeros((2, 5, 5), np.float32)
    assert pixel_error(np.zeros((2, 5, 5), np.uint8), membrane) == 0.0  # fp = fn = 0: P = R = 1
    gt = np.zeros((5, 5), np.uint8)
    gt[0, 0] = 255
    assert pixel_error(gt, np.zeros((5, 5), np.float32)) == 1.0  # tp = 0, fn = 1: R = 0, P = 1, F = 0


def test_merge_is_penalised_and_threshold_sweep_picks_best():
    gt = _cells()
    merged = np.ones((12, 12), np.float32)  # no membrane at all: one segment
    s = isbi2012_scores(gt, merged)
    assert s.v_rand == pytest.approx(2 * 0.5 / 1.5)  # split 1, merge 0.5
    prob = np.where(gt > 0, 0.8, 0.3).astype(np.float32)
    s = isbi2012_scores(gt, prob)
    assert s.v_rand == pytest.approx(1.0) and 0.3 <= s.v_rand_threshold < 0.8


def test_singletons_inside_foreground():
    gt = np.full((6, 6), 255, np.uint8)
    gt[:, 0] = 0
    prop = np.ones((6, 6), np.float32)
    prop[:, 3] = 0  # predicted membrane through a single reference cell -> split
    s = isbi2012_scores(gt, prop)
    assert s.v_rand < 1.0 and s.v_info < 1.0
    # tp = 24 (cols 1, 2, 4, 5), fp = 6 (col 0), fn = 6 (col 3)
    assert pixel_error(gt, prop) == pytest.approx(1 - 48 / 60)


def test_warping_error_hand_worked():
    g = np.zeros((12, 12), bool)
    g[2:9, 2:9] = True
    assert warping_error(g, np.roll(g, 1, axis=1)).error == 0.0  # same topology
    split = g.copy()
    split[5, :] = False  # a split needs exactly one pixel to stay
    assert warping_error(g, split).error == pytest.approx(1 / 144)
    extra = g.copy()
    extra[10, 10] = True  # an extra object cannot be warped away
    assert warping_error(g, extra).error == pytest.approx(1 / 144)


def test_warping_connectivity_is_fijis_cells_4_connected():
    # two cells touching at a corner are two objects for Fiji (cells 4-connected):
    # the proposal's bridge pixel merges them and cannot be warped away
    gt = np.zeros((7, 7), np.uint8)
    gt[1:4, 1:4] = 255
    gt[4:7, 4:7] = 255
    pred = (gt > 0).astype(np.float32)
    pred[3, 4] = 1.0
    assert warping_error(gt, pred).error == pytest.approx(1 / 49)
    assert warping_error(gt, pred, fg_connectivity=8).error == 0.0  # the dual pair sees one object
    table4, table8 = simple_point_table(4), simple_point_table(8)
    # the two tables disagree on 136 of 256 neighbourhoods (272 of 512 counting the centre) and are dual
    assert np.count_nonzero(table4 != table8) == 136
    assert all(table4[code] == table8[255 - code] for code in range(256))


def test_split_leaves_the_last_pixel_in_fiji_sweep_order():
    gt = np.full((7, 7), 255, np.uint8)
    pred = np.ones((7, 7), np.float32)
    pred[:, 3] = 0  # a membrane across the single reference cell
    result = warping_error(gt, pred)
    # column x = 3 is swept top to bottom; only its last pixel would disconnect the halves
    np.testing.assert_array_equal(np.argwhere(result.mismatch), [[6, 3]])
    counts = classify_mismatches(result.warped, result.mismatch)
    assert counts.splits == 1 and counts.mergers == 0
    assert splits_and_mergers_warping_error(gt, pred) == pytest.approx(1 / 49)


def test_merger_is_classified_and_other_errors_are_not_counted():
    gt = np.full((7, 7), 255, np.uint8)
    gt[:, 3] = 0  # two cells
    pred = (gt > 0).astype(np.float32)
    pred[3, 3] = 1.0  # a bridge merges them
    result = warping_error(gt, pred)
    counts = classify_mismatches(result.warped, result.mismatch)
    assert counts.mergers == 1 and counts.splits == 0
    assert splits_and_mergers_warping_error(gt, pred) == pytest.approx(1 / 49)
    hole = (gt > 0).astype(np.float32)
    hole[3, 1] = 0.0  # a hole is a topological error but neither split nor merger
    assert warping_error(gt, hole).error == pytest.approx(1 / 49)
    assert splits_and_mergers_warping_error(gt, hole) == 0.0


def test_slice_without_reference_foreground_scores_zero_as_fiji():
    # Fiji's arithmetic on an empty reference slice gives V_rand 0 (NaN counts) and V_info 0 (H(A) = 0),
    # both kept in the per-slice mean
    gt = np.stack([np.zeros((12, 12), np.uint8), _cells()])
    proposal = (gt > 0).astype(np.float32)
    proposal[0] = 1.0
    s = isbi2012_scores(gt, proposal)
    assert s.v_rand == pytest.approx(0.5) and s.v_info == pytest.approx(0.5)
