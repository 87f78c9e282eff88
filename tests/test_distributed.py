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


def test_processes_on_one_machine_share_its_cores(monkeypatch):
    from systems import encoders
    from systems.encoders import set_threads

    before = torch.get_num_threads()
    monkeypatch.setattr(encoders, "usable_cores", lambda: 8)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert set_threads() == 2 and set_threads(3) == 3
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    assert set_threads() == 8
    torch.set_num_threads(before)


def test_shard_takes_every_nth_item_from_the_rank(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert distributed.shard([10, 11, 12, 13, 14]) == [11, 13] and not distributed.is_main()


def _torchrun(out, what: str) -> list[dict]:
    """Run ``tests/ddp_worker.py`` in two gloo processes; each rank's record."""
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
         str(ROOT / "tests" / "ddp_worker.py"), str(out), what],
        capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


def test_two_gloo_processes_share_the_rows_of_a_corpus_encoding(tmp_path):
    """``map_rows``: each rank computes its half of the rows, every rank gets them all in order."""
    from ddp_worker import CORPUS

    ranks = _torchrun(tmp_path, "rows")
    items = [*CORPUS, "one more"]
    expected = [[len(t), sum(map(ord, t))] for t in items]
    assert ranks[0]["rows"] == ranks[1]["rows"] == expected
    assert ranks[0]["computed"] == items[0::2] and ranks[1]["computed"] == items[1::2]


def test_two_gloo_processes_train_the_backbone_as_one(tmp_path):
    ranks = _torchrun(tmp_path, "seq2seq")
    assert all(r["world"] == 2 for r in ranks)
    assert all(s["wrapper"] == "DistributedDataParallel" for r in ranks for s in r["steps"])
    for step0, step1 in zip(ranks[0]["steps"], ranks[1]["steps"]):  # each rank: its half of the batch
        assert len(step0["sources"]) == len(step1["sources"]) == 2
        assert not set(step0["sources"]) & set(step1["sources"])
    weights = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert torch.equal(weights[0], weights[1])
    assert ranks[0]["notes"]["loss_last_20"] < ranks[0]["notes"]["loss_first_20"]
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["train.pt"]  # written by rank 0 alone


def test_two_gloo_processes_train_the_dual_encoders_as_one_process_does(tmp_path, monkeypatch):
    """DPR's two encoders and ANCE's shared one: each rank encodes half of every batch's queries
    and stickers, the gradient is that of one process on the whole batch, and both ranks end
    with the same weights, those of one process up to float rounding (Adam's first steps turn
    a rounding-sized gradient into a step of about the learning rate, 1e-4)."""
    from ddp_worker import dense_training

    ranks = _torchrun(tmp_path, "dense")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    for kind, shared in (("dpr", False), ("ance", True)):
        passes = [r[kind] for r in ranks]
        assert all(p["wrapper"] == "DistributedDataParallel" for r in passes for p in r)
        for pass0, pass1 in zip(*passes):  # half of the 4 queries, or of the 8 stickers, each
            assert len(pass0["items"]) == len(pass1["items"]) in (2, 4)
            assert sorted(pass0["items"] + pass1["items"]) == list(range(2 * len(pass0["items"])))
        rank0, rank1 = (torch.load(tmp_path / f"rank{r}-{kind}.pt") for r in (0, 1))
        assert torch.equal(rank0["weights"], rank1["weights"])
        alone, seen = dense_training(shared)
        assert [len(p["items"]) for p in seen] == [4, 8] * 3
        assert torch.allclose(rank0["gradient"], alone["gradient"], rtol=1e-3, atol=1e-6)
        assert torch.allclose(rank0["losses"], alone["losses"], atol=1e-5)
        assert (rank0["weights"] - alone["weights"]).abs().max() < 5e-4


def test_two_gloo_processes_learn_pearls_user_embeddings_as_one_process_does(tiny, tmp_path, monkeypatch):
    """Each rank takes half of every task's batch; the gradient and the learned rows are one
    process's (the single-process run goes first and fills the encoding cache)."""
    from ddp_worker import pearl_training

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    alone = pearl_training()
    _torchrun(tmp_path, "pearl")
    ranks = [torch.load(tmp_path / f"rank{r}-pearl.pt") for r in (0, 1)]
    assert torch.equal(ranks[0]["rows"], ranks[1]["rows"])
    assert torch.allclose(ranks[0]["gradient"], alone["gradient"], rtol=1e-4, atol=1e-7)
    assert torch.allclose(ranks[0]["rows"], alone["rows"], atol=1e-5)
