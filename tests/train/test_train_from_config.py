"""``train_from_config``: exact resume through the real data path, resume rules, fine-tuning, phases."""

from __future__ import annotations

import pytest
import torch

from medseg.errors import ConfigError
from medseg.models import build_model
from medseg.pipeline.training import train_from_config
from medseg.train.checkpoint import load_checkpoint


def _weights(out):
    return load_checkpoint(out / "checkpoints" / "latest.pt")["model"]


def test_interrupted_run_resumed_with_workers_equals_the_uninterrupted_run(
    tmp_path, samples, disk_samples, tiny_config
):
    config = tiny_config(train={"iterations": 6, "deterministic": True, "validate_every": 3})
    whole = train_from_config(config, *samples, tmp_path / "whole").result

    stopped = tiny_config(
        train={"iterations": 6, "deterministic": True, "validate_every": 3, "max_minutes": 1e-9}
    )
    first = train_from_config(stopped, *samples, tmp_path / "parts").result
    assert first.iterations == 1 and "time budget" in first.stopped
    resumed_config = tiny_config(
        data={"num_workers": 2}, train={"iterations": 6, "deterministic": True, "validate_every": 3}
    )
    resumed = train_from_config(resumed_config, *samples, tmp_path / "parts", resume=True).result

    assert resumed.iterations == 6 and resumed.losses == whole.losses
    # the interrupted run also validated where it stopped (iteration 1)
    assert resumed.validation[0][0] == 1 and resumed.validation[1:] == whole.validation
    for name, tensor in _weights(tmp_path / "whole").items():
        torch.testing.assert_close(_weights(tmp_path / "parts")[name], tensor, rtol=0, atol=0)


def test_resume_refuses_a_changed_model_or_data_config_naming_the_keys(
    tmp_path, samples, disk_samples, tiny_config
):
    train_from_config(tiny_config(), *samples, tmp_path)
    changed = tiny_config(
        model={"params": {"in_channels": 1, "out_channels": 2, "features": 8, "depth": 2}},
        data={"seed": 5},
    )
    with pytest.raises(ConfigError, match=r"data.seed: 0 -> 5; model.params.features: 4 -> 8"):
        train_from_config(changed, *samples, tmp_path, resume=True)


def test_resume_accepts_a_moved_data_root(tmp_path, samples, disk_samples, tiny_config):
    train_from_config(
        tiny_config(data={"root": str(tmp_path / "old")}, train={"iterations": 2}), *samples, tmp_path
    )
    moved = tiny_config(data={"root": str(tmp_path / "new")}, train={"iterations": 4})
    result = train_from_config(moved, *samples, tmp_path, resume=True).result
    assert result.iterations == 4 and len(result.losses) == 4


def test_resume_of_a_checkpoint_older_than_a_config_key_compares_it_with_its_default(
    tmp_path, samples, disk_samples, tiny_config
):
    train_from_config(tiny_config(train={"iterations": 2}), *samples, tmp_path)
    latest = tmp_path / "checkpoints" / "latest.pt"
    payload = load_checkpoint(latest)
    # as written before data.validation_fraction and infer.postprocessing existed
    del payload["metadata"]["config"]["data"]["validation_fraction"]
    del payload["metadata"]["config"]["infer"]["postprocessing"]
    torch.save(payload, latest)
    # a value other than the default is still a change of the held-out data
    changed = tiny_config(data={"validation_fraction": 0.3}, train={"iterations": 4})
    with pytest.raises(ConfigError, match=r"cannot resume .*\(data.validation_fraction: 0.2 -> 0.3\)"):
        train_from_config(changed, *samples, tmp_path, resume=True)
    result = train_from_config(tiny_config(train={"iterations": 4}), *samples, tmp_path, resume=True).result
    assert result.iterations == 4 and len(result.losses) == 4


def test_changed_learning_rate_on_resume_is_applied(tmp_path, samples, disk_samples, tiny_config):
    train_from_config(tiny_config(train={"iterations": 10}), *samples, tmp_path)
    extended = tiny_config(train={"iterations": 20, "learning_rate": 1e-3})
    result = train_from_config(extended, *samples, tmp_path, resume=True).result
    assert result.iterations == 20 and len(result.losses) == 20
    state = load_checkpoint(tmp_path / "checkpoints" / "latest.pt")
    # poly schedule over 20 iterations, at iteration 20, from the new base rate
    assert state["optimizer"]["param_groups"][0]["initial_lr"] == pytest.approx(1e-3)
    assert state["scheduler"]["base_lrs"] == [pytest.approx(1e-3)]


def test_out_that_is_a_file_fails_before_training(tmp_path, samples, disk_samples, tiny_config):
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(ConfigError, match="is not a folder"):
        train_from_config(tiny_config(), *samples, target)
    with pytest.raises(ConfigError, match="is not a folder"):
        train_from_config(tiny_config(), *samples, target / "below")


def test_image_channels_must_match_the_model(tmp_path, disk_samples, tiny_config):
    cases = disk_samples(2, channels=3)
    with pytest.raises(ConfigError, match="3 channel.*model.params.in_channels: 3"):
        train_from_config(tiny_config(), cases[:1], cases[1:], tmp_path)


def test_fine_tune_two_to_four_classes_keeps_mapped_head_rows(tmp_path, samples, disk_samples, tiny_config):
    train_from_config(tiny_config(), *samples, tmp_path / "source")
    source = load_checkpoint(tmp_path / "source" / "checkpoints" / "best.pt")
    config = tiny_config(
        data={"classes": ["bg", "membrane", "disk", "other"]},
        model={"params": {"in_channels": 1, "out_channels": 4, "features": 4, "depth": 2}},
        train={
            "iterations": 1,
            "init": str(tmp_path / "source" / "checkpoints" / "best.pt"),
            "label_map": {"bg": "background"},
            "learning_rate": 1e-12,
        },
    )
    trained = train_from_config(config, *samples, tmp_path / "target")
    assert trained.init.remapped == ["head.weight", "head.bias"] and not trained.init.initialized
    head = load_checkpoint(tmp_path / "target" / "checkpoints" / "latest.pt")["model"]["head.bias"]
    # new class 0 <- old 'background' (0), new 2 'disk' <- old 'disk' (1); classes 1 and 3 are new
    torch.testing.assert_close(head[[0, 2]], source["model"]["head.bias"], atol=1e-9, rtol=0)
    metadata = load_checkpoint(tmp_path / "target" / "checkpoints" / "latest.pt")["metadata"]
    assert metadata["init"]["remapped"] == ["head.weight", "head.bias"]


def test_fine_tune_one_to_three_channels_reinitialises_the_first_convolution(
    tmp_path, samples, disk_samples, tiny_config
):
    train_from_config(tiny_config(), *samples, tmp_path / "source")
    cases = disk_samples(3, channels=3)
    config = tiny_config(
        model={"params": {"in_channels": 3, "out_channels": 2, "features": 4, "depth": 2}},
        train={"iterations": 1, "init": str(tmp_path / "source" / "checkpoints" / "best.pt")},
    )
    trained = train_from_config(config, cases[:2], cases[2:], tmp_path / "target")
    fresh = build_model("unet", in_channels=3, out_channels=2, features=4, depth=2).state_dict()
    assert list(trained.init.initialized) == [
        name
        for name, t in fresh.items()
        if t.shape != build_model("unet", features=4, depth=2).state_dict()[name].shape
    ]
    assert len(trained.init.initialized) == 1 and "head.weight" in trained.init.loaded


def test_fine_tuning_beats_training_from_scratch_at_equal_steps(tmp_path, disk_samples, tiny_config):
    source = disk_samples(6, seed=1)
    train_from_config(tiny_config(train={"iterations": 80}), source[:5], source[5:], tmp_path / "source")
    target = disk_samples(4, seed=2, contrast=0.7)
    steps = {"iterations": 8, "validate_every": 8, "learning_rate": 3e-3}
    scratch = train_from_config(tiny_config(train=steps), target[:3], target[3:], tmp_path / "scratch")
    init = {**steps, "init": str(tmp_path / "source" / "checkpoints" / "best.pt")}
    tuned = train_from_config(tiny_config(train=init), target[:3], target[3:], tmp_path / "tuned")
    assert tuned.result.best_score > scratch.result.best_score + 0.1


def test_frozen_encoder_stage_keeps_its_weights(tmp_path, samples, disk_samples, tiny_config):
    train_from_config(tiny_config(), *samples, tmp_path / "source")
    init = str(tmp_path / "source" / "checkpoints" / "best.pt")
    train_from_config(
        tiny_config(train={"iterations": 3, "init": init, "freeze_encoder_stages": 1}),
        *samples,
        tmp_path / "t",
    )
    before, after = load_checkpoint(init)["model"], _weights(tmp_path / "t")
    frozen = [k for k in after if k.startswith("encoder.0.") and after[k].is_floating_point()]
    moved = [k for k in after if k.startswith("encoder.1.") and after[k].is_floating_point()]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert any(not torch.equal(before[k], after[k]) for k in moved)


def test_layerwise_pretraining_phase_runs_for_the_sdae_only(tmp_path, samples, disk_samples, tiny_config):
    sdae = {
        "name": "sdae",
        "params": {"in_channels": 1, "out_channels": 2, "patch_size": 5, "hidden_features": [8, 4]},
    }
    config = tiny_config(model=sdae, train={"iterations": 2, "pretrain": "layerwise", "pretrain_steps": 5})
    trained = train_from_config(config, *samples, tmp_path / "sdae")
    assert trained.result.iterations == 2
    with pytest.raises(ConfigError, match="train.pretrain: layerwise, but model 'unet'"):
        train_from_config(tiny_config(train={"pretrain": "layerwise"}), *samples, tmp_path / "unet")


def test_unet_weighted_loss_trains_with_weight_maps_from_the_workers(tmp_path, samples, tiny_config):
    config = tiny_config(data={"num_workers": 2}, train={"iterations": 3, "loss": "unet_weighted_ce"})
    result = train_from_config(config, *samples, tmp_path).result
    assert result.iterations == 3 and all(loss > 0 for loss in result.losses)
