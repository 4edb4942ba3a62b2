from __future__ import annotations

import pytest
import torch
from torch import nn

from medseg.errors import ConfigError
from medseg.train.finetune import class_index_map, freeze_encoder_stages, initialize_from, parameter_groups


class _Net(nn.Module):
    def __init__(self, channels: int, classes: int) -> None:
        super().__init__()
        self.stages = nn.ModuleList([nn.Conv2d(channels, 4, 1), nn.Conv2d(4, 4, 1)])
        self.score = nn.Conv2d(4, classes, 1)
        self.upscore = nn.ConvTranspose2d(classes, classes, 4, bias=False)  # class axes 0 and 1 (FCN)


def test_class_index_map_by_name_and_label_map():
    assert class_index_map(["bg", "nuclei", "gland"], ["background", "nuclei"], {"bg": "background"}) == {
        0: 0,
        1: 1,
    }
    with pytest.raises(ConfigError, match="train.label_map maps \\['cell'\\]"):
        class_index_map(["bg"], ["background"], {"cell": "background"})


def test_head_rows_follow_the_class_map_on_every_class_axis():
    torch.manual_seed(0)
    old, new = _Net(1, 2), _Net(3, 3)
    fresh = {k: v.clone() for k, v in new.state_dict().items()}
    report = initialize_from(
        new, old.state_dict(), class_map={0: 1, 2: 0}, num_classes=3, checkpoint_num_classes=2
    )
    assert set(report.loaded) == {"stages.0.bias", "stages.1.weight", "stages.1.bias"}
    assert list(report.initialized) == ["stages.0.weight"]  # 1 -> 3 input channels
    assert report.remapped == ["score.weight", "score.bias", "upscore.weight"]
    got, src = new.state_dict(), old.state_dict()
    torch.testing.assert_close(
        got["score.bias"], torch.stack([src["score.bias"][1], fresh["score.bias"][1], src["score.bias"][0]])
    )
    up = got["upscore.weight"]
    for (i, a), (j, b) in [((0, 1), (0, 1)), ((0, 1), (2, 0)), ((2, 0), (0, 1)), ((2, 0), (2, 0))]:
        torch.testing.assert_close(up[i, j], src["upscore.weight"][a, b])
    torch.testing.assert_close(up[1], fresh["upscore.weight"][1])  # the new class keeps its initialisation
    torch.testing.assert_close(got["stages.0.weight"], fresh["stages.0.weight"])


def test_frozen_stages_and_lower_learning_rate_for_loaded_tensors():
    net = _Net(1, 2)
    assert freeze_encoder_stages(net, 1) == ["stages.0.weight", "stages.0.bias"]
    groups = parameter_groups(
        net, ["stages.1.weight", "stages.1.bias"], learning_rate=1.0, pretrained_factor=0.1
    )
    assert [g["lr"] for g in groups] == [1.0, 0.1]
    assert sum(len(g["params"]) for g in groups) == 5  # the two frozen tensors are not optimised
    with pytest.raises(ConfigError, match="has no encoder stages"):
        freeze_encoder_stages(nn.Linear(2, 2), 1)
