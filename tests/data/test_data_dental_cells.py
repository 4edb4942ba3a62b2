"""ISBI 2015 dental masks and Cell Tracking Challenge sequences, on synthetic files in the real layouts."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from medseg.data.cells import get_ctc_paths, load_ctc_samples
from medseg.data.dental import DENTAL_CLASSES, PAINT_ORDER, load_dental_samples, masks_to_label
from medseg.data.synthetic.cells import write_ctc
from medseg.data.synthetic.dental import write_isbi2015_dental
from medseg.errors import DataNotFoundError, FormatError, LabelError, ShapeError


def test_dental_round_trip(tmp_path):
    written = write_isbi2015_dental(tmp_path, n_images=2, shape=(64, 112), seed=1)
    samples = load_dental_samples(tmp_path)
    assert [s.case_id for s in samples] == ["1", "2"]
    for sample, (_, truth) in zip(samples, written, strict=True):
        assert sample.image.array.shape == (1, 64, 112) and sample.label.array.dtype == np.uint8
        assert np.array_equal(sample.label.array[0], truth)
    present = set(np.unique(np.concatenate([s.label.array.ravel() for s in samples])).tolist())
    names = {DENTAL_CLASSES[i] for i in present}
    assert {"background", "enamel", "dentin", "pulp", "restoration", "caries"} <= names


def test_dental_overlap_priority():
    enamel = np.array([[1, 1, 0]], np.uint8)
    caries = np.array([[0, 1, 1]], np.uint8)
    masks = [np.zeros((1, 3), np.uint8) for _ in DENTAL_CLASSES[1:]]
    masks[DENTAL_CLASSES.index("enamel") - 1] = enamel
    masks[DENTAL_CLASSES.index("caries") - 1] = caries * 255
    label = masks_to_label(masks)
    assert label.tolist() == [[2, 1, 1]]  # caries painted after enamel
    assert sorted(PAINT_ORDER) == list(range(1, len(DENTAL_CLASSES)))


def test_dental_bad_inputs(tmp_path):
    write_isbi2015_dental(tmp_path, n_images=2, shape=(64, 112))
    data = tmp_path / "v2-TrainingData"
    Image.fromarray(np.array([[0, 128], [255, 0]], np.uint8).repeat(32, 0).repeat(56, 1)).save(
        data / "1" / "1_3.bmp"
    )
    with pytest.raises(LabelError, match=r"1_3\.bmp holds values \[0, 128, 255\]"):
        load_dental_samples(tmp_path)
    Image.fromarray(np.zeros((60, 112), np.uint8)).save(data / "1" / "1_3.bmp")
    with pytest.raises(ShapeError, match=r"1_3\.bmp has spatial shape \(60, 112\)"):
        load_dental_samples(tmp_path)
    (data / "1.bmp").write_bytes(b"BM\x00\x01truncated")
    with pytest.raises(FormatError, match=r"1\.bmp"):
        load_dental_samples(tmp_path, folder="v2-TrainingData")
    (data / "2" / "2_7.bmp").unlink()
    with pytest.raises(DataNotFoundError, match=r"no label for case '2'.*missing \['2_7\.bmp'\]"):
        load_dental_samples(tmp_path)


def test_ctc_sparse_annotations(tmp_path):
    sequences = write_ctc(tmp_path, sequences=("01", "02"), n_frames=5, annotate_every=2)
    samples = load_ctc_samples(tmp_path)
    assert [s.case_id for s in samples] == ["01_t000", "01_t002", "01_t004", "02_t000", "02_t002", "02_t004"]
    first = samples[1]
    assert first.label.array.dtype == np.uint16 and first.image.array.shape == (1, 64, 64)
    assert np.array_equal(first.label.array[0], sequences["01"].masks[2])
    everything = get_ctc_paths(tmp_path, "01", annotated_only=False)
    assert len(everything) == 5 and everything[1][1] is None
    assert (tmp_path / "01_GT" / "TRA" / "man_track.txt").read_text().startswith("1 0 4 0")


def test_ctc_bad_inputs(tmp_path):
    write_ctc(tmp_path, n_frames=3, annotate_every=1)
    tifffile.imwrite(tmp_path / "01_GT" / "SEG" / "man_seg001.tif", np.zeros((60, 64), np.uint16))
    with pytest.raises(ShapeError, match=r"man_seg001\.tif has spatial shape \(60, 64\)"):
        load_ctc_samples(tmp_path)
    tifffile.imwrite(tmp_path / "01_GT" / "SEG" / "man_seg001.tif", np.zeros((64, 64), np.float32))
    with pytest.raises(LabelError, match=r"man_seg001\.tif has dtype float32"):
        load_ctc_samples(tmp_path)
    tifffile.imwrite(tmp_path / "01_GT" / "SEG" / "man_seg009.tif", np.zeros((64, 64), np.uint16))
    with pytest.raises(DataNotFoundError, match=r"man_seg009\.tif has no image \(expected .*t009\.tif\)"):
        load_ctc_samples(tmp_path)
    with pytest.raises(DataNotFoundError, match="CTC sequence '03'"):
        get_ctc_paths(tmp_path, "03")
