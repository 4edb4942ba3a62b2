from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from medseg.errors import ConfigError, FormatError
from medseg.eval.formats import DENTAL_CLASSES, get_format, read_submission, write_submission

rng = np.random.default_rng(0)
CASES = [
    ("isbi2012", rng.random((3, 8, 8)).astype(np.float32), "case.tif"),
    ("ctc", rng.integers(0, 1000, (8, 8)), "mask007.tif"),
    ("glas", rng.integers(0, 40, (8, 8)), "case_anno.bmp"),
    ("monuseg", rng.integers(0, 3000, (8, 8)), "case.png"),
    ("dental", rng.integers(0, len(DENTAL_CLASSES), (8, 8)), "case.png"),
    ("labelmap", rng.integers(0, 5, (3, 8, 8)), "case.nii.gz"),
    ("instances", rng.integers(0, 70000, (3, 8, 8)), "case.tif"),
    ("cremi", rng.integers(0, 2**40, (3, 8, 8), dtype=np.uint64), "case.hdf"),
]


@pytest.mark.parametrize(("name", "array", "filename"), CASES)
def test_round_trip_and_file_rules(tmp_path, name, array, filename):
    path = write_submission(name, array, tmp_path, 7 if name == "ctc" else "case")
    assert path.name == filename
    volume = read_submission(name, path)
    assert volume.num_channels == 1
    np.testing.assert_array_equal(volume.array[0], array)
    assert [p.name for p in tmp_path.iterdir()] == [filename]  # no temporary left behind
    if name == "ctc":
        assert tifffile.imread(path).dtype == np.uint16
    if name == "isbi2012":
        assert tifffile.imread(path).dtype == np.float32
    if name == "monuseg":
        assert Image.open(path).mode.startswith("I;16")


def test_writers_validate(tmp_path):
    with pytest.raises(FormatError, match="0 = membrane"):
        write_submission("isbi2012", np.full((4, 4), 2.0), tmp_path, "c")
    with pytest.raises(FormatError, match="integer"):
        write_submission("ctc", np.zeros((4, 4), np.float32), tmp_path, 1)
    with pytest.raises(FormatError, match="65535"):
        write_submission("monuseg", np.full((4, 4), 70000), tmp_path, "c")
    with pytest.raises(FormatError, match="caries"):
        write_submission("dental", np.full((4, 4), 9), tmp_path, "c")
    with pytest.raises(FormatError, match=r"\(Z, Y, X\)"):
        write_submission("cremi", np.ones((4, 4), np.uint64), tmp_path, "c")
    with pytest.raises(ConfigError, match="did you mean 'ctc'"):
        get_format("ctcc")
    assert not list(tmp_path.iterdir())


def test_cremi_reads_the_neuron_ids_of_a_sample_file_and_writes_its_layout(tmp_path):
    h5py = pytest.importorskip("h5py")
    ids = rng.integers(0, 2**33, (2, 6, 5), dtype=np.uint64)
    with h5py.File(tmp_path / "sample_A_20160501.hdf", "w") as f:  # CREMI's own layout
        f["volumes/raw"] = np.zeros((2, 6, 5), np.uint8)
        f["volumes/labels/neuron_ids"] = ids
        f["volumes/labels/clefts"] = np.zeros((2, 6, 5), np.uint64)
        f["volumes/labels/neuron_ids"].attrs["resolution"] = (40.0, 4.0, 4.0)
    volume = read_submission("cremi", tmp_path / "sample_A_20160501.hdf")
    np.testing.assert_array_equal(volume.array[0], ids)
    assert volume.spacing == (40.0, 4.0, 4.0)
    path = write_submission("cremi", ids, tmp_path / "out", "A", spacing=volume.spacing)
    with h5py.File(path, "r") as f:
        assert f["volumes/labels/neuron_ids"].dtype == np.uint64
        np.testing.assert_array_equal(f["volumes/labels/neuron_ids"].attrs["resolution"], (40.0, 4.0, 4.0))
