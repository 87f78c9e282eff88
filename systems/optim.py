"""The optimizer recipe shared by every trained system: AdamW with a linear warm-up to ``lr``
and a linear decay to zero at the last step."""

from __future__ import annotations

from typing import Iterable


def adamw_schedule(params: Iterable, lr: float, steps: int, warmup: int, weight_decay: float = 0.01):
    """AdamW over ``params`` and its learning-rate schedule for a run of ``steps`` steps.

    Returns:
        (optimizer, schedule): call ``schedule.step()`` after each ``optimizer.step()``.
    """
    import torch

    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    decay = max(1, steps - warmup)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / max(1, warmup), max(0.0, (steps - s) / decay)))
    return optimizer, schedule
