"""Two gloo processes (DDP, each half of the global batch) train like one process on the whole batch."""

from __future__ import annotations

import os
import socket

import torch
import torch.multiprocessing as mp

from medseg.pipeline.training import train_from_config
from medseg.train.checkpoint import load_checkpoint


def _config(tiny_config_factory):
    return tiny_config_factory(train={"iterations": 4, "validate_every": 2, "deterministic": True})


def _rank(rank: int, port: int, out: str) -> None:
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    from conftest import disk_samples, tiny_config

    os.environ.update(
        {
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
    )
    torch.set_num_threads(1)
    cases = disk_samples(4)
    trained = train_from_config(_config(tiny_config), cases[:3], cases[3:], out)
    torch.save({"losses": trained.result.losses, "world_size": trained.world_size}, f"{out}/rank{rank}.pt")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_match_one_process_on_the_same_global_batch(tmp_path, disk_samples, tiny_config):
    cases = disk_samples(4)
    single = train_from_config(_config(tiny_config), cases[:3], cases[3:], tmp_path / "single")
    mp.spawn(_rank, args=(_free_port(), str(tmp_path / "ddp")), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / "ddp" / f"rank{r}.pt") for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["losses"] == ranks[1]["losses"]  # the logged loss is the global-batch mean
    torch.testing.assert_close(
        torch.tensor(ranks[0]["losses"]), torch.tensor(single.result.losses), rtol=1e-4, atol=1e-5
    )
    # AdamW normalises each gradient, so a near-zero gradient summed in another order can move a
    # weight differently: allow a hundredth of the largest step (the learning rate), no more
    step = _config(tiny_config).train.learning_rate
    ddp = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "latest.pt")["model"]
    one = load_checkpoint(tmp_path / "single" / "checkpoints" / "latest.pt")["model"]
    for name, tensor in one.items():
        torch.testing.assert_close(ddp[name], tensor, rtol=1e-4, atol=step / 100)
