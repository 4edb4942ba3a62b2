"""nnU-Net v2 raw folders and generic image/label folders (NIfTI, MHA) read through medseg.io."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medseg.data.synthetic.volume import ORGAN_LABELS, write_nnunet_raw
from medseg.data.volumes import (
    get_folder_paths,
    get_nnunet_paths,
    iter_folder_samples,
    load_nnunet_samples,
    read_dataset_json,
)
from medseg.errors import ConfigError, DataNotFoundError, LabelError, ShapeError
from medseg.io import Volume, read, write


@pytest.fixture
def nnunet_root(tmp_path):
    return write_nnunet_raw(tmp_path / "Dataset001_Syn", n_train=2, n_test=1, shape=(8, 24, 24))


def test_nnunet_round_trip(nnunet_root):
    info = read_dataset_json(nnunet_root)
    assert info.channel_names == ("CT",) and info.labels == ORGAN_LABELS and info.file_ending == ".nii.gz"
    samples = load_nnunet_samples(nnunet_root)
    assert [s.case_id for s in samples] == ["case_000", "case_001"]
    sample = samples[0]
    assert sample.image.array.shape == (1, 8, 24, 24)
    assert sample.image.spacing == pytest.approx((3.0, 0.8, 0.8))  # anisotropic, kept from the header
    assert set(np.unique(sample.label.array)) <= set(ORGAN_LABELS.values())
    assert len(set(np.unique(sample.label.array))) >= 3
    [test_case] = get_nnunet_paths(nnunet_root, "test")
    assert test_case.case_id == "case_002" and test_case.label is not None


def test_nnunet_multichannel(nnunet_root):
    info = json.loads((nnunet_root / "dataset.json").read_text())
    info["channel_names"] = {"0": "CT", "1": "CT2"}
    (nnunet_root / "dataset.json").write_text(json.dumps(info))
    for case in ("case_000", "case_001"):
        vol = read(nnunet_root / "imagesTr" / f"{case}_0000.nii.gz")
        write(vol, nnunet_root / "imagesTr" / f"{case}_0001.nii.gz")
    sample = load_nnunet_samples(nnunet_root)[0]
    assert sample.image.array.shape == (2, 8, 24, 24)
    (nnunet_root / "imagesTr" / "case_001_0001.nii.gz").unlink()
    with pytest.raises(DataNotFoundError, match=r"case 'case_001'.*missing \['case_001_0001\.nii\.gz'\]"):
        get_nnunet_paths(nnunet_root)


def test_nnunet_bad_inputs(nnunet_root):
    label_path = nnunet_root / "labelsTr" / "case_000.nii.gz"
    label = read(label_path)
    bad = label.array.copy()
    bad[0, 0, 0, 0] = 9
    write(label.with_array(bad), label_path)
    with pytest.raises(LabelError, match=r"case_000\.nii\.gz holds values \[9\] not declared"):
        load_nnunet_samples(nnunet_root)
    write(Volume(np.zeros((1, 8, 24, 20), np.uint8), spacing=label.spacing), label_path)
    with pytest.raises(ShapeError, match=r"label .*case_000\.nii\.gz has shape \(8, 24, 20\)"):
        load_nnunet_samples(nnunet_root)
    label_path.unlink()
    with pytest.raises(
        DataNotFoundError, match=r"no label for case 'case_000' \(expected .*labelsTr/case_000"
    ):
        get_nnunet_paths(nnunet_root)


def test_dataset_json_errors(nnunet_root):
    info = json.loads((nnunet_root / "dataset.json").read_text())
    del info["file_ending"]
    (nnunet_root / "dataset.json").write_text(json.dumps(info))
    with pytest.raises(ConfigError, match=r"dataset\.json lacks the key 'file_ending'"):
        read_dataset_json(nnunet_root)
    info["file_ending"] = ".nii.gz"
    info["labels"] = {"background": 0, "tumour": [1, 2]}
    (nnunet_root / "dataset.json").write_text(json.dumps(info))
    with pytest.raises(ConfigError, match="region-based labels"):
        read_dataset_json(nnunet_root)


def test_generic_folder_mixed_formats(tmp_path):
    rng = np.random.default_rng(0)
    for case, suffix in (("a", ".nii.gz"), ("b", ".mha")):
        image = Volume(rng.normal(size=(1, 4, 10, 12)).astype(np.float32), spacing=(2.0, 1.0, 1.0))
        label = Volume((rng.random((1, 4, 10, 12)) > 0.5).astype(np.uint8), spacing=(2.0, 1.0, 1.0))
        write(image, tmp_path / "images" / f"{case}{suffix}")
        write(label, tmp_path / "labels" / f"{case}{suffix}")
    cases = get_folder_paths(tmp_path)
    assert [c.case_id for c in cases] == ["a", "b"]
    samples = list(iter_folder_samples(tmp_path, classes={"background": 0, "fg": 1}))
    assert samples[1].image.spacing == pytest.approx((2.0, 1.0, 1.0))
    with pytest.raises(LabelError, match=r"holds values \[1\] not declared"):
        list(iter_folder_samples(tmp_path, classes={"background": 0}))
    (tmp_path / "labels" / "b.mha").unlink()
    with pytest.raises(DataNotFoundError, match=r"no label for case 'b' \(expected .*labels/b\.mha\)"):
        get_folder_paths(tmp_path)


def _lab_case(root, name, value):
    write(Volume(np.full((1, 4, 5), value, np.uint8)), root / "images" / f"{name}.tif")


def test_lab_folder_channels_only_when_every_case_has_0000(tmp_path):
    for name in ("patient_0001", "patient_0002"):
        _lab_case(tmp_path / "ids", name, 1)
    cases = get_folder_paths(tmp_path / "ids", labels=None)
    assert [(c.case_id, len(c.images)) for c in cases] == [("patient_0001", 1), ("patient_0002", 1)]
    for name in ("a_0000", "a_0001", "b_0000", "b_0001"):
        _lab_case(tmp_path / "chan", name, 1)
    cases = get_folder_paths(tmp_path / "chan", labels=None)
    assert [(c.case_id, [p.name for p in c.images]) for c in cases] == [
        ("a", ["a_0000.tif", "a_0001.tif"]),
        ("b", ["b_0000.tif", "b_0001.tif"]),
    ]
    # declared: patient_0001 is channel 1 of case 'patient', whose channel 0 is missing
    with pytest.raises(DataNotFoundError, match=r"case 'patient' .* missing \['patient_0000\.tif'\]"):
        get_folder_paths(tmp_path / "ids", labels=None, channels=2)
