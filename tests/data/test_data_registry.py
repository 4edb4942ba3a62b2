"""Every shipped manifest is trainable through load_training_samples, from synthetic data in its real layout."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from medseg.config import DataConfig
from medseg.data import list_manifests
from medseg.data.registry import ALIASES, DATASETS, get_dataset
from medseg.data.synthetic import (
    write_ctc,
    write_glas,
    write_isbi2012,
    write_isbi2012_mirror,
    write_isbi2015_dental,
    write_monuseg,
    write_nnunet_raw,
)
from medseg.errors import ConfigError, DataNotFoundError, LabelError
from medseg.io import LazyArray, Volume, write
from medseg.labels import DENTAL_CLASSES
from medseg.pipeline.datasets import TEST_SPLITS, load_training_samples

INSTANCES = {"label_kind": "instances", "classes": ("background", "inside", "boundary")}


def _config(dataset: str, root, **extra) -> DataConfig:
    return DataConfig(dataset=dataset, root=root, validation_slices=1, **extra)


def test_every_shipped_manifest_has_a_loader_and_names_agree():
    assert set(list_manifests()) == set(DATASETS)
    for name, entry in DATASETS.items():
        assert entry.name == name


def test_isbi2012_from_the_mirror_at_the_fetch_root(tmp_path):
    # `medseg fetch isbi2012 --root data/isbi2012` writes data/isbi2012/isbi2012/isbi.h5
    write_isbi2012_mirror(tmp_path / "isbi2012", shape=(3, 40, 40), seed=1)
    train, val = load_training_samples(_config("isbi2012", tmp_path))
    assert [s.case_id for s in train + val] == [f"isbi2012_train_z{z:02d}" for z in range(3)]
    assert len(val) == 1 and train[0].image.shape == (1, 40, 40) and train[0].image.unit == "nm"
    import h5py

    with h5py.File(tmp_path / "isbi2012" / "isbi.h5") as f:
        membranes = f["labels/membranes"][...]
    np.testing.assert_array_equal(val[0].label.array[0], (membranes[2] == 0).astype(np.uint8))
    assert TEST_SPLITS["isbi2012"][0](tmp_path) == []  # the mirror has no test stack


def test_isbi2012_challenge_tiffs_placed_by_hand_and_test_split(tmp_path):
    write_isbi2012(tmp_path, shape=(2, 32, 32), seed=0)
    train, val = load_training_samples(_config("isbi2012", tmp_path))
    assert len(train) == 1 and len(val) == 1
    [test] = TEST_SPLITS["isbi2012"][0](tmp_path)
    assert test.image.shape == (1, 2, 32, 32) and test.label is None


def test_inverted_isbi_polarity_is_caught(tmp_path):
    path = write_isbi2012_mirror(tmp_path, shape=(2, 32, 32))
    import h5py

    with h5py.File(path, "a") as f:
        f["labels/membranes"][...] = 255 - f["labels/membranes"][...]
    with pytest.raises(LabelError, match=r"membranes .*polarity looks inverted"):
        load_training_samples(_config("isbi2012", tmp_path))


def test_cremi_lazy_samples(tmp_path):
    folder = tmp_path / "cremi"
    ids = np.repeat(np.arange(1, 5, dtype=np.uint64), 4)[None, None, :, None] * np.ones(
        (1, 3, 1, 16), np.uint64
    )
    for name in ("A", "B"):
        path = folder / f"sample_{name}_20160501.hdf"
        write(
            Volume(np.zeros((1, 3, 16, 16), np.uint8), spacing=(40, 4, 4), unit="nm"), f"{path}:/volumes/raw"
        )
        write(Volume(ids, spacing=(40, 4, 4), unit="nm"), f"{path}:/volumes/labels/neuron_ids")
    with pytest.raises(ConfigError, match=r"cremi has instance labels.*label_kind: instances"):
        load_training_samples(_config("cremi", tmp_path))
    train, val = load_training_samples(_config("cremi", tmp_path, **INSTANCES))
    assert [s.case_id for s in train + val] == ["sample_A_20160501", "sample_B_20160501"]
    assert isinstance(train[0].label, LazyArray) and train[0].label.spacing == (40.0, 4.0, 4.0)
    np.testing.assert_array_equal(val[0].label[...], ids)


def test_dental_new_name_and_deprecated_alias(tmp_path):
    written = write_isbi2015_dental(tmp_path / "dental_isbi2015", n_images=2, shape=(48, 64), seed=2)
    classes = tuple(DENTAL_CLASSES)
    train, val = load_training_samples(_config("dental_isbi2015", tmp_path, classes=classes))
    np.testing.assert_array_equal(val[0].label.array[0], written[1][1])
    with pytest.warns(DeprecationWarning, match=r"'dental-isbi2015' is deprecated: use 'dental_isbi2015'"):
        again, _ = load_training_samples(_config("dental-isbi2015", tmp_path, classes=classes))
    assert [s.case_id for s in again] == [s.case_id for s in train]
    assert ALIASES["dental-isbi2015"] == "dental_isbi2015"


@pytest.mark.parametrize(
    ("name", "subfolder"), [("ctc_phc_u373", "PhC-C2DH-U373"), ("ctc_dic_hela", "DIC-C2DH-HeLa")]
)
def test_ctc_from_the_fetched_archive_layout(tmp_path, name, subfolder):
    written = write_ctc(tmp_path / name / "train" / subfolder, sequences=("01", "02"), n_frames=4, seed=3)
    train, val = load_training_samples(_config(name, tmp_path, **INSTANCES))
    assert [s.case_id for s in train + val] == ["01_t000", "01_t002", "02_t000", "02_t002"]
    np.testing.assert_array_equal(val[0].label.array[0], written["02"].masks[2])


def test_monuseg_and_glas(tmp_path):
    tiles = write_monuseg(tmp_path / "monuseg2018", n_images=2, shape=(64, 64), n_nuclei=8, seed=4)
    train, val = load_training_samples(_config("monuseg2018", tmp_path, **INSTANCES))
    assert val[0].image.shape == (3, 64, 64)
    np.testing.assert_array_equal(val[0].label.array[0] > 0, tiles[1][2] > 0)
    glands = write_glas(tmp_path / "glas2015", n_train=2, n_test_a=0, shape=(48, 64), seed=5)
    train, val = load_training_samples(_config("glas2015", tmp_path, **INSTANCES))
    assert [s.case_id for s in train + val] == ["train_1", "train_2"]
    np.testing.assert_array_equal(val[0].label.array[0], glands[1][2])


def test_nnunet_raw_and_old_name(tmp_path):
    root = write_nnunet_raw(tmp_path / "Dataset001", n_train=2, n_test=0, shape=(8, 16, 16), seed=6)
    classes = ("background", "liver", "spleen", "kidney")
    train, val = load_training_samples(_config("nnunet_raw", root, classes=classes))
    assert [s.case_id for s in train + val] == ["case_000", "case_001"]
    with pytest.warns(DeprecationWarning):
        load_training_samples(_config("nnunet", root, classes=classes))


def test_lab_folder_instances_and_patient_names(tmp_path):
    rng = np.random.default_rng(0)
    for i in (1, 2, 3):
        image = rng.integers(0, 255, (1, 24, 24), dtype=np.uint8)
        mask = np.zeros((1, 24, 24), np.uint16)
        mask[0, 2:8, 2:8], mask[0, 10:20, 4:9] = 1, 7
        write(Volume(image), tmp_path / "images" / f"patient_{i:04d}.tif")
        write(Volume(mask), tmp_path / "labels" / f"patient_{i:04d}.tif")
    train, val = load_training_samples(_config("lab_folder", tmp_path, **INSTANCES))
    assert [s.case_id for s in train + val] == ["patient_0001", "patient_0002", "patient_0003"]
    with pytest.raises(
        LabelError, match=r"patient_0001\.tif holds values \[7\].*data\.classes \['background', 'cell'\]"
    ):
        load_training_samples(_config("lab_folder", tmp_path, classes=("background", "cell")))


def test_unknown_name_and_missing_root(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown data.dataset 'isbi'; choose one of isbi2012, cremi"):
        get_dataset("isbi")
    with pytest.raises(DataNotFoundError, match=r"medseg fetch isbi2012 --root"):
        load_training_samples(_config("isbi2012", tmp_path / "nowhere"))
    with pytest.raises(DataNotFoundError, match=r"isbi\.h5|train-volume\.tif"):
        load_training_samples(_config("isbi2012", tmp_path))


def test_lazy_tiff_is_a_sample_source(tmp_path):
    stack = np.arange(2 * 8 * 8, dtype=np.uint8).reshape(2, 8, 8)
    tifffile.imwrite(tmp_path / "s.tif", stack)
    from medseg.data.em import open_em_stack

    assert isinstance(open_em_stack(tmp_path / "s.tif"), LazyArray)


def test_lab_folder_of_class_masks_trains_in_one_command(tmp_path):
    from medseg.cli.main import main
    from medseg.resources import shipped_pipeline

    rng = np.random.default_rng(1)
    for i in range(3):
        mask = np.zeros((1, 40, 40), np.uint8)
        mask[0, 8 + i : 24 + i, 10:30] = 1
        image = (mask * 120 + rng.integers(0, 60, mask.shape)).astype(np.uint8)
        write(Volume(image), tmp_path / "lab" / "images" / f"patient_{i + 1:04d}.png")
        write(Volume(mask), tmp_path / "lab" / "labels" / f"patient_{i + 1:04d}.png")
    overrides = [
        f"data.root={tmp_path / 'lab'}",
        "data.label_kind=classes",
        "data.classes=[background, cell]",
        "data.patch_shape=[32, 32]",
        "data.batch_size=2",
        "model.params={in_channels: 1, out_channels: 2, features: 4, depth: 2}",
        "train.iterations=2",
        "train.validate_every=2",
        "infer.roi_size=[32, 32]",
        "infer.mirror_axes=[]",
    ]
    args = ["train", str(shipped_pipeline("lab_folder")), "--out", str(tmp_path / "run"), "--no-progress"]
    assert main(args + [a for o in overrides for a in ("--set", o)]) == 0
    assert (tmp_path / "run" / "checkpoints" / "best.pt").is_file()


def test_lab_folder_hdf5_stacks_open_lazily(tmp_path):
    stack = np.arange(4 * 16 * 16, dtype=np.uint16).reshape(1, 4, 16, 16)
    membranes = (stack % 7 == 0).astype(np.uint8)
    for case in ("stack_a", "stack_b"):
        write(Volume(stack, spacing=(40, 4, 4), unit="nm"), tmp_path / "images" / f"{case}.h5")
        write(Volume(membranes, spacing=(40, 4, 4), unit="nm"), tmp_path / "labels" / f"{case}.h5")
    train, val = load_training_samples(_config("lab_folder", tmp_path, classes=("background", "membrane")))
    assert isinstance(train[0].image, LazyArray) and isinstance(val[0].label, LazyArray)
    assert train[0].image.spacing == (40.0, 4.0, 4.0) and train[0].image.unit == "nm"
    np.testing.assert_array_equal(val[0].label[0, 2], membranes[0, 2])
    write(Volume(membranes * 3, spacing=(40, 4, 4)), tmp_path / "labels" / "stack_b.h5")
    with pytest.raises(LabelError, match=r"stack_b\.h5 holds values \[3\]"):
        load_training_samples(_config("lab_folder", tmp_path, classes=("background", "membrane")))
