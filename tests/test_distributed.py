"""Data-parallel training under torchrun: two CPU processes (gloo) train the shared seq2seq
backbone as one, each on half of every batch, and end with the same weights."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import torch

from conftest import ROOT
from systems import distributed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_without_torchrun_nothing_changes(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap(model) is model
    assert distributed.shard([1, 2, 3]) == [1, 2, 3] and distributed.is_main()


def test_shard_takes_every_nth_item_from_the_rank(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert distributed.shard([10, 11, 12, 13, 14]) == [11, 13] and not distributed.is_main()


def test_two_gloo_processes_train_the_backbone_as_one(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
         str(ROOT / "tests" / "ddp_worker.py"), str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 for r in ranks)
    assert all(s["wrapper"] == "DistributedDataParallel" for r in ranks for s in r["steps"])
    for step0, step1 in zip(ranks[0]["steps"], ranks[1]["steps"]):  # each rank: its half of the batch
        assert len(step0["sources"]) == len(step1["sources"]) == 2
        assert not set(step0["sources"]) & set(step1["sources"])
    weights = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert torch.equal(weights[0], weights[1])
    assert ranks[0]["notes"]["loss_last_20"] < ranks[0]["notes"]["loss_first_20"]
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["train.pt"]  # written by rank 0 alone
