"""``--data synthetic``: every dataset is written in its real layout and read back by its own loader."""

from __future__ import annotations

import numpy as np
import pytest

from medseg.config import config_from_dict
from medseg.labels import DENTAL_CLASSES
from medseg.pipeline.datasets import load_training_samples
from medseg.pipeline.synthetic_data import SYNTHETIC_DATASETS, smoke_overrides, write_synthetic

INSTANCES = {"cremi", "ctc_phc_u373", "ctc_dic_hela", "monuseg2018", "glas2015", "lab_folder"}
CLASSES = {
    "isbi2012": ["cell", "membrane"],
    "dental_isbi2015": list(DENTAL_CLASSES),
    "nnunet_raw": ["background", "liver", "kidney", "spleen"],
}
# cases the loader finds at smoke size: sections, images, or annotated frames of both sequences
CASES = {"ctc_phc_u373": 8, "ctc_dic_hela": 8, "cremi": 3}


@pytest.mark.parametrize("name", sorted(SYNTHETIC_DATASETS))
def test_synthetic_dataset_loads_through_its_real_loader(name, tmp_path):
    folder = write_synthetic(name, tmp_path, smoke=True)
    assert folder.parent == tmp_path and any(folder.iterdir())
    data = {"dataset": name, "root": str(tmp_path), "validation_slices": 1}
    if name in INSTANCES:
        data |= {"label_kind": "instances", "classes": ["background", "inside", "boundary"]}
    else:
        data["classes"] = CLASSES[name]
    model = {"params": {"out_channels": len(data["classes"])}}  # cross-field validation: one output per class
    train, val = load_training_samples(config_from_dict({"data": data, "model": model}).data)
    shape, n = SYNTHETIC_DATASETS[name].smoke
    assert len(train) + len(val) == CASES.get(name, n) and len(val) == 1
    image = train[0].image
    assert tuple(image.shape[-len(shape) :]) == shape
    label = np.asarray(train[0].label.read() if hasattr(train[0].label, "read") else train[0].label.array)
    if name in INSTANCES:
        assert len(np.unique(label)) > 3  # several objects, not classes
    else:
        assert set(np.unique(label)) <= set(range(len(CLASSES[name])))
        assert len(np.unique(label)) >= 2


def test_smoke_patches_fit_models_with_valid_convolutions():
    config = config_from_dict(
        {
            "data": {"patch_shape": [572, 572]},
            "model": {"name": "unet-paper", "params": {"in_channels": 1, "out_channels": 2}},
            "infer": {"roi_size": [572, 572]},
        }
    )
    overrides = smoke_overrides(config)
    # unet-paper at depth 2 (valid convolutions): min 44 px, a multiple of 4 -> the first size from 32 is 44
    assert "data.patch_shape=[44, 44]" in overrides and "infer.roi_size=[44, 44]" in overrides
    assert "model.params.depth=2" in overrides and "train.iterations=3" in overrides
