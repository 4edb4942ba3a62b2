from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from medseg.errors import DataNotFoundError, FormatError
from medseg.train.checkpoint import load_checkpoint, save_checkpoint


def test_round_trip_keeps_weights_and_metadata(tmp_path):
    model = nn.Conv2d(1, 2, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    metadata = {"model": {"name": "unet", "params": {"features": 8}}, "classes": ["cell", "membrane"]}
    path = save_checkpoint(
        tmp_path / "ck" / "latest.pt", model=model, optimizer=optimizer, iteration=7, metadata=metadata
    )
    assert [p.name for p in path.parent.iterdir()] == ["latest.pt"]  # no temp file left
    state = load_checkpoint(path)
    fresh = nn.Conv2d(1, 2, 3)
    fresh.load_state_dict(state["model"])
    for a, b in zip(model.parameters(), fresh.parameters(), strict=True):
        assert torch.equal(a, b)
    assert state["iteration"] == 7
    assert state["metadata"] == metadata
    assert state["versions"]["torch"] == torch.__version__


def test_missing_and_corrupt_checkpoints_raise(tmp_path):
    with pytest.raises(DataNotFoundError, match="nope.pt does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(FormatError, match="cannot read checkpoint .*bad.pt"):
        load_checkpoint(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(1)}, other)
    with pytest.raises(FormatError, match="is not a medseg checkpoint"):
        load_checkpoint(other)


def test_temporaries_of_a_killed_save_are_removed_by_the_next_save(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = folder / f".latest.pt.medseg-tmp-{int(dead.stdout)}-abc123"  # what a kill -9 mid-save leaves
    stale.mkdir()
    (stale / "latest.pt").write_bytes(b"half a checkpoint")
    other = folder / f".best.pt.medseg-tmp-{int(dead.stdout)}-def456"  # another target's: not touched
    other.mkdir()

    save_checkpoint(folder / "latest.pt", model=nn.Conv2d(1, 2, 3), iteration=3)

    assert sorted(p.name for p in folder.iterdir()) == [other.name, "latest.pt"]
    assert load_checkpoint(folder / "latest.pt")["iteration"] == 3
