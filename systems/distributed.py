"""Data-parallel training under ``torchrun``, with no change to the command or the code.

Launched by ``torchrun --nproc_per_node=N``, every process runs the same ``bench`` command;
``WORLD_SIZE`` and ``RANK`` in the environment make the training loops (the seq2seq backbone's,
the CLIP's and the dense dual encoder's) join one process group (gloo: the suite's models live
on the CPU), wrap their model in PyTorch's ``DistributedDataParallel`` and train each rank on
its slice of every global batch, so that the batch size, the number of steps and the schedule
stay those of one process. Losses over in-batch negatives (CLIP, DPR, ANCE) first gather every
rank's embeddings, so the negatives are the whole batch. Rank 0 alone writes checkpoints,
artifacts, runs and tables. Without ``torchrun`` nothing here does anything.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

from benchmark.paths import CHECKPOINTS

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
    """Join the default process group once, when launched by ``torchrun``; whether distributed.
    At exit every rank waits for the others, then leaves the group (a rank that left while
    another still finished a collective made that one abort)."""
    if world_size() == 1:
        return False
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
        atexit.register(_leave)
    return True


def _leave() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def shard(batch: Sequence[T]) -> list[T]:
    """This rank's slice of a global batch (every ``world_size``-th item from ``rank``)."""
    return list(batch[rank()::world_size()])


def gather(rows: Any, n: int) -> Any:
    """Every rank's ``rows`` (a tensor: one row per item of this rank's :func:`shard` of an
    ``n``-item batch) on every rank, in the batch's order; only this rank's own rows carry
    gradients. ``rows`` itself without ``torchrun``.

    When every rank computes the whole batch's loss from them and backpropagates it times
    :func:`world_size`, the average ``DistributedDataParallel`` takes of the ranks' gradients
    is the sum of each rank's part: the gradient of one process on the whole batch.
    """
    if not init():
        return rows
    import torch
    import torch.distributed as dist

    width = -(-n // world_size())
    padded = torch.cat([rows.detach(), rows.new_zeros(width - len(rows), *rows.shape[1:])])  # equal shapes
    parts = [torch.empty_like(padded) for _ in range(world_size())]
    dist.all_gather(parts, padded)
    parts[rank()] = rows
    return _interleave(rows.new_empty((n, *rows.shape[1:])), parts)


def map_rows(fn: Callable[[list[T]], Any], items: Sequence[T]) -> Any:
    """``fn(items)`` (a numpy array, one row per item), the work shared: under ``torchrun`` each
    rank computes the rows of its :func:`shard` and every rank receives all of them in order.

    For encoding a corpus with a model every rank holds (DPR's and ANCE's index).
    """
    if not init():
        return fn(list(items))
    import numpy as np
    import torch.distributed as dist

    parts: list[Any] = [None] * world_size()
    dist.all_gather_object(parts, fn(shard(items)))
    return _interleave(np.empty((len(items), *parts[0].shape[1:]), dtype=parts[0].dtype), parts)


def _interleave(out: Any, parts: Sequence[Any]) -> Any:
    """``out`` (an array or tensor, one row per batch item) with rank ``r``'s rows (its
    :func:`shard`, perhaps padded at the end) at rows ``r``, ``r + world_size()``, ...: the
    inverse of :func:`shard`. Gradients flow from ``out`` to the parts that carry them."""
    for r, part in enumerate(parts):
        out[r::world_size()] = part[: len(range(r, len(out), world_size()))]
    return out


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
        (folder / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
    barrier()
    if is_main():
        yield folder
    else:
        scratch = Path(tempfile.mkdtemp(prefix=f"stickerbench-rank{rank()}-"))
        (scratch / CHECKPOINTS).symlink_to((folder / CHECKPOINTS).resolve())
        try:
            yield scratch
        finally:
            shutil.rmtree(scratch)
    barrier()


__all__ = ["world_size", "rank", "is_main", "init", "shard", "gather", "map_rows", "wrap", "barrier", "building"]
