from __future__ import annotations

import pytest
import torch

from medseg.config import config_from_dict
from medseg.errors import ConfigError
from medseg.options import InstanceTarget, LabelKind, Precision


def test_parse_takes_values_and_members_and_suggests_the_closest():
    assert Precision.parse("bfloat16") is Precision.BFLOAT16
    assert Precision.parse(Precision.FLOAT16) is Precision.FLOAT16
    with pytest.raises(
        ConfigError, match=r"train\.precision must be one of float32, bfloat16, float16, got 'bf16'"
    ):
        Precision.parse("bf16", option="train.precision")
    with pytest.raises(ConfigError, match=r"did you mean 'distance'\?"):
        InstanceTarget.parse("distanse")


def test_precision_knows_its_dtype_and_scaling():
    assert [p.torch_dtype() for p in Precision] == [torch.float32, torch.bfloat16, torch.float16]
    assert [p.needs_grad_scaling for p in Precision] == [False, False, True]
    assert [p.is_mixed for p in Precision] == [False, True, True]


def test_instance_targets_describe_their_outputs():
    assert (InstanceTarget.BOUNDARY.num_classes, InstanceTarget.BOUNDARY.foreground) == (3, [1, 2])
    assert (InstanceTarget.DISTANCE.num_classes, InstanceTarget.DISTANCE.foreground) == (2, [1])
    assert (InstanceTarget.BOTH.num_classes, InstanceTarget.BOTH.foreground) == (3, [1, 2])
    assert (InstanceTarget.FLOW.num_classes, InstanceTarget.FLOW.foreground) == (2, [1])
    assert [t.model_channels(2) for t in InstanceTarget] == [3, 3, 4, 3]
    assert [t.model_channels(3) for t in InstanceTarget] == [3, 3, 4, 4]
    assert [t.has_distance_channel for t in InstanceTarget] == [False, True, True, False]
    assert [t.has_flows for t in InstanceTarget] == [False, False, False, True]
    assert [t.maps(2) for t in InstanceTarget] == [3, 2, 4, 3]
    assert InstanceTarget.FLOW.maps(3) == 4
    with pytest.raises(ConfigError, match="model_channels"):
        _ = InstanceTarget.FLOW.out_channels


def test_config_fields_are_the_enums_and_dump_as_plain_strings():
    config = config_from_dict(
        {
            "data": {"label_kind": "instances", "instance_target": "distance"},
            "model": {"params": {"out_channels": 3}},
            "train": {"precision": "bfloat16"},
        }
    )
    assert config.data.label_kind is LabelKind.INSTANCES and config.train.precision is Precision.BFLOAT16
    dumped = config.model_dump(mode="json")
    assert dumped["train"]["precision"] == "bfloat16" and type(dumped["data"]["label_kind"]) is str
    with pytest.raises(
        ConfigError, match=r"'train\.precision': Input should be 'float32', 'bfloat16' or 'float16'"
    ):
        config_from_dict({"train": {"precision": "half"}})
