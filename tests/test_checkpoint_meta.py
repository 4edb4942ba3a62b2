from __future__ import annotations

import dataclasses

import pytest
import torch

from medseg.checkpoint_meta import META_VERSION, CheckpointMeta, ModelSpec, Targets, read_checkpoint
from medseg.errors import FormatError
from medseg.models import build_model
from medseg.options import InstanceTarget, LabelKind
from medseg.train.checkpoint import save_checkpoint

#: metadata as medseg train wrote it before CheckpointMeta (version 1: no version, no postprocessing)
V1 = {
    "model": {"name": "unet", "params": {"in_channels": 1, "out_channels": 3, "features": 4, "depth": 2}},
    "normalization": {"mean": [0.5], "std": [0.25], "nonfinite": "error", "fill": None},
    "classes": ["background", "inside", "boundary"],
    "channels": 1,
    "axis_order": "C,Y,X",
    "targets": {"label_kind": "instances", "instance_target": "boundary"},
    "config": {"name": "x", "infer": {"roi_size": [32, 32]}},
    "best_score": 0.75,
}


def test_version_1_metadata_migrates_and_round_trips():
    meta = CheckpointMeta.from_dict(V1, source="old.pt")
    assert meta.version == META_VERSION
    assert meta.targets == Targets(LabelKind.INSTANCES, InstanceTarget.BOUNDARY)
    assert meta.classes == ("background", "inside", "boundary") and meta.channels == 1
    assert meta.out_channels == 3 and meta.best_score == 0.75 and dict(meta.postprocessing) == {}
    again = CheckpointMeta.from_dict(meta.to_dict(), source="new.pt")
    assert again == meta
    assert meta.to_dict()["config"] == V1["config"]  # lists, not tuples, go back into the file


def test_issue_22_metadata_maps_into_the_typed_fields():
    """A 'both' model's checkpoint as the lab branch wrote it (before CheckpointMeta): fingerprint, tuned thresholds."""
    post = {"seed_threshold": 0.3, "foreground_threshold": 0.4, "min_size": 12, "tuned": True}
    raw = {
        **V1,
        "model": {"name": "unet", "params": {"in_channels": 1, "out_channels": 4}},
        "targets": {"label_kind": "instances", "instance_target": "both"},
        "postprocessing": post,
        "fingerprint": {"cases": 1, "objects": {"median_voxels": 120.0}},
    }
    meta = CheckpointMeta.from_dict(raw, source="lab.pt")
    assert meta.targets.instance_target is InstanceTarget.BOTH and meta.targets.has_distance_channel
    assert dict(meta.postprocessing) == post
    assert meta.data_fingerprint is not None and meta.data_fingerprint["objects"]["median_voxels"] == 120.0
    written = meta.to_dict()
    assert "fingerprint" not in written and written["data_fingerprint"]["cases"] == 1
    assert CheckpointMeta.from_dict(written) == meta


def test_minimal_hand_written_metadata_gets_its_defaults():
    meta = CheckpointMeta.from_dict(
        {
            "model": {"name": "unet", "params": {"in_channels": 2}},
            "normalization": {"mean": [0, 0], "std": [1, 1]},
        }
    )
    assert meta.channels == 2 and meta.classes == () and not meta.targets.is_instances
    # the training config is completed from the model spec, not from config defaults
    assert meta.training_config() == {"model": {"name": "unet", "params": {"in_channels": 2}}}


def test_meta_is_frozen_all_the_way_down():
    meta = CheckpointMeta.from_dict(V1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        meta.classes = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        meta.model.params["depth"] = 5  # type: ignore[index]
    with pytest.raises(TypeError):
        meta.normalization["std"] = [0.0]  # type: ignore[index]
    built = CheckpointMeta(
        ModelSpec("unet", {"depth": 2}), {"mean": [0.0], "std": [1.0]}, 1, config={"a": {"b": 1}}
    )
    with pytest.raises(TypeError):
        built.config["a"]["b"] = 2  # type: ignore[index]
    assert built.to_dict()["config"] == {"a": {"b": 1}} and built.model.kwargs() == {"depth": 2}


def test_instance_target_counts_only_for_instance_labels():
    assert Targets.of("classes", "distance") == Targets(LabelKind.CLASSES, None)
    assert Targets.of("instances", "distance").has_distance_channel


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": None}, r"bad\.pt: checkpoint metadata has no valid 'model' entry"),
        ({"model": {"name": "unet", "params": [1]}}, r"model\.params must be a mapping"),
        ({"normalization": {"mean": [0.5]}}, r"has no 'normalization'"),
        ({"normalization": {"mean": [0.5], "std": [float("nan")]}}, r"one finite mean and std per channel"),
        ({"normalization": {"mean": [0.5, 1], "std": [1]}}, r"one finite mean and std per channel"),
        ({"classes": "abc"}, r"classes must be a list of names"),
        ({"channels": 0}, r"channels must be a whole number >= 1, got 0"),
        (
            {"targets": {"label_kind": "instance"}},
            r"data\.label_kind must be one of classes, instances, got 'instance' \(did you mean 'instances'\?\)",
        ),
        (
            {"targets": {"label_kind": "instances", "instance_target": "edges"}},
            r"data\.instance_target must be one of",
        ),
        ({"version": 3}, r"version 3, this medseg reads up to 2; upgrade medseg"),
        ({"version": "2"}, r"version must be a whole number"),
        ({"config": [1]}, r"config must be a mapping"),
        ({"best_score": "high"}, r"best_score must be a number"),
    ],
)
def test_malformed_metadata_is_a_format_error_naming_the_file(change, message):
    with pytest.raises(FormatError, match=message) as info:
        CheckpointMeta.from_dict({**V1, **change}, source="bad.pt")
    assert str(info.value).startswith("bad.pt")


def test_read_checkpoint_loads_once_and_knows_its_file(tmp_path):
    model = build_model("unet", in_channels=1, out_channels=3, features=4, depth=2)
    meta = CheckpointMeta.from_dict(V1)
    path = save_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt", model=model, metadata=meta)
    checkpoint = read_checkpoint(tmp_path / "run")
    assert checkpoint.path == path and checkpoint.meta == meta
    assert set(checkpoint.weights) == set(model.state_dict())
    assert len(checkpoint.sha256) == 64
    raw = torch.load(path, weights_only=True)
    assert (
        raw["metadata"]["version"] == META_VERSION and raw["metadata"]["targets"]["label_kind"] == "instances"
    )
