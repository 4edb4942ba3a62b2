from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from medseg.errors import DataValueError
from medseg.train.losses import build_loss
from medseg.train.trainer import Trainer


def _batches(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    while True:
        image = torch.rand(4, 1, 16, 16, generator=generator)
        yield image, (image > 0.5).long()


def _trainer(tmp_path, **kwargs):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    return Trainer(model, build_loss("ce"), optimizer, device="cpu", checkpoint_dir=tmp_path, **kwargs)


def test_fit_reduces_loss_and_writes_checkpoints(tmp_path):
    scores = itertools.count()
    trainer = _trainer(
        tmp_path, validate=lambda model: float(next(scores)), validate_every=10, checkpoint_every=10
    )
    result = trainer.fit(_batches(), iterations=60)
    assert result.iterations == 60
    assert sum(result.losses[-10:]) / 10 < 0.5 * sum(result.losses[:10]) / 10
    assert [it for it, _ in result.validation] == [10, 20, 30, 40, 50, 60]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "latest.pt"]
    assert result.best_score == 5.0


def test_resume_continues_where_it_stopped(tmp_path):
    first = _trainer(tmp_path, checkpoint_every=5)
    first.fit(_batches(), iterations=10)
    second = _trainer(tmp_path, checkpoint_every=5)
    assert second.resume()
    assert second.iteration == 10
    for a, b in zip(first.model.parameters(), second.model.parameters(), strict=True):
        assert torch.equal(a, b)
    result = second.fit(_batches(1), iterations=15)
    assert result.iterations == 15 and len(result.losses) == 5
    assert not _trainer(tmp_path / "empty").resume()


def test_non_finite_loss_stops_with_a_clear_error(tmp_path):
    def nan_batches():
        while True:
            yield torch.full((2, 1, 8, 8), float("nan")), torch.zeros(2, 1, 8, 8, dtype=torch.long)

    with pytest.raises(DataValueError, match="training loss became nan at iteration 1"):
        _trainer(tmp_path).fit(nan_batches(), iterations=3)
