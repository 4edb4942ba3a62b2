from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from medseg.data import Sample
from medseg.data.dataset import PatchDataset
from medseg.errors import ConfigError, DataValueError
from medseg.io import Volume
from medseg.train.checkpoint import load_checkpoint
from medseg.train.losses import build_loss
from medseg.train.precision import StepPolicy
from medseg.train.stream import batch_loader
from medseg.train.trainer import Checkpointing, Stopping, Trainer, Validation, poly_schedule


def _batches(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    while True:
        image = torch.rand(4, 1, 16, 16, generator=generator)
        yield image, (image > 0.5).long()


def _trainer(
    tmp_path, *, iterations: int = 60, validate=None, validate_every=100, checkpoint_every=100, **kwargs
):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Dropout(0.2), nn.Conv2d(8, 2, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    return Trainer(
        model,
        build_loss("dice_ce"),
        optimizer,
        scheduler=poly_schedule(optimizer, iterations),
        device="cpu",
        checkpoints=Checkpointing(tmp_path, every=checkpoint_every),
        validation=None if validate is None else Validation(validate, every=validate_every),
        **kwargs,
    )


def _stream():
    rng = np.random.default_rng(0)
    image = rng.random((1, 48, 48)).astype(np.float32)
    label = (image > 0.6).astype(np.uint8)
    dataset = PatchDataset([Sample(Volume(image), Volume(label), "c", "em")], patch_shape=(16, 16), seed=2)
    return lambda start: batch_loader(dataset, 4, start_iteration=start)


def test_fit_reduces_loss_and_writes_checkpoints(tmp_path):
    scores = itertools.count()
    trainer = _trainer(
        tmp_path, validate=lambda model: float(next(scores)), validate_every=10, checkpoint_every=10
    )
    result = trainer.fit(_batches(), iterations=60)
    assert result.iterations == 60
    assert sum(result.losses[-10:]) / 10 < 0.8 * sum(result.losses[:10]) / 10
    assert [it for it, _ in result.validation] == [10, 20, 30, 40, 50, 60]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "latest.pt"]
    assert result.best_score == 5.0


def test_interrupted_and_resumed_equals_uninterrupted(tmp_path):
    """N steps, then a new trainer resuming for N more == 2N steps: same losses, same weights."""
    whole = _trainer(tmp_path / "whole", iterations=8)
    expected = whole.fit(_stream(), iterations=8)

    first = _trainer(tmp_path / "parts", iterations=8)
    first.fit(_stream(), iterations=4)
    second = _trainer(tmp_path / "parts", iterations=8)
    torch.manual_seed(123)  # the resumed process's own RNG must not matter (dropout state is restored)
    assert second.resume()
    result = second.fit(_stream(), iterations=8)

    assert result.losses == expected.losses  # the history spans both runs
    for a, b in zip(whole.model.parameters(), second.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_finished_run_extended_keeps_its_history(tmp_path):
    first = _trainer(tmp_path, iterations=5, validate=lambda model: 0.5, validate_every=5)
    done = first.fit(_stream(), iterations=5)
    second = _trainer(tmp_path, iterations=9, validate=lambda model: 0.4, validate_every=5)
    assert second.resume() and second.iteration == 5
    result = second.fit(_stream(), iterations=9)
    assert result.iterations == 9 and result.losses[:5] == done.losses and len(result.losses) == 9
    assert result.validation == [(5, 0.5), (9, 0.4)] and result.best_score == 0.5
    assert len(load_checkpoint(tmp_path / "latest.pt")["history"]["losses"]) == 9
    assert not _trainer(tmp_path / "empty").resume()


@pytest.mark.parametrize("keep_best", [True, False])
def test_best_checkpoint_holds_the_best_or_the_final_model(tmp_path, keep_best):
    scores = iter([0.9, 0.2, 0.1])  # the first validation is the best
    trainer = _trainer(tmp_path, validate=lambda model: next(scores), validate_every=10)
    trainer.checkpoints = Checkpointing(tmp_path, every=100, keep_best=keep_best)
    result = trainer.fit(_batches(), iterations=30)
    assert result.best_score == 0.9 and [it for it, _ in result.validation] == [10, 20, 30]
    best, latest = load_checkpoint(tmp_path / "best.pt"), load_checkpoint(tmp_path / "latest.pt")
    assert best["iteration"] == (10 if keep_best else 30) and latest["iteration"] == 30
    same = all(
        torch.equal(a, b) for a, b in zip(best["model"].values(), latest["model"].values(), strict=True)
    )
    assert same is not keep_best


def test_resume_into_another_model_is_a_config_error(tmp_path):
    _trainer(tmp_path, iterations=2).fit(_batches(), iterations=2)
    other = Trainer(
        nn.Conv2d(1, 3, 1), build_loss("ce"), torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1)
    )
    with pytest.raises(ConfigError, match="holds weights of another model"):
        other.resume(tmp_path / "latest.pt")


def test_early_stopping_and_time_budget(tmp_path):
    scores = iter([0.5, 0.6, 0.55, 0.58, 0.9])
    trainer = _trainer(
        tmp_path, validate=lambda m: next(scores), validate_every=2, stopping=Stopping(patience=2)
    )
    result = trainer.fit(_batches(), iterations=20)
    assert result.iterations == 8 and result.stopped.startswith("early stopping")
    assert load_checkpoint(tmp_path / "latest.pt")["iteration"] == 8
    budget = _trainer(tmp_path / "t", validate=lambda m: 0.3, stopping=Stopping(max_minutes=1e-9))
    result = budget.fit(_batches(), iterations=20)
    assert result.iterations == 1 and "time budget" in result.stopped
    # the run's last iteration is validated, so best.pt exists even before validate_every
    assert result.validation == [(1, 0.3)] and (tmp_path / "t" / "best.pt").is_file()


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_mixed_precision_trains_with_clipping(tmp_path, precision):
    trainer = _trainer(tmp_path, step=StepPolicy(precision, grad_clip=1.0))
    result = trainer.fit(_batches(), iterations=40)
    assert sum(result.losses[-5:]) < sum(result.losses[:5])
    state = load_checkpoint(tmp_path / "latest.pt")
    assert ("scale" in state["scaler"]) == (precision == "float16")
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())


def test_non_finite_loss_stops_with_a_clear_error(tmp_path):
    def nan_batches():
        while True:
            yield torch.full((2, 1, 8, 8), float("nan")), torch.zeros(2, 1, 8, 8, dtype=torch.long)

    with pytest.raises(DataValueError, match="training loss became nan at iteration 1"):
        _trainer(tmp_path).fit(nan_batches(), iterations=3)


def test_seconds_add_up_over_resumed_runs(tmp_path, monkeypatch):
    """A fake clock that advances 1 s per reading: each run's seconds add to the previous runs'."""
    import medseg.train.trainer as trainer_module

    ticks = itertools.count()
    monkeypatch.setattr(trainer_module.time, "perf_counter", lambda: float(next(ticks)))
    first = _trainer(tmp_path, iterations=6).fit(_stream(), iterations=3)
    assert first.seconds > 0
    saved = float(load_checkpoint(tmp_path / "latest.pt")["history"]["seconds"])
    assert 0 < saved <= first.seconds
    second = _trainer(tmp_path, iterations=6)
    assert second.resume()
    total = second.fit(_stream(), iterations=6)
    assert total.seconds > first.seconds + 1  # this run's time on top of the first run's
    finished = _trainer(tmp_path, iterations=6)
    assert finished.resume()
    again = finished.fit(_stream(), iterations=6)  # nothing left to train
    assert total.seconds <= again.seconds <= total.seconds + 3
