"""Data-parallel training under ``torchrun``, with no change to the command or the code.

Launched by ``torchrun --nproc_per_node=N``, every process runs the same ``bench`` command;
``WORLD_SIZE`` and ``RANK`` in the environment make the training loops (the seq2seq backbone's
and the CLIP's) join one process group (gloo: the suite's models live on the CPU), wrap their
model in PyTorch's ``DistributedDataParallel`` and train each rank on its slice of every global
batch, so that the batch size, the number of steps and the schedule stay those of one process.
Rank 0 alone writes checkpoints, artifacts, runs and tables. Without ``torchrun`` nothing here
does anything. The dense trainer (DPR, ANCE) is not sharded yet: under ``torchrun`` every rank
trains it on the whole batch, with the same result as one process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence, TypeVar

T = TypeVar("T")


def world_size() -> int:
    """The number of processes ``torchrun`` started (1 without it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's rank (0 without ``torchrun``)."""
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """Whether this process writes (rank 0)."""
    return rank() == 0


def init() -> bool:
    """Join the default process group once, when launched by ``torchrun``; whether distributed."""
    if world_size() == 1:
        return False
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    return True


def shard(batch: Sequence[T]) -> list[T]:
    """This rank's slice of a global batch (every ``world_size``-th item from ``rank``)."""
    return list(batch[rank()::world_size()])


def wrap(model: Any) -> Any:
    """``model`` in ``DistributedDataParallel`` when distributed, else ``model`` itself."""
    if not init():
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model)


def barrier() -> None:
    """Wait for every rank (no-op without ``torchrun``)."""
    if init():
        import torch.distributed as dist

        dist.barrier()


@contextlib.contextmanager
def building(folder: Path) -> Iterator[Path]:
    """The folder this rank fits or builds into, for the duration of the block.

    Rank 0 builds in ``folder``; every other rank in a private scratch folder, deleted
    afterwards, whose ``checkpoints/`` is rank 0's, so that an interrupted training resumes on
    every rank from the same step. All ranks enter and leave the block together.
    """
    if not init():
        yield folder
        return
    if is_main():
        (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
    barrier()
    if is_main():
        yield folder
    else:
        scratch = Path(tempfile.mkdtemp(prefix=f"stickerbench-rank{rank()}-"))
        (scratch / "checkpoints").symlink_to((folder / "checkpoints").resolve())
        try:
            yield scratch
        finally:
            shutil.rmtree(scratch)
    barrier()


__all__ = ["world_size", "rank", "is_main", "init", "shard", "wrap", "barrier", "building"]
